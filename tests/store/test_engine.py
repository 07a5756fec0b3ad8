"""The engine: URL handling, SQLite settings for several processes, PostgreSQL through psycopg."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import sqlalchemy as sa

from scim_bridge.store.engine import make_engine, normalise_url, write_transaction


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+psycopg://u@h/db?sslmode=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///scim-bridge.db", "sqlite:///scim-bridge.db"),
    ],
)
def test_libpq_urls_are_rewritten_to_psycopg(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        make_engine("mysql://u@h/db")


def test_sqlite_is_set_up_for_several_processes(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 2,
    }
    engine.dispose()


def test_postgresql_engine_uses_psycopg(db_url: str) -> None:
    engine = make_engine(db_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.dialect.name in ("sqlite", "postgresql")
    if engine.dialect.name == "postgresql":
        assert engine.dialect.driver == "psycopg"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_sqlite_transactions_are_real_and_ddl_rolls_back(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with contextlib.suppress(LookupError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        raise LookupError("roll back")
    assert not sa.inspect(engine).has_table("t")
    engine.dispose()


def test_write_transaction_takes_the_sqlite_write_lock_at_begin(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: a second writer waits for the first's commit instead of failing."""
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with write_transaction(engine) as conn:
            order.append("first-begun")
            holding.set()
            time.sleep(0.3)
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            order.append("first-committing")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    with write_transaction(engine) as conn:
        # Only reached once the first has committed: BEGIN IMMEDIATE waited for the lock.
        order.append("second-begun")
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    thread.join()
    assert order == ["first-begun", "first-committing", "second-begun"]
    engine.dispose()
