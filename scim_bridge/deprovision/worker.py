"""The worker: finishes what requests left, in batches, until told to stop.

Each round it claims up to ``batch`` due jobs and advances them on a small thread pool until
each one finishes, waits, or reaches a history check or a user read it can share; the history
checks of the round are then answered together (``deprovision/proof.py``: one async details job
per window and 100 users, polled once a round for every job waiting on it, and one synchronous
tail query per window and 100 users),
the user reads of ``snapshot`` and ``confirm_deleted`` with one ``GET /api/v2/users?id=...``
per 100 users (``get_users``), and the jobs go on. A heartbeat thread
renews the leases the worker holds and its row in ``worker_heartbeats``. On stop (SIGTERM), each
job is handed back at its next step boundary: nothing is lost, the next worker resumes it.

``WorkerThread`` runs the same loop in a daemon thread for a single-process server.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import sqlalchemy as sa

from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.jobs import Claim
from scim_bridge.deprovision.runner import (
    BatchedRead,
    HistoryResult,
    Runner,
    RunResult,
)
from scim_bridge.deprovision.service import JobService, owner_id
from scim_bridge.genesys.errors import GenesysError
from scim_bridge.genesys.types import CallRecord, GenesysUser

log = logging.getLogger(__name__)

POLICY_INTERVAL_S = 60.0
# Shared stops in a round: snapshot read, verify_before, confirm read, verify_after, and slack.
_MAX_BARRIERS = 6
_STOPS = ("needs-history", "needs-read")
# What a bulk read may settle for a step; anything else the step reads for itself, alone.
_SETTLES: dict[str, tuple[str, ...]] = {
    "snapshot": ("active", "inactive"),
    "confirm_deleted": ("deleted",),
}


class Worker:
    def __init__(
        self,
        service: JobService,
        *,
        batch: int = 100,
        concurrency: int = 4,
        poll_s: float = 1.0,
        owner: str | None = None,
        on_step_boundary: Callable[[RunResult], None] | None = None,
    ) -> None:
        self.service = service
        self.engine: sa.Engine = service.engine
        self.runner: Runner = service.runner
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.poll_s = poll_s
        self.owner = owner or owner_id("worker")
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.jobs_finished = 0
        self.history_queries = 0
        self.started_at = service.clock()
        self._last_policy_run = 0.0
        self._on_result = on_step_boundary

    # -- control -----------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    def wake(self) -> None:
        self.wake_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    # -- the loop -----------------------------------------------------------------------------------

    def run_forever(self) -> None:
        beat = threading.Thread(
            target=self._heartbeat_loop, name="deprovision-heartbeat", daemon=True
        )
        beat.start()
        try:
            while not self.stopping:
                try:
                    self.schedule_policy_deletes()
                    worked = self.run_once()
                except Exception:
                    log.exception("worker round failed")
                    worked = 0
                if worked == 0 and not self.stopping:
                    self.wake_event.wait(self.poll_s)
                    self.wake_event.clear()
        finally:
            self.stop_event.set()
            beat.join(timeout=5)
            self._beat("stopped")

    def run_until_idle(self, *, timeout_s: float = 60.0) -> int:
        """Rounds until no job is due, nor waits on an async details job that will be done
        within ``timeout_s`` (tests and the benchmark); returns jobs finished."""
        end = time.monotonic() + timeout_s
        before = self.jobs_finished
        while time.monotonic() < end and not self.stopping:
            if self.run_once() == 0:
                due = jobs.next_history_poll(self.engine)
                if due is None:
                    break
                wait = due - self.service.clock()
                if time.monotonic() + wait >= end:
                    break
                self.wake_event.wait(min(max(wait, 0.0), self.poll_s * 20))
                self.wake_event.clear()
        return self.jobs_finished - before

    def run_once(self) -> int:
        """One round: claim due jobs, advance them, batch their history checks."""
        claims = jobs.claim_due(
            self.engine,
            owner=self.owner,
            now=self.service.clock(),
            lease_s=self.service.lease_s,
            limit=self.batch,
        )
        if not claims:
            return 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="deprovision") as pool:
            results = list(pool.map(self._advance, claims))
            for _ in range(_MAX_BARRIERS):
                needing = [r for r in results if r.stopped in _STOPS]
                others = [r for r in results if r.stopped not in _STOPS]
                self._count(others)
                if not needing:
                    results = []
                    break
                if self.stopping:
                    for r in needing:
                        jobs.release(self.engine, r.claim, now=self.service.clock())
                    results = []
                    break
                answers = self._history_for([r for r in needing if r.stopped == "needs-history"])
                reads = self._reads_for([r for r in needing if r.stopped == "needs-read"])
                advance = functools.partial(self._advance, answers=answers, reads=reads)
                results = list(pool.map(advance, [r.claim for r in needing]))
            for r in results:
                if r.stopped in _STOPS:
                    jobs.release(self.engine, r.claim, now=self.service.clock())
        return len(claims)

    def _advance(
        self,
        claim: Claim,
        answers: dict[tuple[str, str], HistoryResult] | None = None,
        reads: dict[tuple[str, str], BatchedRead] | None = None,
    ) -> RunResult:
        result = self.runner.run(
            claim,
            history=answers,
            stop_before_history=True,
            reads=reads,
            stop_before_reads=True,
            should_stop=lambda: self.stopping,
        )
        if self._on_result is not None:
            self._on_result(result)
        return result

    def _count(self, results: list[RunResult]) -> None:
        self.jobs_finished += sum(1 for r in results if r.stopped == "stopped" and not r.job.open)

    # -- batched user reads ---------------------------------------------------------------------------

    def _reads_for(self, needing: list[RunResult]) -> dict[tuple[str, str], BatchedRead]:
        """One bulk read (``GET /api/v2/users?id=...&state=any``, 100 ids a call) for every job at
        a read step. It settles a step only with a state that step accepts from it (``_SETTLES``:
        ``deleted`` for confirm_deleted, so the bulk read only ever shortcuts the proof it reads);
        every other job gets an empty answer and reads its user itself, as it would alone."""
        if not needing:
            return {}
        user_ids = sorted({r.job.user_id for r in needing})
        found: dict[str, GenesysUser] = {}
        calls: tuple[CallRecord, ...] = ()
        try:
            found, calls = self.runner.calls_of(
                lambda: self.runner.gateway.get_users(user_ids, deadline=time.monotonic() + 120)
            )
        except GenesysError as error:
            log.warning("batched user read failed", extra={"error": error.describe()})
        answers: dict[tuple[str, str], BatchedRead] = {}
        for r in needing:
            user = found.get(r.job.user_id)
            if user is not None and user.state not in _SETTLES.get(r.job.step, ()):
                user = None
            answers[(r.job.id, r.job.step)] = BatchedRead(user, calls if user is not None else ())
        return answers

    # -- batched history ------------------------------------------------------------------------------

    def _history_for(self, needing: list[RunResult]) -> dict[tuple[str, str], HistoryResult]:
        """Every job at a history check, through one ``Prover.run`` (deprovision/proof.py): one
        async details job per window and 100 users, polled once per round for all the jobs that
        wait on it, and one synchronous tail query per window and 100 users. A call that fails
        leaves only its own jobs unanswered (they try again next round)."""
        if not needing:
            return {}
        requests = [self.runner.history_request(r.job) for r in needing]
        answers, calls = self.runner.calls_of(
            lambda: self.runner.prover.run(requests, deadline=time.monotonic() + 120)
        )
        self.history_queries += len(calls)
        return {cast(tuple[str, str], key): answer for key, answer in answers.items()}

    # -- DELETE_INACTIVE_AFTER -------------------------------------------------------------------------

    def schedule_policy_deletes(self, *, force: bool = False) -> int:
        """Create delete jobs for users the bridge deactivated longer ago than the grace period."""
        after = self.service.policies.delete_inactive_after_s
        now = self.service.clock()
        if after is None or (not force and now - self._last_policy_run < POLICY_INTERVAL_S):
            return 0
        self._last_policy_run = now
        created = 0
        for user_id in jobs.users_due_for_delete(self.engine, deactivated_before=now - after):
            self.service.enqueue(
                "delete",
                user_id,
                requester=Requester(actor="policy:delete-inactive-after"),
                from_policy=True,
            )
            created += 1
        if created:
            self.wake()
        return created

    # -- heartbeats ----------------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = max(0.2, self.service.lease_s / 3)
        while not self.stop_event.wait(interval):
            try:
                jobs.renew_leases(
                    self.engine,
                    owner=self.owner,
                    now=self.service.clock(),
                    lease_s=self.service.lease_s,
                )
                self._beat("running")
            except Exception:
                log.exception("heartbeat failed")

    def _beat(self, state: str) -> None:
        try:
            jobs.heartbeat(
                self.engine,
                worker_id=self.owner,
                now=self.service.clock(),
                started_at=self.started_at,
                jobs_finished=self.jobs_finished,
                state=state,
            )
        except Exception:
            log.exception("heartbeat row not written")


class WorkerThread:
    """The worker in a daemon thread, for a server that is the only process (worker_in_process)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._thread = threading.Thread(
            target=worker.run_forever, name="deprovision-worker", daemon=True
        )

    def start(self) -> WorkerThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.worker.stop()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
