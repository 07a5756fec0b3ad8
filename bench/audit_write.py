"""The cost of one audit write: events per second on SQLite and on PostgreSQL, side by side.

    .venv/bin/python bench/audit_write.py [--events 2000] [--processes 4] [--no-postgres]

Each write is a full ``AuditLog.record`` in its own transaction (lock the chain head, hash,
insert, commit), as the bridge does it. "1 writer" is one process in a loop; "N writers" is N
processes appending to the same chain at once (gunicorn workers plus the worker), timed from a
shared start to the last commit. The chain is verified after each run. SQLite is a file in a
temporary directory (WAL, synchronous=FULL); PostgreSQL is a fresh database on
``SCIM_BRIDGE_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), dropped after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
import sqlalchemy as sa
from psycopg import sql

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "SCIM_BRIDGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DETAIL = {
    "step": "deactivate",
    "genesys_correlation_ids": ["0f8fad5b-d9cb-469f-a165-70867728950e"],
    "queues_removed": ["a1b2c3", "d4e5f6"],
}


def _write(
    url: str, count: int, start: Barrier | None, results: multiprocessing.Queue[object]
) -> None:
    engine = make_engine(url)
    log = AuditLog(engine)
    log.record(Tag.DEPROVISION_JOB_STEP, actor="bench", detail={"warm": True})  # connect first
    if start is not None:
        start.wait()
    began = time.monotonic()
    for i in range(count):
        log.record(
            Tag.DEPROVISION_USER_DEACTIVATED,
            actor="bench",
            scim_id=f"u{i}",
            genesys_user_id=f"g{i}",
            job_id=f"j{i}",
            detail=DETAIL,
        )
    results.put((began, time.monotonic()))
    engine.dispose()


def _run(url: str, events: int, processes: int) -> tuple[int, float]:
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[object] = ctx.Queue()
    start = ctx.Barrier(processes) if processes > 1 else None
    per_process = events // processes
    procs = [
        ctx.Process(target=_write, args=(url, per_process, start, results))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    spans = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a writer failed (exit {proc.exitcode})")
    began = min(s[0] for s in spans)  # type: ignore[index]
    ended = max(s[1] for s in spans)  # type: ignore[index]
    written = per_process * processes
    return written, written / (ended - began)


def _fresh(backend: str, tmp: Path) -> tuple[str, object]:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}", None
    name = f"scim_bridge_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), name


def _drop(name: object) -> None:
    if name is None:
        return
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run (default 2000)")
    parser.add_argument("--processes", type=int, default=4, help="concurrent writers (default 4)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

    backends = ["sqlite"] if args.no_postgres else ["sqlite", "postgresql"]
    rows: list[tuple[str, int, int, float, bool]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for backend in backends:
            for writers in (1, args.processes):
                url, handle = _fresh(backend, Path(tmpdir))
                try:
                    engine = make_engine(url)
                    upgrade(engine)
                    written, rate = _run(url, args.events, writers)
                    result = AuditLog(engine).verify()
                    engine.dispose()
                    rows.append((backend, writers, written, rate, result.ok))
                finally:
                    _drop(handle)

    print(f"audit writes, one transaction each ({os.cpu_count()} CPUs)")
    print(f"{'database':<11} {'writers':>7} {'events':>7} {'events/s':>9} {'ms/event':>9}  chain")
    for backend, writers, events, rate, ok in rows:
        print(
            f"{backend:<11} {writers:>7} {events:>7} {rate:>9.0f} {1000 / rate:>9.2f}  "
            f"{'verified' if ok else 'BROKEN'}"
        )
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
