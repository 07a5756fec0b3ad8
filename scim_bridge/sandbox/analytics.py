"""The conversation details query (genesys-api.md 4.1) over the org's history.

Validation takes the stricter reading wherever Genesys is UNCONFIRMED: keys a ``ConversationQuery``
does not have are a 400 (``groupBy``, ``metrics``, ``filter``...), an interval over 31 days is a
400, ``paging.pageSize`` is at most 100, and a query has at most 100 predicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from scim_bridge.sandbox.errors import ApiError
from scim_bridge.sandbox.model import Conversation, Participant, Segment, Session, iso
from scim_bridge.sandbox.org import Org

DAY = 86400.0
MAX_INTERVAL_DAYS = 31
MAX_PAGE_SIZE = 100
MAX_PREDICATES = 100
QUERY_KEYS = frozenset(
    {
        "conversationFilters", "segmentFilters", "evaluationFilters", "surveyFilters",
        "resolutionFilters", "order", "orderBy", "interval", "aggregations", "paging",
    }
)  # fmt: skip
FILTER_KEYS = frozenset({"type", "clauses", "predicates"})
CLAUSE_KEYS = frozenset({"type", "predicates"})
SEGMENT_PREDICATE_KEYS = frozenset(
    {"type", "dimension", "propertyType", "property", "metric", "operator", "value", "range"}
)
CONVERSATION_PREDICATE_KEYS = frozenset(
    {"type", "dimension", "metric", "operator", "value", "range"}
)
ORDERS = ("asc", "desc", "unordered")
ORDER_BY = ("conversationStart", "conversationEnd", "segmentStart", "segmentEnd")

Row = tuple[Conversation, Participant, Session, Segment]


def _opt(value: str | None) -> list[str]:
    return [] if value is None else [value]


SEGMENT_DIMENSIONS: dict[str, Callable[[Row], list[str]]] = {
    "userId": lambda r: _opt(r[1].user_id),
    "purpose": lambda r: [r[1].purpose],
    "participantName": lambda r: [r[1].name],
    "mediaType": lambda r: [r[2].media_type],
    "direction": lambda r: [r[2].direction],
    "queueId": lambda r: _opt(r[3].queue_id),
    "segmentType": lambda r: [r[3].segment_type],
    "segmentEnd": lambda r: [] if r[3].end is None else [iso(r[3].end)],
}
CONVERSATION_DIMENSIONS: dict[str, Callable[[Conversation], list[str]]] = {
    "conversationId": lambda c: [c.id],
    "conversationStart": lambda c: [iso(c.start)],
    "conversationEnd": lambda c: [] if c.end is None else [iso(c.end)],
    "divisionId": lambda c: list(c.division_ids),
    "originatingDirection": lambda c: [c.originating_direction],
}


def parse_interval(value: Any, max_days: int = MAX_INTERVAL_DAYS) -> tuple[float, float]:
    """``start/end`` in ISO-8601 with a zone; end after start; at most ``max_days`` (31 for the
    query, UNCONFIRMED)."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise ApiError.bad_request("interval is required, as <start>/<end> in ISO-8601")
    try:
        start, end = (datetime.fromisoformat(part) for part in value.split("/"))
    except ValueError:
        raise ApiError.bad_request(f"interval is not ISO-8601: {value}", "invalid.date") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError.bad_request("interval times need a time zone (e.g. Z)", "invalid.date")
    if end <= start:
        raise ApiError.bad_request("interval end must be after its start", "invalid.date")
    if (end - start).total_seconds() > max_days * DAY:
        raise ApiError.bad_request(f"The interval may be at most {max_days} days; split the query.")
    return start.timestamp(), end.timestamp()


def touched_days(start: float, end: float) -> tuple[float, float]:
    """[first day start, last day end) of the UTC days the interval touches (end exclusive)."""
    first = math.floor(start / DAY) * DAY
    last = math.floor(math.nextafter(end, -math.inf) / DAY) * DAY
    return first, last + DAY


def _checked(obj: Any, keys: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ApiError.bad_request(f"{what} must be an object")
    unknown = sorted(set(obj) - keys)
    if unknown:
        raise ApiError.bad_request(f"Unrecognized field(s) in {what}: {', '.join(unknown)}")
    return obj


class _Compiler:
    """Compiles filters to predicates over rows, counting predicates against the cap."""

    def __init__(self) -> None:
        self.predicates = 0

    def filter(
        self, raw: Any, dimensions: dict[str, Callable[[Any], list[str]]], keys: frozenset[str],
        what: str, clause: bool = False,
    ) -> Callable[[Any], bool]:  # fmt: skip
        body = _checked(raw, CLAUSE_KEYS if clause else FILTER_KEYS, what)
        kind = body.get("type")
        if kind not in ("and", "or"):
            raise ApiError.bad_request(f"{what}.type must be and or or")
        parts = [self.predicate(p, dimensions, keys, what) for p in _list(body, "predicates", what)]
        if not clause:
            parts += [
                self.filter(c, dimensions, keys, f"{what} clause", clause=True)
                for c in _list(body, "clauses", what)
            ]
        if not parts:
            raise ApiError.bad_request(f"{what} needs predicates or clauses")
        if kind == "and":
            return lambda row: all(part(row) for part in parts)
        return lambda row: any(part(row) for part in parts)

    def predicate(
        self, raw: Any, dimensions: dict[str, Callable[[Any], list[str]]], keys: frozenset[str],
        what: str,
    ) -> Callable[[Any], bool]:  # fmt: skip
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            raise ApiError.bad_request(f"A query may have at most {MAX_PREDICATES} predicates")
        body = _checked(raw, keys, f"{what} predicate")
        if body.get("type", "dimension") != "dimension":
            raise ApiError.bad_request("only dimension predicates are supported by the sandbox")
        dimension = body.get("dimension")
        if dimension not in dimensions:
            raise ApiError.bad_request(
                f"Unsupported dimension {dimension!r}; the sandbox knows {', '.join(dimensions)}"
            )
        get = dimensions[dimension]
        operator = body.get("operator", "matches")
        if operator == "exists":
            return lambda row: bool(get(row))
        if operator == "notExists":
            return lambda row: not get(row)
        if operator != "matches":
            raise ApiError.bad_request("operator must be matches, exists or notExists")
        value = body.get("value")
        if not isinstance(value, str):
            raise ApiError.bad_request(f"a matches predicate on {dimension} needs a value")
        return lambda row: value in get(row)


def _list(body: dict[str, Any], key: str, what: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise ApiError.bad_request(f"{what}.{key} must be a list")
    return value


def _user_ids(raw: dict[str, Any]) -> set[str] | None:
    """The userIds a segment filter is limited to, when it is (for the history index)."""
    sets: list[set[str] | None] = []
    for p in raw.get("predicates") or []:
        is_user = p.get("dimension") == "userId" and p.get("operator", "matches") == "matches"
        sets.append({p["value"]} if is_user else None)
    sets.extend(_user_ids(c) for c in raw.get("clauses") or [])
    if raw.get("type") == "or":
        if not sets or any(s is None for s in sets):
            return None
        return set().union(*(s for s in sets if s is not None))
    known = [s for s in sets if s is not None]
    return set.intersection(*known) if known else None


def _rows(conversation: Conversation) -> list[Row]:
    return [
        (conversation, p, s, g)
        for p in conversation.participants
        for s in p.sessions
        for g in s.segments
    ]


class Selection:
    """The filters of a details query or job, compiled, and the conversations they may match."""

    def __init__(self, org: Org, body: dict[str, Any]) -> None:
        compiler = _Compiler()
        segment_raw = _list(body, "segmentFilters", "ConversationQuery")
        conversation_raw = _list(body, "conversationFilters", "ConversationQuery")
        self.segment_filters = [
            compiler.filter(f, SEGMENT_DIMENSIONS, SEGMENT_PREDICATE_KEYS, "segmentFilters")
            for f in segment_raw
        ]
        self.conversation_filters = [
            compiler.filter(
                f, CONVERSATION_DIMENSIONS, CONVERSATION_PREDICATE_KEYS, "conversationFilters"
            )
            for f in conversation_raw
        ]
        # Filtered by userId: only those users' conversations can match (the history index).
        candidates: set[str] | None = None
        for raw in segment_raw:
            users = _user_ids(raw)
            if users is not None:
                ids = {c for u in users for c in org.history.get(u, [])}
                candidates = ids if candidates is None else candidates & ids
        self._org = org
        self._candidates = candidates

    def pool(self) -> Iterable[Conversation]:
        if self._candidates is None:
            return self._org.conversations.values()
        return (self._org.conversations[c] for c in self._candidates)

    def matches(self, conversation: Conversation) -> bool:
        if not all(f(conversation) for f in self.conversation_filters):
            return False
        if self.segment_filters:
            rows = _rows(conversation)
            if not all(any(f(row) for row in rows) for f in self.segment_filters):
                return False
        return True


def check_unsupported(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    for unsupported in keys:
        if body.get(unsupported):
            raise ApiError.bad_request(f"{unsupported} are not supported by the sandbox")


def check_order(body: dict[str, Any], order_by_values: tuple[str, ...]) -> tuple[str, str]:
    order = body.get("order", "asc")
    order_by = body.get("orderBy", "conversationStart")
    if order not in ORDERS:
        raise ApiError.bad_request(f"order must be one of {', '.join(ORDERS)}")
    if order_by not in order_by_values:
        raise ApiError.bad_request(f"orderBy must be one of {', '.join(order_by_values)}")
    return order, order_by


def sort_conversations(found: list[Conversation], order: str, order_by: str) -> None:
    def key(c: Conversation) -> tuple[float, str]:
        if order_by == "conversationStart":
            return (c.start, c.id)
        if order_by == "conversationEnd":
            return (c.end if c.end is not None else math.inf, c.id)
        bounds = c.segment_bounds()
        return (bounds[0] if order_by == "segmentStart" else bounds[1], c.id)

    found.sort(key=key, reverse=order == "desc")


def details_query(org: Org, body: dict[str, Any]) -> dict[str, Any]:
    _checked(body, QUERY_KEYS, "ConversationQuery")
    start, end = parse_interval(body.get("interval"))
    check_unsupported(
        body, ("evaluationFilters", "surveyFilters", "resolutionFilters", "aggregations")
    )
    order, order_by = check_order(body, ORDER_BY)
    paging = _checked(body.get("paging") or {}, frozenset({"pageSize", "pageNumber"}), "paging")
    size, number = paging.get("pageSize", 25), paging.get("pageNumber", 1)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError.bad_request(f"paging.pageSize must be between 1 and {MAX_PAGE_SIZE}")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ApiError.bad_request("paging.pageNumber must be >= 1")

    selection = Selection(org, body)
    first_day, after_last_day = touched_days(start, end)
    found = [
        conversation
        for conversation in selection.pool()
        # "Results will only include conversations that started on a day touched by the interval"
        if first_day <= conversation.start < after_last_day and selection.matches(conversation)
    ]
    sort_conversations(found, order, order_by)
    page = found[(number - 1) * size : number * size]
    response: dict[str, Any] = {"totalHits": len(found)}
    if page:  # the key is omitted on an empty or past-the-end page (4.1)
        response["conversations"] = [c.to_json() for c in page]
    return response
