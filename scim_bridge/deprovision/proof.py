"""The history proof over the whole window: an async details job for the past the data lake
holds, the synchronous query for the tail it does not hold yet (genesys-api.md 4.1, 4.3).

For a window ``since..until`` and some users (a job alone, or every job a worker round has at
the same check), :class:`Prover` answers each with one of:

* :class:`Waiting`: an async job is running at Genesys; keep its ``PendingJob`` on the job's
  record (a process that dies resumes polling it) and come back at ``poll_at``;
* :class:`Proven`: the conversations attributed to the user, in two parts that say what covered
  what: the async job from ``since`` to ``until`` as far as the lake reached (its
  ``dataAvailabilityDate``), the synchronous query from :data:`TAIL_OVERLAP` before that date to
  ``until``;
* :class:`Lost`: the async job failed or expired (or Genesys forgot it) more than
  ``max_resubmits`` times in a row: hold the job with the reason.

One async job serves up to 100 users: requests at the same window and check share one, and the
tail query is shared the same way (``Gateway.conversation_history``).

The check after a delete (``Request.before``) asks whether every conversation found before is
still there and still attributed to the user; conversations that were not there before prove
nothing either way. So it looks only for those ids, by id (``Gateway.conversations_by_id``:
``GET /api/v2/analytics/conversations/details?id=``, 100 ids a call, synchronous) whenever that
takes no more calls than the async job and the tail would: a job costs a submission, a status
read and a results page per 100 conversations, the tail at least one query, so with both page
sizes at 100 the read by id always wins, and it needs no wait on the lake (issue 11: it was half
the history calls of a delete alone). A present id is proof; a missing one is not taken on the
read by id's word (what it answers for an id it cannot give is UNCONFIRMED, and a false alarm
restores the user and holds the job): that user is checked again through the path that found it.
That path, the async job and the tail, also runs when Genesys refuses the read (its id limit is
UNCONFIRMED) or when the ids are more than the job would take: users whose async part found
nothing are left out of the job, and the tail reads only the intervals where something was
found, each until every id is back.

Why the tail starts a week before the lake date: the lake holds a conversation once it has ended
(the sandbox's stricter reading, docs/sandbox.md), and the synchronous query returns those that
*started* on a day its interval touches. A conversation that started before the lake date and
ended after it is in neither unless the tail reaches back to its start day; a week covers every
conversation shorter than six days. One synchronous interval holds it either way (30 days).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from scim_bridge.deprovision.evidence import Window
from scim_bridge.deprovision.record import PendingJob
from scim_bridge.genesys import history
from scim_bridge.genesys.api import Gateway
from scim_bridge.genesys.errors import BadRequest, GenesysError, NotFound
from scim_bridge.genesys.history import MAX_USERS_PER_QUERY
from scim_bridge.genesys.types import History, HistoryJob, HistoryJobResults, HistoryQuery

log = logging.getLogger(__name__)

JOB_API = "POST /api/v2/analytics/conversations/details/jobs"
QUERY_API = "POST /api/v2/analytics/conversations/details/query"
BY_ID_API = "GET /api/v2/analytics/conversations/details"
TAIL_OVERLAP = timedelta(days=7)
MAX_POLL_S = 60.0


@dataclasses.dataclass(frozen=True)
class Part:
    """One API's share of a side of the proof, for one user."""

    api: str  # JOB_API, QUERY_API or BY_ID_API
    since: datetime
    until: datetime
    ids: frozenset[str]
    calls: int  # requests it took (shared by the users of a batch)
    users: int  # users the request(s) served
    data_availability: datetime | None = None  # the async part: how far the lake reached
    job_id: str | None = None
    by_interval: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Before:
    """What the check before the delete found, for the check after: per part."""

    job_ids: frozenset[str]  # found by the async part
    job_window: Window
    tail_window: Window
    tail_intervals: Mapping[str, frozenset[str]]  # found by the tail, per interval as sent

    @property
    def ids(self) -> frozenset[str]:
        """Everything found before, by either part."""
        return self.job_ids.union(*self.tail_intervals.values())

    @property
    def window(self) -> Window:
        """What the two parts covered together."""
        return Window(
            min(self.job_window.since, self.tail_window.since),
            max(self.job_window.until, self.tail_window.until),
        )


@dataclasses.dataclass(frozen=True)
class Request:
    """One job's check: ``key`` comes back with its answer."""

    key: Hashable
    user_id: str
    window: Window
    pending: PendingJob | None = None
    before: Before | None = None  # set for the check after a delete


@dataclasses.dataclass(frozen=True)
class Proven:
    window: Window
    parts: tuple[Part, ...]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset().union(*(p.ids for p in self.parts))


@dataclasses.dataclass(frozen=True)
class Waiting:
    """Poll again at ``poll_at`` (the bridge's clock): the same moment for every job that waits on
    this async job, so that they come back in one worker round and share the poll."""

    pending: PendingJob
    poll_at: float


@dataclasses.dataclass(frozen=True)
class Lost:
    pending: PendingJob
    reason: str


Answer = Proven | Waiting | Lost


class RunTimeMemory(Protocol):
    """Where the prover keeps how long async jobs take, across processes."""

    def recall(self) -> float | None: ...

    def keep(self, seconds: float) -> None: ...


@dataclasses.dataclass(frozen=True)
class _Read:
    results: HistoryJobResults
    calls: int  # submissions, status reads and result pages it took


class Prover:
    """Runs the checks of :class:`Request` s through a gateway (see the module doc)."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = 10.0,
        max_resubmits: int = 3,
        memory: RunTimeMemory | None = None,
    ) -> None:
        self.gateway = gateway
        self.clock = clock
        self.poll_s = poll_s
        self.max_resubmits = max_resubmits
        # How long the last fulfilled job took: the first poll of the next one waits about that.
        # Kept in the database (``memory``), so that a fresh process, or another replica, polls
        # its first job about when it will be done too (one status read, not two).
        self.memory = memory
        self._expected_run_s: float | None = None
        self._strict = True

    def expected_run_s(self) -> float:
        """How long an async job is expected to take: the last one any process saw fulfilled
        (``poll_s`` until one has been)."""
        if self.memory is not None:
            with contextlib.suppress(Exception):  # a database hiccup costs a poll, not the job
                known = self.memory.recall()
                if known is not None:
                    self._expected_run_s = known
        return self.poll_s if self._expected_run_s is None else self._expected_run_s

    def _learn(self, took_s: float) -> None:
        previous = self._expected_run_s
        self._expected_run_s = took_s
        if self.memory is not None and (previous is None or abs(previous - took_s) >= 0.5):
            try:
                self.memory.keep(took_s)
            except Exception:
                log.warning("async job run time not kept", exc_info=True)

    def run(
        self, requests: Sequence[Request], *, deadline: float, strict: bool = False
    ) -> dict[Hashable, Answer]:
        """An answer for each request. A Genesys error raises when ``strict`` (a job alone
        records it as its step's failure); otherwise the requests it hit are left unanswered
        (a worker's batch: those jobs try again) and the rest go on."""
        self._strict = strict
        answers: dict[Hashable, Answer] = {}
        results: dict[Hashable, _Read | None] = {}
        fresh: list[Request] = []
        by_job: dict[str, list[Request]] = defaultdict(list)
        again = [r for r in requests if r.before is not None and r.pending is None]
        if again and self._by_id_pays(again):
            by_id = self._by_id(again, deadline)
            if by_id is not None:
                found, handled = by_id
                answers.update(found)
                requests = [r for r in requests if r.key not in handled]
        for request in requests:
            if request.before is not None and not request.before.job_ids:
                results[request.key] = None  # nothing found before in the lake's part
            elif request.pending is not None:
                by_job[request.pending.job_id].append(request)
            else:
                fresh.append(request)
        for group in by_job.values():
            pending = group[0].pending
            assert pending is not None
            with self._unless_strict():
                self._poll(pending, group, answers, results, deadline)
        self._submit(fresh, answers, deadline)
        done = [r for r in requests if r.key in results]
        answers.update(self._finish(done, results, deadline))
        return answers

    # --- the check after a delete, by id ---------------------------------------------------

    @staticmethod
    def _by_id_pays(again: Sequence[Request]) -> bool:
        """Whether reading the ids found before costs no more calls than the job and the tail
        would take at the least (see the module doc)."""
        befores = [r.before for r in again if r.before is not None]
        lake = frozenset().union(*(b.job_ids for b in befores))
        everything = frozenset().union(*(b.ids for b in befores))
        job_calls = 0
        if lake:
            users = len({r.user_id for r in again if r.before is not None and r.before.job_ids})
            chunks = -(-users // MAX_USERS_PER_QUERY)
            pages = max(chunks, -(-len(lake) // history.JOB_RESULTS_PAGE_SIZE))
            job_calls += 2 * chunks + pages  # submission and status read a chunk, results pages
        if everything - lake:
            job_calls += 1  # the tail: at least one query
        return history.by_id_calls(len(everything)) <= job_calls

    def _by_id(
        self, again: Sequence[Request], deadline: float
    ) -> tuple[dict[Hashable, Answer], set[Hashable]] | None:
        """The check after a delete, by id: the requests proven (every id found before came back
        attributed to the user), and the keys handled. A request with an id missing is not
        handled: the async job and the tail, the path that found it, confirm the loss (what the
        read by id answers for an id it cannot give is UNCONFIRMED; a false alarm restores the
        user and holds the job). None when Genesys refuses the read (all go that way too); a
        batch's read that failed otherwise handles all, answering none (they try again)."""
        wanted: list[str] = []
        for request in again:
            assert request.before is not None
            wanted.extend(sorted(request.before.ids))
        users = tuple(dict.fromkeys(r.user_id for r in again))
        try:
            read = self.gateway.conversations_by_id(wanted, users, deadline=deadline)
        except BadRequest as error:
            log.warning(
                "history read by id refused; checking through the async job instead",
                extra={"error": error.describe()},
            )
            return None
        except GenesysError as error:
            if self._strict:
                raise
            log.warning("batched history read by id failed", extra={"error": error.describe()})
            return {}, {r.key for r in again}
        answers: dict[Hashable, Answer] = {}
        for request in again:
            assert request.before is not None
            ids = read.conversations.get(request.user_id, frozenset()) & request.before.ids
            if ids != request.before.ids:
                log.info(
                    "history read by id missed conversations; confirming through the async job",
                    extra={"user_id": request.user_id, "missed": len(request.before.ids - ids)},
                )
                continue
            win = request.before.window
            part = Part(
                api=BY_ID_API,
                since=win.since,
                until=win.until,
                ids=ids,
                calls=read.calls,
                users=len(users),
            )
            answers[request.key] = Proven(request.window, (part,))
        return answers, set(answers)

    # --- the async part -------------------------------------------------------------------

    def _job_window(self, request: Request) -> Window:
        return request.before.job_window if request.before is not None else request.window

    def _submit(
        self,
        fresh: Sequence[Request],
        answers: dict[Hashable, Answer],
        deadline: float,
        *,
        replacing: PendingJob | None = None,
    ) -> None:
        groups: dict[tuple[datetime, datetime], list[Request]] = defaultdict(list)
        for request in fresh:
            win = self._job_window(request)
            groups[(win.since, win.until)].append(request)
        expected = self.expected_run_s() if groups else self.poll_s
        for (since, until), group in groups.items():
            users = list(dict.fromkeys(r.user_id for r in group))
            for i in range(0, len(users), MAX_USERS_PER_QUERY):
                chunk = tuple(users[i : i + MAX_USERS_PER_QUERY])
                job_id: str | None = None
                with self._unless_strict():
                    job_id = self.gateway.submit_history_job(chunk, since, until, deadline=deadline)
                if job_id is None:
                    continue
                pending = PendingJob(
                    job_id=job_id,
                    user_ids=chunk,
                    since=since,
                    until=until,
                    submitted_at=self.clock(),
                    resubmits=0 if replacing is None else replacing.resubmits + 1,
                    calls=1 if replacing is None else replacing.calls + 1,
                    lost_reason=None if replacing is None else replacing.lost_reason,
                )
                first = max(self.poll_s, expected * 1.1)
                wait = Waiting(pending, self.clock() + first)
                for request in group:
                    if request.user_id in chunk:
                        answers[request.key] = wait

    def _poll(
        self,
        pending: PendingJob,
        group: list[Request],
        answers: dict[Hashable, Answer],
        results: dict[Hashable, _Read | None],
        deadline: float,
    ) -> None:
        pending = dataclasses.replace(pending, calls=pending.calls + 1)
        try:
            status = self.gateway.history_job(pending.job_id, deadline=deadline)
            state = status.state
            if status.fulfilled:
                self._collect(pending, status, group, results, deadline)
                return
        except NotFound:
            state = "NOT_FOUND"  # forgotten, or its results expired between the two reads
        else:
            if status.running:
                polled = dataclasses.replace(pending, polls=pending.polls + 1)
                # the n-th wait doubles from poll_s (MAX_POLL_S at most)
                wait = Waiting(
                    polled, self.clock() + min(self.poll_s * 2**pending.polls, MAX_POLL_S)
                )
                answers.update((request.key, wait) for request in group)
                return
            if status.error_message:
                state = f"{state}: {status.error_message}"
        lost = dataclasses.replace(pending, lost_reason=state)
        if pending.resubmits >= self.max_resubmits:
            for request in group:
                answers[request.key] = Lost(lost, f"async history job {state}")
            return
        self._submit(group, answers, deadline, replacing=lost)

    def _collect(
        self,
        pending: PendingJob,
        status: HistoryJob,
        group: list[Request],
        results: dict[Hashable, _Read | None],
        deadline: float,
    ) -> None:
        """A fulfilled job: its results for each request, and how long such a job now takes."""
        read = self.gateway.history_job_results(pending.job_id, pending.user_ids, deadline=deadline)
        if status.submitted_at is not None and status.completed_at is not None:
            took = (status.completed_at - status.submitted_at).total_seconds()
            self._learn(max(took, 0.0))
        for request in group:
            results[request.key] = _Read(read, pending.calls + read.pages_read)

    # --- the tail, and the answer -------------------------------------------------------------

    def _finish(
        self,
        done: Sequence[Request],
        results: Mapping[Hashable, _Read | None],
        deadline: float,
    ) -> dict[Hashable, Answer]:
        tails, reached = self._tails(done, results, deadline)
        answers: dict[Hashable, Answer] = {}
        for (since, until, after), group in tails.items():
            for i in range(0, len(group), MAX_USERS_PER_QUERY):
                chunk = group[i : i + MAX_USERS_PER_QUERY]
                users = tuple(dict.fromkeys(r.user_id for r in chunk))
                expected = None
                if after:
                    expected = {
                        r.user_id: r.before.tail_intervals for r in chunk if r.before is not None
                    }
                history: History | None = None
                with self._unless_strict():
                    # The checks come after the deactivation (model.SEQUENCES: a delete's
                    # history steps follow it): the users are settled.
                    history = self.gateway.conversation_history(
                        HistoryQuery(users, since, until, expected=expected, settled=True),
                        deadline=deadline,
                    )
                if history is None:
                    continue
                for request in chunk:
                    answers[request.key] = self._proven(
                        request,
                        results[request.key],
                        tail=(since, until, users, history),
                        reached=reached.get(request.key),
                    )
        return answers

    def _tails(
        self,
        done: Sequence[Request],
        results: Mapping[Hashable, _Read | None],
        deadline: float,
    ) -> tuple[
        dict[tuple[datetime, datetime, bool], list[Request]], dict[Hashable, datetime | None]
    ]:
        """The requests grouped by the tail window still to query (after the job's, or the
        before-proof's own), and the data-lake point each job-less tail starts from."""
        tails: dict[tuple[datetime, datetime, bool], list[Request]] = defaultdict(list)
        reached: dict[Hashable, datetime | None] = {}
        lake_now: datetime | None = None
        for request in done:
            read = results[request.key]
            if request.before is not None:
                tail = request.before.tail_window
            else:
                lake = read.results.data_availability if read is not None else None
                if lake is None:
                    if lake_now is None:
                        with self._unless_strict():
                            lake_now = self.gateway.data_availability(deadline=deadline)
                        if lake_now is None:
                            continue
                    lake = lake_now
                reached[request.key] = lake
                tail = tail_window(request.window, lake)
            tails[(tail.since, tail.until, request.before is not None)].append(request)
        return tails, reached

    def _proven(
        self,
        request: Request,
        read: _Read | None,
        *,
        tail: tuple[datetime, datetime, tuple[str, ...], History],
        reached: datetime | None,
    ) -> Proven:
        """The proof for one request: the tail query's part, after the job's when there was one."""
        since, until, users, history = tail
        parts = [
            Part(
                api=QUERY_API,
                since=since,
                until=until,
                ids=history.conversations.get(request.user_id, frozenset()),
                calls=history.queries_made,
                users=len(users),
                by_interval=history.by_interval.get(request.user_id, {}),
            )
        ]
        if read is not None:
            win = self._job_window(request)
            found = read.results
            parts.insert(
                0,
                Part(
                    api=JOB_API,
                    since=win.since,
                    until=win.until,
                    ids=found.conversations.get(request.user_id, frozenset()),
                    calls=read.calls,
                    users=len(found.conversations),
                    data_availability=found.data_availability or reached,
                    job_id=found.job_id,
                ),
            )
        return Proven(request.window, tuple(parts))

    @contextlib.contextmanager
    def _unless_strict(self) -> Iterator[None]:
        """Inside a batch, a Genesys error costs only the requests of the call that failed."""
        try:
            yield
        except GenesysError as error:
            if self._strict:
                raise
            log.warning("batched history proof call failed", extra={"error": error.describe()})


def tail_window(window: Window, lake: datetime) -> Window:
    """From :data:`TAIL_OVERLAP` before the lake date (never before ``since``) to ``until``."""
    start = min(max(window.since, lake - TAIL_OVERLAP), window.until)
    return Window(start, window.until)
