"""The bridge creates and upgrades its schema itself: idempotent, and safe when processes race."""

from __future__ import annotations

import multiprocessing

import pytest
import sqlalchemy as sa

from scim_bridge.store import schema
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import STEPS, MigrationError, Step, pending_steps, upgrade


def test_upgrade_creates_every_declared_table_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    assert pending_steps(engine) == [step.name for step in STEPS]
    assert upgrade(engine) == [step.name for step in STEPS]
    assert upgrade(engine) == []
    assert pending_steps(engine) == []
    inspector = sa.inspect(engine)
    assert set(schema.metadata.tables) <= set(inspector.get_table_names())
    with engine.connect() as conn:
        recorded = conn.execute(sa.select(schema.schema_version.c.step)).scalars().all()
        head = conn.execute(sa.select(schema.audit_head)).all()
    assert sorted(recorded) == sorted(step.name for step in STEPS)
    assert [tuple(row) for row in head] == [(1, 0, "0" * 64)]
    engine.dispose()


def test_a_new_step_runs_once_on_an_existing_database(engine: sa.Engine) -> None:
    calls: list[str] = []

    def add_scratch(conn: sa.Connection) -> None:
        calls.append("ran")
        conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")

    steps = [*STEPS, Step("test-1-scratch", add_scratch)]
    assert upgrade(engine, steps) == ["test-1-scratch"]
    assert upgrade(engine, steps) == []
    assert calls == ["ran"]


def test_a_failing_step_leaves_nothing_behind(engine: sa.Engine) -> None:
    def half_done(conn: sa.Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        upgrade(engine, [*STEPS, Step("test-1-broken", half_done)])
    assert not sa.inspect(engine).has_table("scratch")
    assert pending_steps(engine) == []  # the real steps were already applied by the fixture


def test_a_table_without_a_step_is_reported(db_url: str) -> None:
    engine = make_engine(db_url)
    with pytest.raises(MigrationError, match="created by no migration step"):
        upgrade(engine, [])
    engine.dispose()


def test_duplicate_step_names_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(MigrationError, match="duplicate"):
        upgrade(engine, [*STEPS, STEPS[0]])


def _migrate(url: str, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    start.wait()
    upgrade(engine)
    engine.dispose()


@pytest.mark.slow
def test_processes_starting_at_once_migrate_once(db_url: str) -> None:
    """Four gunicorn workers booting on a fresh database."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_migrate, args=(db_url, start)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * 4
    engine = make_engine(db_url)
    assert pending_steps(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.audit_head)).scalar() == 1
        steps = conn.execute(sa.select(schema.schema_version.c.step)).scalars().all()
    assert len(steps) == len(set(steps))
    assert {step.name for step in STEPS} <= set(steps)
    engine.dispose()
