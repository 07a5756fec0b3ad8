"""The console's pages over 100,000 jobs: each page's time, as an operator's browser waits for it.

    .venv/bin/python bench/console.py                      # SQLite file in a temporary directory
    .venv/bin/python bench/console.py --database-url postgresql+psycopg://127.0.0.1/scimb_bench

Seeds ``--jobs`` jobs (default 100,000; a realistic mix: mostly done, some held, waiting and
failed; four IdP tokens; a year of creation times; every fifth a delete with a snapshot and
history evidence), a tombstone per finished delete, a step row per job and ``--events`` audit
events (default 50,000, written through the real audit log, so the chain verifies). Then signs in
an operator and requests every page through Flask's test client (no network, no Genesys: the
overview's Genesys check answers "not configured" at once), ``--repeat`` times each; prints the
median and the worst in milliseconds and the page size.
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import DeleteBreaker, Settings
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.evidence import Window
from scim_bridge.deprovision.record import Evidence, History, Job, Snapshot
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.schema import job_steps, tombstones
from scim_bridge.store.schema import jobs as jobs_table

IDPS = ("okta-prod", "entra-prod", "okta-test", "hr-sync")
STATES = (("done", 0.90), ("held", 0.02), ("waiting", 0.02), ("failed", 0.03), ("cancelled", 0.03))


def _state(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for state, share in STATES:
        total += share
        if roll < total:
            return state
    return "done"


def seed(engine: sa.Engine, n_jobs: int, rng: random.Random) -> tuple[str, str, str]:
    """Jobs, steps and tombstones; returns (a held job id, a user id, a tombstone email)."""
    now = time.time()
    year = 365 * 86400
    window = Window(datetime.now(UTC) - timedelta(days=90), datetime.now(UTC))
    held_id = user = email = ""
    batch: list[dict[str, object]] = []
    steps: list[dict[str, object]] = []
    stones: list[dict[str, object]] = []

    def flush(conn: sa.Connection) -> None:
        for table, rows in ((jobs_table, batch), (job_steps, steps), (tombstones, stones)):
            if rows:
                conn.execute(table.insert(), rows)
                rows.clear()

    with write_transaction(engine) as conn:
        for i in range(n_jobs):
            created = now - rng.random() * year
            state = _state(rng)
            action = "delete" if i % 5 == 0 else rng.choice(("deactivate", "reactivate"))
            uid = str(uuid.UUID(int=rng.getrandbits(128)))
            mail = f"user{i}@example.com"
            history = History()
            snapshot = None
            if action == "delete":
                snapshot = Snapshot({"id": uid, "email": mail, "name": f"User {i}"}, at=created)
                side = Evidence(12, "ab" * 32, ("c1", "c2"), window, 1, 50)
                history = History(before=side, after=side if state == "done" else None)
            job = Job(
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
            batch.append(jobs.to_row(job))
            steps.append(
                {
                    "job_id": job.id,
                    "seq": 1,
                    "step": "snapshot",
                    "state": "running",
                    "at": created,
                    "outcome": "ok",
                    "actor": "worker:bench",
                    "detail": "{}",
                }
            )
            if action == "delete" and state == "done":
                stones.append(
                    {
                        "user_id": uid,
                        "name": f"User {i}",
                        "email": mail,
                        "deleted_at": datetime.fromtimestamp(created + 30, UTC).isoformat(),
                        "job_id": job.id,
                        "evidence_sha256": "ab" * 32,
                        "evidence_count": 12,
                        "detail": "{}",
                    }
                )
                email = mail
            if state == "held":
                held_id = job.id
            user = uid
            if len(batch) >= 5000:
                flush(conn)
        flush(conn)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    rng = random.Random(16)
    logging.getLogger("scim_bridge.audit").setLevel(logging.WARNING)  # not 50,000 lines
    url = args.database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'console.db'}"
    settings = Settings(database_url=url, delete_breaker=DeleteBreaker(25, 3600))
    app = create_app(settings)
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
    token = OperatorStore(engine).create("bench")
    client = app.test_client()
    form = client.get("/admin/ui/sign-in").get_data(as_text=True)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert nonce is not None
    signed = client.post("/admin/ui/sign-in", data={"token": token, "csrf_token": nonce.group(1)})
    assert signed.status_code == 302
    pages: list[tuple[str, str]] = [
        ("overview", "/admin/ui/"),
        ("jobs, newest", "/admin/ui/jobs"),
        ("jobs, page 200", "/admin/ui/jobs?page=200"),
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
    ]
    timings: list[Timing] = []
    for name, path in pages:
        times, size = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            response = client.get(path)
            body = response.get_data()
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (path, response.status_code)
            size = len(body)
        timings.append(Timing(name, statistics.median(times), max(times), size / 1024))
    verify: Callable[[], object] = components.audit.verify
    t0 = time.perf_counter()
    verify()
    verify_s = time.perf_counter() - t0
    print(f"{'page':<28} {'median ms':>10} {'worst ms':>10} {'KiB':>7}")
    for t in timings:
        print(f"{t.page:<28} {t.median_ms:>10.1f} {t.worst_ms:>10.1f} {t.kib:>7.1f}")
    print(f"audit chain verify (on demand, {args.events + 3:,} events): {verify_s:.2f} s")
    components.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
