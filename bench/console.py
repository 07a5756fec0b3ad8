"""The console's pages over 100,000 jobs: each page's time, as an operator's browser waits for it.

    .venv/bin/python bench/console.py                      # SQLite file in a temporary directory
    .venv/bin/python bench/console.py --database-url postgresql+psycopg://127.0.0.1/scimb_bench

Seeds ``--jobs`` jobs (default 100,000; a realistic mix: mostly done, some held, waiting and
failed; four IdP tokens; a year of creation times; every fifth a delete with a snapshot and
history evidence), a tombstone per finished delete, a step row per job and ``--events`` audit
events (default 50,000, written through the real audit log, so the chain verifies). Then signs in
an operator and requests every page through Flask's test client (no network, no Genesys: the
overview's Genesys check answers "not configured" at once), ``--repeat`` times each; prints the
median and the worst in milliseconds and the page size. Page 200 of the job list is reached by
key, as the "Older" links do; its query is also timed side by side with the OFFSET it replaced.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import DeleteBreaker, Settings
from scim_bridge.console import queries
from scim_bridge.console.operators import OperatorStore
from scim_bridge.console.queries import PAGE, JobFilter, JobKey
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.evidence import Window
from scim_bridge.deprovision.record import Evidence, History, Job, Snapshot
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import job_steps, tombstones
from scim_bridge.store.schema import jobs as jobs_table

IDPS = ("okta-prod", "entra-prod", "okta-test", "hr-sync")
YEAR = 365 * 86400
DEEP = 9_950  # jobs above page 200
STATES = (("done", 0.90), ("held", 0.02), ("waiting", 0.02), ("failed", 0.03), ("cancelled", 0.03))


def _state(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for state, share in STATES:
        total += share
        if roll < total:
            return state
    return "done"


def _job(i: int, rng: random.Random, now: float, window: Window) -> Job:
    created = now - rng.random() * YEAR
    state = _state(rng)
    action = "delete" if i % 5 == 0 else rng.choice(("deactivate", "reactivate"))
    uid = str(uuid.UUID(int=rng.getrandbits(128)))
    history = History()
    snapshot = None
    if action == "delete":
        snapshot = Snapshot({"id": uid, "email": _email(i), "name": f"User {i}"}, at=created)
        side = Evidence(12, "ab" * 32, ("c1", "c2"), window, 1, 50)
        history = History(before=side, after=side if state == "done" else None)
    return Job(
        id=uuid.uuid4().hex,
        user_id=uid,
        action=action,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        step="done" if state == "done" else "breaker",
        requested_by=rng.choice(IDPS),
        created_at=created,
        updated_at=created + 30,
        due_at=created,
        idp=rng.choice(IDPS),
        reason="breaker" if state == "held" else None,
        finished_at=created + 30 if state not in ("held", "waiting") else None,
        snapshot=snapshot,
        history=history,
    )


def _email(i: int) -> str:
    return f"user{i}@example.com"


def _step(job: Job) -> dict[str, object]:
    return {
        "job_id": job.id,
        "seq": 1,
        "step": "snapshot",
        "state": "running",
        "at": job.created_at,
        "outcome": "ok",
        "actor": "worker:bench",
        "detail": "{}",
    }


def _tombstone(i: int, job: Job) -> dict[str, object]:
    return {
        "user_id": job.user_id,
        "name": f"User {i}",
        "email": _email(i),
        "deleted_at": datetime.fromtimestamp(job.created_at + 30, UTC).isoformat(),
        "job_id": job.id,
        "evidence_sha256": "ab" * 32,
        "evidence_count": 12,
        "detail": "{}",
    }


def seed(engine: sa.Engine, n_jobs: int, rng: random.Random) -> tuple[str, str, str]:
    """Jobs, steps and tombstones; returns (a held job id, a user id, a tombstone email)."""
    now = time.time()
    window = Window(datetime.now(UTC) - timedelta(days=90), datetime.now(UTC))
    held_id = user = email = ""
    rows: dict[sa.Table, list[dict[str, object]]] = {jobs_table: [], job_steps: [], tombstones: []}
    with write_transaction(engine) as conn:
        for i in range(n_jobs):
            job = _job(i, rng, now, window)
            rows[jobs_table].append(jobs.to_row(job))
            rows[job_steps].append(_step(job))
            if job.action == "delete" and job.state == "done":
                rows[tombstones].append(_tombstone(i, job))
                email = _email(i)
            held_id = job.id if job.state == "held" else held_id
            user = job.user_id
            if len(rows[jobs_table]) >= 5000 or i == n_jobs - 1:
                for table, batch in rows.items():
                    if batch:
                        conn.execute(table.insert(), batch)
                        batch.clear()
    return held_id, user, email


def seed_events(app_audit: object, n: int, user: str, rng: random.Random) -> None:
    tags = (Tag.DEPROVISION_JOB_STEP, Tag.SCIM_USER_UPDATED, Tag.DEPROVISION_JOB_COMPLETED)
    audit = app_audit
    with write_transaction(audit.engine) as conn:  # type: ignore[attr-defined]
        recorder = audit.recorder(conn)  # type: ignore[attr-defined]
        for i in range(n):
            recorder.record(
                rng.choice(tags),
                actor=rng.choice(IDPS),
                genesys_user_id=user if i % 1000 == 0 else str(uuid.UUID(int=rng.getrandbits(128))),
                job_id=uuid.uuid4().hex,
                detail={"n": i},
            )


@dataclasses.dataclass
class Timing:
    page: str
    median_ms: float
    worst_ms: float
    kib: float


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url")
    return parser.parse_args()


def _signed_in(app: Flask, engine: sa.Engine) -> FlaskClient:
    token = OperatorStore(engine).create("bench")
    client = app.test_client()
    form = client.get("/admin/ui/sign-in").get_data(as_text=True)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert nonce is not None
    signed = client.post("/admin/ui/sign-in", data={"token": token, "csrf_token": nonce.group(1)})
    assert signed.status_code == 302
    return client


def _deep_key(engine: sa.Engine, depth: int) -> JobKey:
    """The key of the job at ``depth`` in the unfiltered list: page ``depth / 50 + 1`` starts
    below it (what following "Older" that many times reaches)."""
    query = queries.job_query(JobFilter(), older=None, newer=None).offset(depth - 1).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().one()
    return JobKey(float(row["created_at"]), str(row["id"]))


def _pages(
    engine: sa.Engine, n_jobs: int, held: str, user: str, email: str
) -> list[tuple[str, str]]:
    last = (n_jobs - 1) // PAGE * PAGE
    return [
        ("overview", "/admin/ui/"),
        ("jobs, newest", "/admin/ui/jobs"),
        (
            f"jobs, page {DEEP // PAGE + 1} (by key)",
            f"/admin/ui/jobs?older={_deep_key(engine, DEEP)}",
        ),
        ("jobs, last page (by key)", f"/admin/ui/jobs?older={_deep_key(engine, last)}"),
        ("jobs, held", "/admin/ui/jobs?state=held"),
        ("jobs, failed deletes", "/admin/ui/jobs?state=failed&action=delete"),
        (
            "jobs, one IdP, one month",
            "/admin/ui/jobs?idp=hr-sync&since=2026-06-01&until=2026-06-30",
        ),
        ("jobs, one user", f"/admin/ui/jobs?user={user}"),
        ("job (held)", f"/admin/ui/jobs/{held}"),
        ("person by id", f"/admin/ui/people?q={user}"),
        ("person by email", f"/admin/ui/people?q={email}"),
        ("audit, newest", "/admin/ui/audit"),
        ("audit, one tag", "/admin/ui/audit?tag=deprovision:job:completed"),
        ("audit, one user", f"/admin/ui/audit?user={user}"),
        ("tokens", "/admin/ui/tokens"),
    ]


def _time(client: FlaskClient, name: str, path: str, repeat: int) -> Timing:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        body = response.get_data()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (path, response.status_code)
        size = len(body)
    return Timing(name, statistics.median(times), max(times), size / 1024)


def _offset_against_key(engine: sa.Engine, depth: int, repeat: int) -> tuple[float, float]:
    """The query of the page below ``depth`` jobs, side by side: by OFFSET (the console before)
    and by key (now); the median ms of each."""
    by_offset = queries.job_query(JobFilter(), older=None, newer=None).offset(depth)
    by_key = queries.job_query(JobFilter(), older=_deep_key(engine, depth), newer=None)
    medians = []
    for query in (by_offset.limit(PAGE + 1), by_key.limit(PAGE + 1)):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                rows = conn.execute(query).all()
            times.append((time.perf_counter() - t0) * 1000)
            assert rows
        medians.append(statistics.median(times))
    return medians[0], medians[1]


def _report(engine: sa.Engine, args: argparse.Namespace, timings: list[Timing]) -> None:
    print(f"{args.jobs:,} jobs, {args.events:,} audit events on {engine.dialect.name}")
    print(f"{'page':<36} {'median ms':>10} {'worst ms':>10} {'KiB':>7}")
    for t in timings:
        print(f"{t.page:<36} {t.median_ms:>10.1f} {t.worst_ms:>10.1f} {t.kib:>7.1f}")
    for depth in (DEEP, (args.jobs - 1) // PAGE * PAGE):
        offset_ms, key_ms = _offset_against_key(engine, depth, args.repeat)
        print(
            f"the query below {depth:,} jobs: OFFSET {offset_ms:.1f} ms, by key {key_ms:.1f} ms "
            f"({offset_ms / key_ms:.1f}x)"
        )


def main() -> int:
    args = _arguments()
    rng = random.Random(16)
    logging.getLogger("scim_bridge.audit").setLevel(logging.WARNING)  # not 50,000 lines
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'console.db'}"
    app = create_app(Settings(database_url=url, delete_breaker=DeleteBreaker(25, 3600)))
    components = app.extensions["scim_bridge"]
    engine = components.engine
    started = time.perf_counter()
    held, user, email = seed(engine, args.jobs, rng)
    seed_events(components.audit, args.events, user, rng)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    print(
        f"seeded {args.jobs:,} jobs and {args.events:,} audit events on {engine.dialect.name} "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    client = _signed_in(app, engine)
    pages = _pages(engine, args.jobs, held, user, email)
    timings = [_time(client, name, path, args.repeat) for name, path in pages]
    _report(engine, args, timings)
    t0 = time.perf_counter()
    components.audit.verify()
    verify_s = time.perf_counter() - t0
    print(f"audit chain verify (on demand, {args.events + 3:,} events): {verify_s:.2f} s")
    components.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
