"""Writers in several processes (gunicorn workers, the worker, replicas) keep one linear chain."""

from __future__ import annotations

import itertools
import multiprocessing

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.store.engine import make_engine, write_transaction

PROCESSES = 4
EVENTS_EACH = 50


def _writer(url: str, writer: int, start: multiprocessing.synchronize.Barrier) -> None:
    engine = make_engine(url)
    log = AuditLog(engine)
    start.wait()
    for i in range(EVENTS_EACH):
        detail = {"writer": writer, "i": i}
        if i % 2:
            # Half of them in a caller's transaction, as the deprovisioning engine does.
            with write_transaction(engine) as conn:
                log.recorder(conn).record(
                    Tag.DEPROVISION_QUEUE_REMOVED, actor=f"w{writer}", detail=detail
                )
        else:
            log.record(Tag.DEPROVISION_QUEUE_REMOVED, actor=f"w{writer}", detail=detail)
    engine.dispose()


@pytest.mark.slow
def test_concurrent_processes_keep_one_linear_chain(db_url: str, engine: sa.Engine) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=_writer, args=(db_url, w, start)) for w in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES

    log = AuditLog(engine)
    result = log.verify()
    total = PROCESSES * EVENTS_EACH
    assert (result.ok, result.count) == (True, total), result
    events = list(log.iter_events())
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    # Each writer's events appear in the order it wrote them.
    for w in range(PROCESSES):
        mine = [e.detail["i"] for e in events if e.actor == f"w{w}"]
        assert mine == list(range(EVENTS_EACH))
    # Time order is seq order (the time is taken under the chain lock).
    assert [e.at for e in events] == sorted(e.at for e in events)
