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
from scim_bridge.deprovision import model as m
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
from scim_bridge.genesys.history import MAX_USERS_PER_QUERY
from scim_bridge.genesys.types import CallRecord, Footprint, GenesysUser, QueueMembership
from scim_bridge.store import schema

log = logging.getLogger(__name__)

POLICY_INTERVAL_S = 60.0
# Shared stops in a round: snapshot read, verify_before, confirm read, verify_after, and slack.
_MAX_BARRIERS = 6
_STOPS = ("needs-history", "needs-read")
_FOOTPRINT_CHUNK = 50  # users per bulk footprint read in a round (one GET, then a grants read each)
# What a bulk read may settle for a step; anything else the step reads for itself, alone.
_SETTLES: dict[str, tuple[str, ...]] = {
    "snapshot": ("active", "inactive"),
    "confirm_deleted": ("deleted",),
}


def _with_footprint(r: RunResult) -> bool:
    return r.job.step == "snapshot" and r.job.action != "reactivate"


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
        gather_s: float | None = None,
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
        # verify_before checks held back (claims kept, leases renewed) so that one async details
        # job serves the users that reach the check within ``gather_s`` (issue 11).
        self.gather_s = (
            service.policies.history_batch_window_s if gather_s is None else max(0.0, gather_s)
        )
        self._gathering: dict[str, tuple[RunResult, float]] = {}  # job id -> (run, since)

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
            self._release_gathered()
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
                waits = [] if due is None else [due - self.service.clock()]
                if self._gathering:
                    waits.append(self._flush_at() - time.monotonic())
                if not waits:
                    break
                wait = min(waits)
                if time.monotonic() + wait >= end:
                    break
                self.wake_event.wait(min(max(wait, 0.0), self.poll_s * 20))
                self.wake_event.clear()
        if self.stopping:
            self._release_gathered()
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
        flushing = bool(self._gathering) and time.monotonic() >= self._flush_at()
        if not claims and not flushing:
            return 0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="deprovision") as pool:
            results = list(pool.map(self._advance, claims))
            for _ in range(_MAX_BARRIERS):
                needing = [r for r in results if r.stopped in _STOPS]
                others = [r for r in results if r.stopped not in _STOPS]
                self._count(others)
                if self.stopping:
                    for r in needing:
                        jobs.release(self.engine, r.claim, now=self.service.clock())
                    self._release_gathered()
                    results = []
                    break
                needing = self._gather(needing)
                if not needing:
                    results = []
                    break
                answers = self._history_for([r for r in needing if r.stopped == "needs-history"])
                reads = self._reads_for([r for r in needing if r.stopped == "needs-read"])
                advance = functools.partial(self._advance, answers=answers, reads=reads)
                results = list(pool.map(advance, [r.claim for r in needing]))
            for r in results:
                if r.stopped in _STOPS:
                    jobs.release(self.engine, r.claim, now=self.service.clock())
        return len(claims) + (1 if flushing else 0)

    # -- gathering verify_before checks into one async job ---------------------------------------

    def _gather(self, needing: list[RunResult]) -> list[RunResult]:
        """What goes on now: ``needing`` less the fresh verify_before checks held back, plus the
        held ones when it is time. Held back while fewer than 100 users wait, the first of them
        has waited less than ``gather_s`` and another delete is on its way to the check; then
        all of them go into one async job."""
        fresh = [r for r in needing if self._gatherable(r)]
        if not fresh and not self._gathering:
            return needing
        now = time.monotonic()
        for r in fresh:
            since = self._gathering.get(r.job.id, (r, now))[1]
            self._gathering[r.job.id] = (r, since)
        full = len(self._gathering) >= MAX_USERS_PER_QUERY
        if not full and now < self._flush_at() and self._more_coming():
            held = set(self._gathering)
            return [r for r in needing if r.job.id not in held]
        flushed = [r for r, _ in self._gathering.values()]
        self._gathering.clear()
        ids = {r.job.id for r in flushed}
        return [r for r in needing if r.job.id not in ids] + flushed

    def _gatherable(self, r: RunResult) -> bool:
        return (
            self.gather_s > 0
            and r.stopped == "needs-history"
            and r.job.step == "verify_before"
            and r.job.history.pending is None
        )

    def _more_coming(self) -> bool:
        """An open delete is at a step before verify_before (in any state but finished or held)."""
        sequence = m.SEQUENCES["delete"]
        upstream = sequence[: sequence.index("verify_before")]
        table = schema.jobs
        with self.engine.connect() as conn:
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(
                    table.c.action == "delete",
                    table.c.state.in_(jobs.CLAIMABLE),
                    table.c.step.in_(upstream),
                )
            ).scalar_one()
        return int(count) > 0

    def _flush_at(self) -> float:
        return min(since for _, since in self._gathering.values()) + self.gather_s

    def _release_gathered(self) -> None:
        for r, _ in self._gathering.values():
            jobs.release(self.engine, r.claim, now=self.service.clock())
        self._gathering.clear()

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
        drains = [r for r in needing if r.job.step == "drain"]
        needing = [r for r in needing if r.job.step != "drain"]
        answers = self._drains_for(drains)
        if not needing:
            return answers
        # A deactivate's or delete's snapshot takes the footprint too (issue 12): its bulk read
        # asks for the footprint's expands and reads each user's grants.
        snapshots = sorted(
            {r.job.user_id for r in needing if r.job.step == "snapshot" and _with_footprint(r)}
        )
        user_ids = sorted({r.job.user_id for r in needing if not _with_footprint(r)})
        found: dict[str, GenesysUser] = {}
        footprints: dict[str, Footprint] = {}
        memberships: dict[str, tuple[QueueMembership, ...]] = {}
        calls: tuple[CallRecord, ...] = ()
        gateway = self.runner.gateway
        try:
            if user_ids:
                found, calls = self.runner.calls_of(
                    lambda: gateway.get_users(user_ids, deadline=time.monotonic() + 120)
                )
            # In chunks, each with its own deadline: a round's footprints are one grants read a
            # user, and a chunk that runs out of budget keeps what the chunks before it read (its
            # users and the rest are read alone, as they would be).
            for i in range(0, len(snapshots), _FOOTPRINT_CHUNK):
                chunk = snapshots[i : i + _FOOTPRINT_CHUNK]
                read = functools.partial(gateway.footprints, chunk, deadline=time.monotonic() + 120)
                got, more = self.runner.calls_of(read)
                calls += more
                footprints.update(got)
                found.update({uid: fp.user for uid, fp in got.items()})
            if footprints:  # and the memberships of those users, all at once (issue 11)
                listing = functools.partial(
                    gateway.queue_memberships, sorted(footprints), deadline=time.monotonic() + 120
                )
                memberships, more = self.runner.calls_of(listing)
                calls += more
        except GenesysError as error:
            log.warning("batched user read failed", extra={"error": error.describe()})
        for r in needing:
            user = found.get(r.job.user_id)
            if user is not None and user.state not in _SETTLES.get(r.job.step, ()):
                user = None
            footprint = footprints.get(r.job.user_id) if _with_footprint(r) else None
            if _with_footprint(r) and footprint is None:
                user = None  # read alone, footprint included
            answers[(r.job.id, r.job.step)] = BatchedRead(
                user,
                calls if user is not None else (),
                footprint=footprint,
                queues=memberships.get(r.job.user_id) if footprint is not None else None,
            )
        return answers

    # -- batched drains --------------------------------------------------------------------------------

    def _drains_for(self, drains: list[RunResult]) -> dict[tuple[str, str], BatchedRead]:
        """The round's drains in bulk (issue 11): the memberships the run read (or one read for
        the users it did not), the removals the model decides for each job, then one request per
        queue and 100 users (``POST /routing/queues/{q}/members?delete=true``). Each job's drain
        step then records its own outcome (a refusal as it would alone)."""
        if not drains:
            return {}
        memberships = {r.job.user_id: r.queues for r in drains if r.queues is not None}
        missing = sorted({r.job.user_id for r in drains} - set(memberships))
        calls: tuple[CallRecord, ...] = ()
        try:
            if missing:
                listing = functools.partial(
                    self.runner.gateway.queue_memberships,
                    missing,
                    deadline=time.monotonic() + 120,
                )
                read, calls = self.runner.calls_of(listing)
                memberships.update(read)
        except GenesysError as error:
            log.warning("batched membership read failed", extra={"error": error.describe()})
        plans = {
            r.job.id: self.runner.drain_plan(r.job, memberships[r.job.user_id])
            for r in drains
            if r.job.user_id in memberships
        }
        by_queue: dict[str, list[str]] = {}
        for r in drains:
            for queue_id in plans.get(r.job.id, ()):
                by_queue.setdefault(queue_id, []).append(r.job.user_id)
        remove = functools.partial(
            self.runner.remove_in_bulk, by_queue, deadline=time.monotonic() + 120
        )
        outcomes, more = self.runner.calls_of(remove)
        return {
            (r.job.id, r.job.step): BatchedRead(
                None,
                calls + more,
                queues=memberships.get(r.job.user_id),
                removals={q: outcomes[(q, r.job.user_id)] for q in plans.get(r.job.id, ())},
            )
            for r in drains
        }

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
