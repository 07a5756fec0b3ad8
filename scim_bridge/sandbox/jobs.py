"""Async conversation details jobs and the data lake behind them (genesys-api.md 4.3).

A job is submitted (202 ``{jobId}``), is ``QUEUED`` for the first third of ``async_job_delay_s``,
``PENDING`` for the rest, then ``FULFILLED`` (or the outcome a test injected: ``FAILED``,
``EXPIRED``). A fulfilled job's results expire ``async_job_ttl_s`` after completion. Results are
read by cursor, ``pageSize`` at a time, until a page carries no ``cursor``; every page says how far
the data lake reached (``dataAvailabilityDate``).

What a job sees is the data lake, which lags real time by ``data_availability_lag_s``. The reading
taken where Genesys is UNCONFIRMED, the stricter one each time:

* a conversation is in the lake once it has **ended** at or before the availability date (a
  conversation still running, or ended after it, is not);
* the job's result set is taken when it completes, from the lake as it stood then;
* at most ``async_job_concurrency`` jobs per org may be ``QUEUED`` or ``PENDING`` at once; one more
  is refused with 429 ``too.many.requests`` and **no** ``Retry-After``;
* ``interval`` may span at most :data:`MAX_JOB_INTERVAL_DAYS` (five years, the longest interaction
  retention Genesys lets an org set, HELP ?p=278459);
* results ``pageSize`` is 1 to 100 (default 100); filters are the query's (at most 100 predicates);
* results of a job that is not ``FULFILLED``: 400 ``bad.request``, or 404 ``not.found`` once it
  has expired or for an unknown id.

Interval semantics are the jobs' own: "include all conversations that had activity during the
interval" (``AsyncConversationQuery.interval``); with ``startOfDayIntervalMatching`` only those
that also started on or after the start of the interval's first UTC day (developer center,
"Conversation Detail job").
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from typing import Any

from scim_bridge.sandbox.analytics import (
    DAY,
    Selection,
    check_order,
    check_unsupported,
    parse_interval,
    sort_conversations,
)
from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.model import iso
from scim_bridge.sandbox.org import Org

MAX_JOB_INTERVAL_DAYS = 1827
MAX_RESULTS_PAGE_SIZE = 100
JOB_KEYS = frozenset(
    {
        "conversationFilters", "segmentFilters", "evaluationFilters", "surveyFilters",
        "resolutionFilters", "order", "orderBy", "interval", "limit",
        "startOfDayIntervalMatching",
    }
)  # fmt: skip
# AsyncConversationQuery.orderBy: "conversationStart, segmentStart, and segmentEnd".
JOB_ORDER_BY = ("conversationStart", "segmentStart", "segmentEnd")
RUNNING = ("QUEUED", "PENDING")
OUTCOMES = ("FULFILLED", "FAILED", "EXPIRED")


@dataclass
class AsyncJob:
    id: str
    body: dict[str, Any]
    submitted_at: float
    delay_s: float
    ttl_s: float
    lag_s: float
    outcome: str  # FULFILLED, or an injected FAILED / EXPIRED
    user_ids: tuple[str, ...]
    cancelled_at: float | None = None
    expired_at: float | None = None  # forced through the control endpoint
    conversations: list[dict[str, Any]] | None = None  # taken when it completed
    availability: float | None = None

    @property
    def completes_at(self) -> float:
        return self.submitted_at + self.delay_s

    def state(self, now: float) -> str:
        if self.cancelled_at is not None:
            return "CANCELLED"
        if self.expired_at is not None and now >= self.expired_at:
            return "EXPIRED"
        if now < self.submitted_at + self.delay_s / 3:
            return "QUEUED"
        if now < self.completes_at:
            return "PENDING"
        if self.outcome == "FULFILLED" and now >= self.completes_at + self.ttl_s:
            return "EXPIRED"
        return self.outcome

    def status_json(self, now: float) -> dict[str, Any]:
        """``AsyncQueryStatus`` (``models/async_query_status.py``)."""
        state = self.state(now)
        body: dict[str, Any] = {"state": state, "submissionDate": iso(self.submitted_at)}
        if state not in RUNNING and state != "CANCELLED":
            body["completionDate"] = iso(self.completes_at)
        if state in ("FULFILLED", "EXPIRED"):
            expires = self.completes_at + self.ttl_s
            if self.expired_at is not None:
                expires = min(expires, self.expired_at)
            body["expirationDate"] = iso(expires)
        if state == "FAILED":
            body["errorMessage"] = "Injected failure (async_job_outcomes)"
        return body

    def control_json(self, now: float) -> dict[str, Any]:
        return {
            "jobId": self.id,
            "state": self.state(now),
            "interval": self.body.get("interval"),
            "userIds": list(self.user_ids),
            "submittedAt": iso(self.submitted_at),
            "resultCount": None if self.conversations is None else len(self.conversations),
        }


@dataclass
class AsyncJobs:
    """Every job the org was asked for, in submission order."""

    jobs: dict[str, AsyncJob] = field(default_factory=dict)

    def running(self, now: float) -> int:
        return sum(1 for job in self.jobs.values() if job.state(now) in RUNNING)

    def get(self, job_id: str) -> AsyncJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError.not_found("job", job_id)
        return job


def validate(org: Org, body: dict[str, Any]) -> tuple[str, ...]:
    """Check an ``AsyncConversationQuery``; the userIds its segment filters name (for control)."""
    unknown = sorted(set(body) - JOB_KEYS)
    if unknown:
        raise ApiError.bad_request(
            f"Unrecognized field(s) in AsyncConversationQuery: {', '.join(unknown)}"
        )
    parse_interval(body.get("interval"), MAX_JOB_INTERVAL_DAYS)
    check_unsupported(body, ("evaluationFilters", "surveyFilters", "resolutionFilters"))
    check_order(body, JOB_ORDER_BY)
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ApiError.bad_request("limit must be a positive integer")
    matching = body.get("startOfDayIntervalMatching", False)
    if not isinstance(matching, bool):
        raise ApiError.bad_request("startOfDayIntervalMatching must be a boolean")
    Selection(org, body)  # filters: the same checks and caps as the query's
    users: list[str] = []
    for raw in body.get("segmentFilters") or []:
        for predicate in _predicates(raw):
            if predicate.get("dimension") == "userId" and isinstance(predicate.get("value"), str):
                users.append(predicate["value"])
    return tuple(dict.fromkeys(users))


def _predicates(raw: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(raw.get("predicates") or [])
    for clause in raw.get("clauses") or []:
        found.extend(clause.get("predicates") or [])
    return found


def complete(org: Org, job: AsyncJob) -> None:
    """Take the job's result set from the lake as it stood when the job completed (once)."""
    if job.conversations is not None:
        return
    availability = job.completes_at - job.lag_s
    start, end = parse_interval(job.body["interval"], MAX_JOB_INTERVAL_DAYS)
    first_day = math.floor(start / DAY) * DAY
    by_start_day = bool(job.body.get("startOfDayIntervalMatching"))
    order, order_by = check_order(job.body, JOB_ORDER_BY)
    selection = Selection(org, job.body)
    found = []
    for conversation in selection.pool():
        ended = conversation.end
        if ended is None or ended > availability:
            continue  # not in the data lake yet
        if not (conversation.start < end and ended >= start):
            continue  # "had activity during the interval"
        if by_start_day and conversation.start < first_day:
            continue
        if selection.matches(conversation):
            found.append(conversation)
    sort_conversations(found, order, order_by)
    limit = job.body.get("limit")
    if isinstance(limit, int):
        found = found[:limit]
    job.conversations = [c.to_json() for c in found]
    job.availability = availability


def cursor_for(job_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{job_id}:{offset}".encode()).decode().rstrip("=")


def offset_of(job_id: str, cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        owner, _, raw = text.rpartition(":")
        offset = int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError.bad_request("cursor is not valid") from None
    if owner != job_id or offset < 0:
        raise ApiError.bad_request("cursor does not belong to this job")
    return offset


def results_page(job: AsyncJob, cursor: str | None, page_size: int) -> dict[str, Any]:
    """``AnalyticsConversationAsyncQueryResponse``: a page, the next cursor while more remain."""
    assert job.conversations is not None, "complete() first"
    assert job.availability is not None, "complete() first"
    offset = offset_of(job.id, cursor)
    page = job.conversations[offset : offset + page_size]
    body: dict[str, Any] = {"dataAvailabilityDate": iso(job.availability)}
    if page:
        body["conversations"] = page
    if offset + page_size < len(job.conversations):
        body["cursor"] = cursor_for(job.id, offset + page_size)
    return body
