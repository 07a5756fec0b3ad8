"""Shaping the analytics details query for history evidence (genesys-api.md 4.1).

The body has only keys ``ConversationQuery`` has (``models/conversation_query.py:71-80``):
``interval``, ``order``, ``orderBy``, ``paging`` and ``segmentFilters``; no ``groupBy`` or
``metrics`` (those belong to the aggregates query, 4.2). Users go in as ``userId`` predicates of
one ``or`` segment filter, at most 100 to a query; the window is cut into intervals of at most 30
days (the community-documented maximum; the real limit is UNCONFIRMED).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_INTERVAL = timedelta(days=30)
MAX_USERS_PER_QUERY = 100
PAGE_SIZE = 100


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


def batches(user_ids: Sequence[str]) -> Iterator[tuple[str, ...]]:
    unique = tuple(dict.fromkeys(user_ids))
    for i in range(0, len(unique), MAX_USERS_PER_QUERY):
        yield unique[i : i + MAX_USERS_PER_QUERY]


def query_body(interval: str, user_ids: Sequence[str], page_number: int) -> dict[str, Any]:
    return {
        "interval": interval,
        "order": "asc",
        "orderBy": "conversationStart",
        "paging": {"pageSize": PAGE_SIZE, "pageNumber": page_number},
        "segmentFilters": [
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
        ],
    }
