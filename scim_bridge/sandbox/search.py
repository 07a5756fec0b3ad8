"""Search criteria (``UserSearchCriteria`` / ``GroupSearchCriteria``) compiled to predicates.

genesys-api.md 2.6: ``type`` EXACT / STARTS_WITH / CONTAINS (plus REQUIRED_FIELDS, MATCH_ALL,
TERM, TERMS), ``fields`` or a nested ``group``, ``value`` or ``values``, ``operator`` AND / OR / NOT.
Text comparisons are case-insensitive. How the operators combine is the sandbox's reading
(Genesys does not document it): every AND criterion must match, no NOT criterion may match,
and when there are OR criteria at least one of them must match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from scim_bridge.sandbox.errors import ApiError

T = TypeVar("T")
Matcher = Callable[[T], bool]
Fields = dict[str, Callable[[T], list[str]]]

CRITERION_KEYS = frozenset(
    {
        "endValue",
        "values",
        "startValue",
        "value",
        "operator",
        "group",
        "dateFormat",
        "fields",
        "type",
    }
)
ALL_TYPES = frozenset(
    {
        "EXACT", "STARTS_WITH", "CONTAINS", "REGEX", "TERM", "TERMS", "REQUIRED_FIELDS",
        "MATCH_ALL", "QUERY_STRING", "RANGE", "LESS_THAN", "LESS_THAN_EQUAL_TO", "GREATER_THAN",
        "GREATER_THAN_EQUAL_TO",
    }
)  # fmt: skip
SUPPORTED_TYPES = frozenset(
    {"EXACT", "STARTS_WITH", "CONTAINS", "TERM", "TERMS", "REQUIRED_FIELDS", "MATCH_ALL"}
)
OPERATORS = ("AND", "OR", "NOT")
MAX_CRITERIA = 50  # UNCONFIRMED cap; keeps a runaway query from being accepted


def compile_query(query: Any, fields: Fields[T]) -> Matcher[T]:
    if query is None:
        return lambda _: True
    if not isinstance(query, list):
        raise ApiError.bad_request("query must be a list of criteria")
    if len(list(walk(query))) > MAX_CRITERIA:
        raise ApiError.bad_request(f"A search may have at most {MAX_CRITERIA} criteria")
    pairs = [_criterion(item, fields) for item in query]
    musts = [m for op, m in pairs if op == "AND"]
    shoulds = [m for op, m in pairs if op == "OR"]
    nots = [m for op, m in pairs if op == "NOT"]

    def match(item: T) -> bool:
        if not all(m(item) for m in musts) or any(m(item) for m in nots):
            return False
        return not shoulds or any(m(item) for m in shoulds)

    return match


def walk(query: list[Any]) -> Iterator[dict[str, Any]]:
    """Every criterion, nested groups included (for caps and for the default-state rule)."""
    for item in query:
        if isinstance(item, dict):
            yield item
            group = item.get("group")
            if isinstance(group, list):
                yield from walk(group)


def criterion_values(item: dict[str, Any]) -> list[str]:
    values: list[str] = []
    if isinstance(item.get("value"), str):
        values.append(item["value"])
    if isinstance(item.get("values"), list):
        values.extend(v for v in item["values"] if isinstance(v, str))
    return values


def _criterion(item: Any, fields: Fields[T]) -> tuple[str, Matcher[T]]:
    if not isinstance(item, dict):
        raise ApiError.bad_request("each query criterion must be an object")
    unknown = sorted(set(item) - CRITERION_KEYS)
    if unknown:
        raise ApiError.bad_request(
            f"Unrecognized field(s) in search criteria: {', '.join(unknown)}"
        )
    operator = item.get("operator") or "AND"
    if operator not in OPERATORS:
        raise ApiError.bad_request(f"operator must be one of {', '.join(OPERATORS)}")
    group = item.get("group")
    if group:
        return operator, compile_query(group, fields)
    kind = item.get("type")
    if kind not in ALL_TYPES:
        raise ApiError.bad_request(
            f"criteria type is required and must be one of {sorted(ALL_TYPES)}"
        )
    if kind not in SUPPORTED_TYPES:
        raise ApiError.bad_request(f"criteria type {kind} is not supported by the sandbox")
    if kind == "MATCH_ALL":
        return operator, lambda _: True
    return operator, _field_matcher(item, kind, fields)


# How a criterion's value matches a field (casefolded); CONTAINS and its kin by default.
_VALUE_TESTS: dict[str, Callable[[str, str], bool]] = {
    "EXACT": str.__eq__,
    "TERM": str.__eq__,
    "TERMS": str.__eq__,
    "STARTS_WITH": str.startswith,
}


def _field_matcher(item: dict[str, Any], kind: str, fields: Fields[T]) -> Matcher[T]:
    """A criterion on named fields: present (REQUIRED_FIELDS), or matching a value."""
    names = item.get("fields")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ApiError.bad_request("criteria fields must be a non-empty list of field names")
    bad = [n for n in names if n not in fields]
    if bad:
        raise ApiError.bad_request(
            f"Unsupported search field(s): {', '.join(bad)}; searchable: {', '.join(fields)}"
        )
    getters = [fields[n] for n in names]
    if kind == "REQUIRED_FIELDS":
        return lambda x: all(any(get(x)) for get in getters)
    wanted = [v.casefold() for v in criterion_values(item)]
    if not wanted:
        raise ApiError.bad_request(f"criteria of type {kind} need a value or values")
    test = _VALUE_TESTS.get(kind, str.__contains__)

    def match(x: T) -> bool:
        for get in getters:
            for have in get(x):
                folded = have.casefold()
                if any(test(folded, w) for w in wanted):
                    return True
        return False

    return match


def paging(body: dict[str, Any], max_size: int) -> tuple[int, int]:
    size, number = body.get("pageSize", 25), body.get("pageNumber", 1)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= max_size:
        raise ApiError.bad_request(f"pageSize must be between 1 and {max_size}", "invalid.value")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ApiError.bad_request("pageNumber must be >= 1", "invalid.value")
    return size, number


def sort_order(body: dict[str, Any]) -> bool:
    """True for descending. SCORE has no meaning here and sorts like ASC."""
    order = body.get("sortOrder") or "ASC"
    if order not in ("ASC", "DESC", "SCORE"):
        raise ApiError.bad_request("sortOrder must be ASC, DESC or SCORE", "invalid.value")
    return order == "DESC"


def search_response(
    results: list[dict[str, Any]], total: int, size: int, number: int, kind: str
) -> dict[str, Any]:
    """``UsersSearchResponse`` / ``GroupsSearchResponse``. ``results`` is omitted when the page is
    empty (UNCONFIRMED; the stricter reading: a caller must cope with the key missing)."""
    body: dict[str, Any] = {
        "total": total,
        "pageCount": (total + size - 1) // size,
        "pageSize": size,
        "pageNumber": number,
        "types": [kind],
    }
    if results:
        body["results"] = results
    return body
