"""The trail's chain: appends link, verify catches edits, deletions and reordering."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa

from scim_bridge import correlation
from scim_bridge.audit import GENESIS_HASH, AuditLog, Tag
from scim_bridge.store.engine import make_engine, write_transaction
from scim_bridge.store.migrate import upgrade


class Abort(Exception):
    """Raised in a test to roll its transaction back."""


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.record(
            Tag.DEPROVISION_QUEUE_REMOVED,
            actor="worker",
            scim_id=f"scim-{i % 3}",
            genesys_user_id=f"g-{i % 3}",
            job_id=f"job-{i % 2}",
            detail={"queue_id": f"q-{i}", "genesys_correlation_ids": [f"inin-{i}"]},
        )


def test_events_link_into_one_chain(engine: sa.Engine) -> None:
    log = AuditLog(engine)
    first = log.record(Tag.SCIM_USER_DELETE_REQUESTED, actor="okta", idp="okta", scim_id="u1")
    second = log.record(
        Tag.DEPROVISION_USER_DEACTIVATED,
        actor="worker",
        outcome="ok",
        scim_id="u1",
        genesys_user_id="g1",
        job_id="j1",
        detail={"genesys_correlation_ids": ["c-1", "c-2"], "attempt": 1},
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert second.computed_hash() == second.hash
    assert first.at.tzinfo is UTC
    assert log.events() == [first, second]
    assert log.verify().ok
    assert log.verify().count == 2


def test_canonical_json_is_what_is_hashed(engine: sa.Engine) -> None:
    event = AuditLog(engine).record(Tag.SCIM_USER_CREATED, actor="okta", detail={"b": 1, "a": "é"})
    line = event.to_json()
    assert " " not in line
    assert line.isascii()
    body = json.loads(line)
    assert list(body) == sorted(body)
    assert body["at"].endswith("Z")
    del body["hash"]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).hexdigest() == event.hash


def test_correlation_id_defaults_to_the_current_unit_of_work(engine: sa.Engine) -> None:
    log = AuditLog(engine)
    with correlation.bound("req-123"):
        bound = log.record(Tag.SCIM_USER_UPDATED, actor="okta")
        explicit = log.record(Tag.SCIM_USER_UPDATED, actor="okta", correlation_id="other")
    unbound = log.record(Tag.SCIM_USER_UPDATED, actor="okta")
    assert (bound.correlation_id, explicit.correlation_id) == ("req-123", "other")
    assert unbound.correlation_id is None


def test_the_clock_is_injectable_and_times_are_utc(engine: sa.Engine) -> None:
    ticks = count()
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    log = AuditLog(engine, clock=lambda: start + timedelta(minutes=next(ticks)))
    _fill(log, 5)
    assert [e.at for e in log.events()] == [start + timedelta(minutes=i) for i in range(5)]
    assert [e.seq for e in log.events(since="2026-03-01T09:03:00Z")] == [4, 5]
    assert [e.seq for e in log.events(since=start + timedelta(minutes=4))] == [5]
    # A time without zone is read as UTC.
    assert [e.seq for e in log.events(since="2026-03-01T09:02:00")] == [3, 4, 5]


def test_unknown_tags_and_naive_times_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="not a valid Tag"):
        AuditLog(engine).record("made:up:tag", actor="x")  # type: ignore[arg-type]
    naive = AuditLog(engine, clock=lambda: datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.record(Tag.SCIM_USER_CREATED, actor="x")
    assert AuditLog(engine).verify().count == 0


def test_filters(engine: sa.Engine) -> None:
    log = AuditLog(engine)
    _fill(log, 9)
    assert [e.seq for e in log.events(user="scim-1")] == [2, 5, 8]
    assert [e.seq for e in log.events(user="g-2")] == [3, 6, 9]
    assert [e.seq for e in log.events(job_id="job-1")] == [2, 4, 6, 8]
    assert [e.seq for e in log.events(user="scim-1", job_id="job-1")] == [2, 8]
    assert [e.seq for e in log.events(limit=3, after_seq=4)] == [5, 6, 7]
    assert log.events(tag=Tag.SCIM_USER_CREATED) == []
    assert len(log.events(tag="deprovision:queue:removed")) == 9
    assert [e.seq for e in log.iter_events(batch=2, after_seq=6)] == [7, 8, 9]
    with pytest.raises(ValueError, match="limit"):
        log.events(limit=0)


def test_recording_inside_the_callers_transaction(engine: sa.Engine) -> None:
    """A job row and its event commit together, or not at all."""
    log = AuditLog(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch_jobs (id VARCHAR(20) PRIMARY KEY, state TEXT)")
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO scratch_jobs VALUES ('j1', 'deactivated')")
        log.recorder(conn).record(Tag.DEPROVISION_USER_DEACTIVATED, actor="worker", job_id="j1")
        log.record(Tag.DEPROVISION_JOB_COMPLETED, actor="worker", job_id="j1", conn=conn)
    with contextlib.suppress(Abort), write_transaction(engine) as conn:
        conn.exec_driver_sql("INSERT INTO scratch_jobs VALUES ('j2', 'deactivated')")
        log.record(Tag.DEPROVISION_USER_DEACTIVATED, actor="worker", job_id="j2", conn=conn)
        raise Abort("the Genesys call failed after all")
    with engine.connect() as conn:
        jobs = conn.exec_driver_sql("SELECT id FROM scratch_jobs").scalars().all()
    assert jobs == ["j1"]
    assert [(e.seq, e.job_id) for e in log.events()] == [(1, "j1"), (2, "j1")]
    # The rolled-back event's seq is reused: the chain stays gap-free.
    assert log.record(Tag.DEPROVISION_JOB_CREATED, actor="worker", job_id="j3").seq == 3
    assert log.verify().ok


def test_log_lines_only_for_committed_events(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(engine)
    caplog.set_level("INFO", logger="scim_bridge.audit")
    with write_transaction(engine) as conn:
        log.record(Tag.DEPROVISION_JOB_CREATED, actor="worker", job_id="kept", conn=conn)
        with conn.begin_nested() as savepoint:
            log.record(Tag.DEPROVISION_JOB_CREATED, actor="worker", job_id="undone", conn=conn)
            savepoint.rollback()
        assert caplog.records == []  # not committed yet
    with contextlib.suppress(Abort), write_transaction(engine) as conn:
        log.record(Tag.DEPROVISION_JOB_CREATED, actor="worker", job_id="rolled", conn=conn)
        raise Abort
    log.record(Tag.DEPROVISION_JOB_CREATED, actor="worker", job_id="own")
    logged = [r.audit for r in caplog.records if r.name == "scim_bridge.audit"]  # type: ignore[attr-defined]
    assert [line["job_id"] for line in logged] == ["kept", "own"]
    assert [e.job_id for e in log.events()] == ["kept", "own"]
    assert logged == [e.to_dict() for e in log.events()]
    assert log.verify().ok


# -- tampering with the SQLite file directly ------------------------------------------------


@pytest.fixture
def trail(sqlite_url: str) -> tuple[AuditLog, Path]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    log = AuditLog(engine)
    _fill(log, 6)
    assert log.verify().ok
    return log, Path(sa.make_url(sqlite_url).database or "")


def _tamper(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    try:
        with db:
            for statement in statements:
                db.execute(statement)
    finally:
        db.close()


def test_an_edited_row_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(path, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 4")
    result = log.verify()
    assert (result.ok, result.first_broken_seq, result.count) == (False, 4, 3)
    assert "edited" in (result.reason or "")


def test_an_edited_detail_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(
        path,
        "UPDATE audit_events SET detail = replace(detail, 'inin-2', 'inin-X') WHERE seq = 3",
    )
    assert log.verify().first_broken_seq == 3


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    trail: tuple[AuditLog, Path],
) -> None:
    log, path = trail
    (row,) = [e for e in log.events() if e.seq == 2]
    forged = {**row.hashed_fields(), "outcome": "forged"}
    digest = hashlib.sha256(
        json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    _tamper(path, f"UPDATE audit_events SET outcome = 'forged', hash = '{digest}' WHERE seq = 2")
    result = log.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "prev_hash" in (result.reason or "")


def test_a_deleted_row_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(path, "DELETE FROM audit_events WHERE seq = 3")
    result = log.verify()
    assert (result.ok, result.first_broken_seq, result.count) == (False, 3, 2)
    assert "missing" in (result.reason or "")


def test_a_deleted_first_row_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(path, "DELETE FROM audit_events WHERE seq = 1")
    assert log.verify().first_broken_seq == 1


def test_a_cut_off_end_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(path, "DELETE FROM audit_events WHERE seq >= 5")
    result = log.verify()
    assert (result.ok, result.first_broken_seq) == (False, 5)
    assert "removed from the end" in (result.reason or "")


def test_a_swapped_pair_is_detected(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    _tamper(
        path,
        "UPDATE audit_events SET seq = -1 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = -1",
    )
    result = log.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_swapped_contents_are_detected(trail: tuple[AuditLog, Path]) -> None:
    """Swapping everything but seq (so the seqs still run 1..n)."""
    log, path = trail
    columns = "at, tag, actor, idp, correlation_id, scim_id, genesys_user_id, job_id, outcome, detail, prev_hash, hash"
    _tamper(
        path,
        f"CREATE TEMP TABLE t AS SELECT seq, {columns} FROM audit_events WHERE seq IN (2, 5)",
        *[
            f"UPDATE audit_events SET ({columns}) = (SELECT {columns} FROM t WHERE t.seq = {b})"
            f" WHERE seq = {a}"
            for a, b in ((2, 5), (5, 2))
        ],
    )
    assert log.verify().first_broken_seq == 2


def test_an_intact_trail_verifies_after_reopening(trail: tuple[AuditLog, Path]) -> None:
    log, path = trail
    reopened = AuditLog(make_engine(f"sqlite:///{path}"))
    assert reopened.verify() == log.verify()
    assert reopened.verify().count == 6


def test_long_and_unicode_values_record_the_same_on_both_databases(engine: sa.Engine) -> None:
    log = AuditLog(engine)
    long_id = "u" * 600
    event = log.record(
        Tag.SCIM_USER_UPDATED,
        actor="entra",
        scim_id=long_id,
        detail={
            "displayName": "Zoë Ñúñez 山田",
            "ratio": 0.1,
            "big": 2**60,
            "nested": {"b": [1.5]},
        },
    )
    (stored,) = log.events(user=long_id)
    assert stored == event
    assert stored.detail["displayName"] == "Zoë Ñúñez 山田"
    assert log.verify().ok
