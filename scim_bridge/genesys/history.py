"""Shaping the analytics details query for history evidence (genesys-api.md 4.1).

The body has only keys ``ConversationQuery`` has (``models/conversation_query.py:71-80``):
``interval``, ``order``, ``orderBy``, ``paging`` and ``segmentFilters``; no ``groupBy`` or
``metrics`` (those belong to the aggregates query, 4.2). Users go in as ``userId`` predicates of
one ``or`` segment filter, at most 100 to a query; the window is cut into intervals of at most 30
days (the community-documented maximum; the real limit is UNCONFIRMED).

When an interval has been read to its end (:func:`last_page`): Genesys marks the end with a page
that omits ``conversations`` (4.1), and that is the only end marker it documents. The same section
says ``totalHits`` is approximate and changes on live intervals, and that pages can overlap or
repeat. So an interval stops one query early, on a page *shorter* than ``pageSize``, only when all
of these hold:

* the interval is **closed**: it ended at least :data:`CLOSED_AFTER` before the query. A sync query
  returns "conversations that started on a day touched by the interval", so an interval ending
  within today is live whatever its end time; 48 hours is past the end of the last day it touches
  in any time zone (UTC-12 to UTC+14), should Genesys count days in the org's zone;
* the page is short: Genesys had fewer rows left than were asked for;
* the distinct conversation ids read from the interval so far number at least the largest
  ``totalHits`` any of its pages reported, so a short page cannot be a server-side cap on the page
  size (the true maximum is UNCONFIRMED) nor a page thinned by repeats: both leave ids unread,
  which ``totalHits`` would show. A response without ``totalHits`` never stops early.

The last interval of a window always touches today (the window ends "now", cut to the minute), so
it is read to its empty page, unless its users are **settled** (``HistoryQuery.settled``: access
cut, no live conversation, as for every history check of a delete, which comes after the
deactivation Genesys refuses during a conversation). Then nothing new can start for them, the
interval's answer no longer grows, and it ends on a short page under the same three conditions
but the first (issue 11: the tail query's empty page was one call of every delete alone). A
conversation still being ingested when the query runs is missed either way: the empty page,
read a moment later, would not have it either. The check after a delete needs less (``HistoryQuery.expected``):
it stops as soon as every id found before has come back, and reads to the empty page when one has
not (a mismatch restores the user; one more query is cheap beside a false alarm).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from scim_bridge.timestamps import iso

MAX_INTERVAL = timedelta(days=30)
MAX_USERS_PER_QUERY = 100
PAGE_SIZE = 100
JOB_RESULTS_PAGE_SIZE = 100  # the results pageSize maximum is UNCONFIRMED; the sandbox takes 100
# Conversation ids per read by id (GET /api/v2/analytics/conversations/details?id=): the maximum
# is UNCONFIRMED (the SDK documents only "Comma-separated conversation ids"); 100 is the page size
# of every other analytics read here, and 100 ids keep the URL under 4 KB.
MAX_IDS_BY_ID = 100
CLOSED_AFTER = timedelta(hours=48)


def _iso(moment: datetime) -> str:
    """Genesys's interval bounds: milliseconds; a naive time is taken as UTC."""
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC), digits=3)


def intervals(since: datetime, until: datetime) -> list[str]:
    """``since``..``until`` as consecutive ISO-8601 intervals of at most 30 days."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    result = []
    start = since
    while start < until:
        end = min(start + MAX_INTERVAL, until)
        result.append(f"{_iso(start)}/{_iso(end)}")
        start = end
    return result


def is_closed(interval: str, now: datetime) -> bool:
    """Whether ``interval`` ("start/end") ended at least :data:`CLOSED_AFTER` before ``now``."""
    end = datetime.fromisoformat(interval.split("/", 1)[1].replace("Z", "+00:00"))
    return end + CLOSED_AFTER <= now


def last_page(*, closed: bool, rows: int, seen: int, total_hits: int | None) -> bool:
    """After a non-empty page of ``rows`` rows: is the interval read to its end? (module doc)

    ``seen``: distinct conversation ids read from this interval so far (this page included);
    ``total_hits``: the largest ``totalHits`` its pages reported, None when absent.
    """
    if rows == 0:
        return True  # "conversations" omitted: past the last page (the documented end)
    return closed and rows < PAGE_SIZE and total_hits is not None and seen >= total_hits


def id_batches(conversation_ids: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Distinct conversation ids, in order, :data:`MAX_IDS_BY_ID` to a read by id."""
    unique = tuple(dict.fromkeys(conversation_ids))
    for i in range(0, len(unique), MAX_IDS_BY_ID):
        yield unique[i : i + MAX_IDS_BY_ID]


def by_id_calls(count: int) -> int:
    """The reads by id it takes to look ``count`` distinct conversations up again."""
    return -(-count // MAX_IDS_BY_ID)


def batches(user_ids: Sequence[str]) -> Iterator[tuple[str, ...]]:
    unique = tuple(dict.fromkeys(user_ids))
    for i in range(0, len(unique), MAX_USERS_PER_QUERY):
        yield unique[i : i + MAX_USERS_PER_QUERY]


def _users_filter(user_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "type": "or",
            "predicates": [
                {
                    "type": "dimension",
                    "dimension": "userId",
                    "operator": "matches",
                    "value": user_id,
                }
                for user_id in user_ids
            ],
        }
    ]


def query_body(interval: str, user_ids: Sequence[str], page_number: int) -> dict[str, Any]:
    return {
        "interval": interval,
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": page_number},
        "segmentFilters": _users_filter(user_ids),
    }


def job_body(since: datetime, until: datetime, user_ids: Sequence[str]) -> dict[str, Any]:
    """An ``AsyncConversationQuery`` (genesys-api.md 4.3): no ``paging`` (there is none), one
    interval for the whole window. Jobs include every conversation that "had activity during"
    the interval, so one that started before ``since`` and went on past it is in too: more
    evidence, never less. At most :data:`MAX_USERS_PER_QUERY` users (the predicate cap the
    sandbox applies to queries and jobs alike; the real one is UNCONFIRMED)."""
    if not user_ids:
        raise ValueError("an async history job needs at least one user")
    if len(user_ids) > MAX_USERS_PER_QUERY:
        raise ValueError(f"at most {MAX_USERS_PER_QUERY} users per async history job")
    if until <= since:
        raise ValueError("an async history job's window must end after it starts")
    return {
        "interval": f"{_iso(since)}/{_iso(until)}",
        "order": "asc",
        "orderBy": "conversationStart",
        "segmentFilters": _users_filter(list(dict.fromkeys(user_ids))),
    }
