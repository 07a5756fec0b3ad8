"""SCIM filters (RFC 7644 §3.4.2.2): parsed with scim2-filter-parser, evaluated or translated.

``parse_filter`` turns the text into this module's small AST (the library's AST nests value paths
in a way no caller should have to know). Two consumers:

* ``matches(node, resource)``: in-memory evaluation against a SCIM resource dict, used for PATCH
  value paths (``emails[type eq "work"]``) and to check the few candidates an ``id``/``externalId``
  lookup yields;
* ``plan_user_query`` / ``plan_group_query``: what to ask Genesys. Operators and attributes Genesys
  search can answer (``eq``, ``sw``, ``co``, ``pr``, ``and``, ``or`` on the fields
  ``directory.SEARCH_FIELDS`` names) become ``Criterion`` trees; ``id eq`` and ``externalId eq``
  (answered from the bridge's table) become candidate lookups. Anything else is 400
  ``invalidFilter``: never a silent full scan.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Mapping
from typing import Any, Union

from scim2_filter_parser import ast as fast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from scim_bridge.directory import Criterion, GroupQuery, UserQuery
from scim_bridge.directory.mapping import GROUP_SEARCH_FIELDS, USER_SEARCH_FIELDS
from scim_bridge.scim import definitions
from scim_bridge.scim.errors import InvalidFilter, TooMany
from scim_bridge.scim.schemas import ValidationError, storable_text

MAX_FILTER_DEPTH = 16
MAX_KEYED_USERS = 100  # one bulk read
MAX_KEYED_GROUPS = 10  # each is one read, and one more for its members
MAX_FILTER_LENGTH = 4096
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le"})


@dataclasses.dataclass(frozen=True)
class AttrPath:
    """``[uri:]attr[\\[filter\\]][.sub]``. ``attr`` is None when the path is a schema URN alone."""

    attr: str | None
    uri: str | None = None
    sub: str | None = None
    value_filter: Node | None = None

    @property
    def name(self) -> str:
        """Dotted name without the URN (``name.givenName``), lower-cased for lookups."""
        base = (self.attr or "").lower()
        return f"{base}.{self.sub.lower()}" if self.sub else base


@dataclasses.dataclass(frozen=True)
class Compare:
    path: AttrPath
    op: str  # eq ne co sw ew pr gt ge lt le
    value: str | None  # None for pr


@dataclasses.dataclass(frozen=True)
class Has:
    """A value path used as a filter: ``emails[type eq "work"]`` (some element matches)."""

    path: AttrPath


@dataclasses.dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclasses.dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclasses.dataclass(frozen=True)
class Not:
    inner: Node


Node = Union[Compare, Has, And, Or, Not]  # noqa: UP007 (a runtime alias of forward refs)


class _Syntax(ValueError):
    """What is wrong with the filter's text, in words for the client (never a token's repr)."""


class _Lexer(SCIMLexer):  # type: ignore[misc]
    """The library's lexer with compValue strings read as JSON strings (RFC 7644 §3.4.2.2: the
    rules of ECMA-404). The library's rule, ``"[^"]*"``, ends a string at an escaped quote and
    never decodes ``\\``, ``\\"`` or ``\\uXXXX``. This rule ends it at the first unescaped quote
    and lets ``json.loads`` decide what the escapes mean (and refuse what JSON refuses)."""

    tokens = SCIMLexer.tokens

    @_(r'"(?:[^"\\]|\\.)*"')  # type: ignore[name-defined, untyped-decorator]  # noqa: F821 (sly's decorator)
    def COMP_VALUE(self, t: Any) -> Any:  # noqa: N802 (sly names rules after their tokens)
        try:
            t.value = json.loads(t.value)
        except ValueError as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            raise _Syntax(f"The string {t.value} is not a valid JSON string: {msg}.") from None
        try:
            storable_text(t.value)
        except ValidationError as e:
            raise _Syntax(f"A string in the filter {e.messages[0]}.") from None
        return t

    def error(self, t: Any) -> None:
        at = t.index + 1
        if t.value.startswith('"'):
            raise _Syntax(f"The string at character {at} is not closed.")
        raise _Syntax(f"The filter has an unexpected character {t.value[0]!r} at character {at}.")


class _Tokens:
    """The lexer's tokens, remembering the last one handed to the parser: the one it stopped
    at when it raises (sly reports the lookahead it has no action for)."""

    def __init__(self, text: str) -> None:
        self._tokens = iter(_Lexer().tokenize(text))
        self.last: Any = None
        self.ended = False

    def __iter__(self) -> _Tokens:
        return self

    def __next__(self) -> Any:
        try:
            self.last = next(self._tokens)
        except StopIteration:
            self.ended = True
            raise
        return self.last

    def problem(self) -> str:
        if self.ended or self.last is None:
            return "The filter is incomplete: it ends where more is expected."
        return (
            f"The filter has an unexpected {self.last.value!r} at character {self.last.index + 1}."
        )


# --- parsing ---------------------------------------------------------------------------------


def parse_filter(text: str) -> Node:
    """Parse a filter or raise ``InvalidFilter`` (any input: the library raises assorted types)."""
    if not text or not text.strip():
        raise InvalidFilter("The filter is empty.")
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    depth = _bracket_depth(text)
    if depth > MAX_FILTER_DEPTH:
        # Parsing and evaluation recurse per level: 1,000 parentheses were a RecursionError.
        raise InvalidFilter(f"The filter nests deeper than {MAX_FILTER_DEPTH} levels.")
    try:
        storable_text(text)
    except ValidationError as e:
        raise InvalidFilter(f"The filter {e.messages[0]}.") from None
    tokens = _Tokens(text)
    try:
        tree = SCIMParser().parse(tokens)
    except _Syntax as e:
        raise InvalidFilter(str(e)) from None
    except Exception:  # the parser raises SCIMParserError, IndexError, ...: all say "here"
        raise InvalidFilter(tokens.problem()) from None
    if tree is None:
        raise InvalidFilter("The filter could not be parsed.")
    try:
        return _convert(tree)
    except RecursionError:  # a long chain of and/or nests as deep as it is long
        raise InvalidFilter("The filter has too many terms.") from None


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``(`` and ``[`` outside quoted strings."""
    depth = deepest = 0
    quoted = escaped = False
    for char in text:
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def _convert(node: Any) -> Node:
    if isinstance(node, fast.Filter):
        namespace = getattr(node, "namespace", None)
        inner = _convert(node.expr)
        if namespace is not None:
            path = _attr_path(namespace)
            inner = Has(dataclasses.replace(path, sub=None, value_filter=inner))
            if path.sub is not None:
                raise InvalidFilter("A value filter cannot be followed by a sub-attribute here.")
        return Not(inner) if getattr(node, "negated", False) else inner
    if isinstance(node, fast.LogExpr):
        left, right = _convert(node.expr1), _convert(node.expr2)
        op = str(node.op).lower()
        if op == "and":
            return And(left, right)
        if op == "or":
            return Or(left, right)
        raise InvalidFilter(f"Unknown logical operator {node.op!r}.")
    if isinstance(node, fast.AttrExpr):
        op = str(node.value).lower()
        if op not in OPERATORS:
            raise InvalidFilter(f"Unknown operator {node.value!r}.")
        path = _attr_path(node.attr_path)
        if op == "pr":
            return Compare(path, op, None)
        comp = getattr(node, "comp_value", None)
        value = None if comp is None else comp.value
        return Compare(path, op, None if value is None else str(value))
    raise InvalidFilter("The filter could not be parsed.")


def _attr_path(node: Any) -> AttrPath:
    if not isinstance(node, fast.AttrPath):
        raise InvalidFilter("The filter could not be parsed.")
    name = node.attr_name
    sub = node.sub_attr.value if isinstance(node.sub_attr, fast.SubAttr) else None
    if isinstance(name, fast.Filter):
        # emails[type eq "work"].value: the library nests the value path in attr_name.
        namespace = name.namespace
        inner = _convert(name.expr)
        base = _attr_path(namespace)
        return AttrPath(base.attr, base.uri, base.sub or sub, inner)
    uri = node.uri
    if uri is not None:
        known = definitions.find_schema_urn(str(uri))
        if known is None:
            raise InvalidFilter(f"Unknown schema {uri!r} in the filter.")
        uri = known
    return AttrPath(str(name), uri, sub)


# --- in-memory evaluation --------------------------------------------------------------------

_CASE_EXACT = frozenset({"id", "externalid", "value"})  # "value" of members (ids)


def lookup(resource: Mapping[str, Any], key: str) -> Any:
    """A key of ``resource``, matched case-insensitively (RFC 7643 §2.1)."""
    if key in resource:
        return resource[key]
    lowered = key.lower()
    for k, v in resource.items():
        if k.lower() == lowered:
            return v
    return None


def resolve(resource: Mapping[str, Any], path: AttrPath) -> list[Any]:
    """Every value ``path`` reaches in ``resource`` (flattening multi-valued attributes)."""
    container: Any = resource
    if path.uri is not None and path.uri in definitions.EXTENSION_SCHEMAS:
        container = lookup(resource, path.uri)
        if not isinstance(container, Mapping):
            return []
    if path.attr is None:
        return [container]
    value = lookup(container, path.attr)
    if value is None and path.uri is None:
        # An extension attribute named without its URN (Entra's manager check: "manager eq").
        extension = lookup(resource, definitions.ENTERPRISE_SCHEMA)
        if isinstance(extension, Mapping):
            value = lookup(extension, path.attr)
    items = value if isinstance(value, list) else [] if value is None else [value]
    if path.value_filter is not None:
        items = [i for i in items if isinstance(i, Mapping) and matches(path.value_filter, i)]
    return items if path.sub is None else _sub_values(items, path.sub)


def _sub_values(items: list[Any], sub: str) -> list[Any]:
    """``emails.value``: the sub-attribute of each element, flattened."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, Mapping):
            sub_value = lookup(item, sub)
            if isinstance(sub_value, list):
                out.extend(sub_value)
            elif sub_value is not None:
                out.append(sub_value)
    return out


def matches(node: Node, resource: Mapping[str, Any]) -> bool:
    if isinstance(node, And):
        return matches(node.left, resource) and matches(node.right, resource)
    if isinstance(node, Or):
        return matches(node.left, resource) or matches(node.right, resource)
    if isinstance(node, Not):
        return not matches(node.inner, resource)
    if isinstance(node, Has):
        return bool(resolve(resource, node.path))
    return _matches_compare(node, resource)


def _matches_compare(node: Compare, resource: Mapping[str, Any]) -> bool:
    values = resolve(resource, node.path)
    if node.op == "pr":
        return any(v not in (None, "", [], {}) for v in values)
    if node.op == "ne":
        return not any(_compare(v, "eq", node.value, node.path) for v in values)
    # A complex value compared directly (``emails eq "x"``) compares its "value" (RFC 7644 §3.4.2.2).
    flat = [lookup(v, "value") if isinstance(v, Mapping) else v for v in values]
    return any(_compare(v, node.op, node.value, node.path) for v in flat)


def _compare(actual: Any, op: str, expected: str | None, path: AttrPath) -> bool:
    if isinstance(actual, bool):
        if op != "eq":
            raise InvalidFilter(
                f"Operator {op!r} cannot be used with a boolean (RFC 7644 §3.4.2.2)."
            )
        return expected is not None and actual == (expected.lower() == "true")
    if actual is None or expected is None:
        return op == "eq" and actual is None and expected in (None, "null")
    left, right = str(actual), expected
    last = (path.sub or path.attr or "").lower()
    if last not in _CASE_EXACT:
        left, right = left.lower(), right.lower()
    compare = _STRING_OPERATORS.get(op)
    if compare is None:
        raise InvalidFilter(f"Unknown operator {op!r}.")
    return compare(left, right)


# RFC 7644 §3.4.2.2: string comparison (gt/ge/lt/le lexicographic).
_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "eq": operator.eq,
    "co": operator.contains,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


# --- what to ask Genesys ---------------------------------------------------------------------

_CRITERION_TYPE = {"eq": "EXACT", "sw": "STARTS_WITH", "co": "CONTAINS"}


def conjuncts(node: Node) -> list[Node]:
    if isinstance(node, And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def _disjuncts(node: Node) -> list[Node]:
    if isinstance(node, Or):
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def _key_lookup(node: Node, *, user_name: bool = False) -> tuple[str, str] | None:
    """``("id", v)``, ``("externalId", v)`` (and with ``user_name``, ``("userName", v)``) when
    ``node`` is ``id eq v`` / ``externalId eq v`` / ``userName eq v``."""
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and node.value is not None
        and node.path.uri is None
        and node.path.sub is None
        and node.path.value_filter is None
    ):
        name = (node.path.attr or "").lower()
        if name == "id":
            return ("id", node.value)
        if name == "externalid":
            return ("externalId", node.value)
        if name == "username" and user_name:
            return ("userName", node.value)
    return None


@dataclasses.dataclass(frozen=True)
class _Keys:
    ids: tuple[str, ...]
    external_ids: tuple[str, ...]
    user_names: tuple[str, ...]


def _candidates(node: Node, *, user_name: bool = False) -> _Keys | None:
    """Ids, externalIds (and userNames) that bound the result, when the filter is keyed on them.

    ``userName eq`` is a keyed lookup for Users: a userName that is not an email lives only in
    the bridge's records (issue 13), so Genesys's email search alone cannot answer it."""
    for conjunct in conjuncts(node):
        keys = [_key_lookup(d, user_name=user_name) for d in _disjuncts(conjunct)]
        if keys and all(k is not None for k in keys):
            found = [k for k in keys if k is not None]
            return _Keys(
                tuple(v for k, v in found if k == "id"),
                tuple(v for k, v in found if k == "externalId"),
                tuple(v for k, v in found if k == "userName"),
            )
    return None


def _field(path: AttrPath, fields: Mapping[str, str], resource_type: str) -> str:
    key = path.name
    if path.uri == definitions.ENTERPRISE_SCHEMA:
        key = f"enterprise:{key}"
    if path.value_filter is not None:
        # emails[type eq "work"].value is the one value filter Genesys can answer (the email).
        if key == "emails.value" and _is_work_type(path.value_filter):
            key = "emails.value"
        else:
            raise InvalidFilter(f"Filtering on {_show(path)} is not supported.")
    if path.uri is None and key not in fields and f"enterprise:{key}" in fields:
        key = f"enterprise:{key}"  # an extension attribute named without its URN (Entra: manager)
    if path.uri == definitions.BRIDGE_SCHEMA or key not in fields:
        raise InvalidFilter(
            f"Filtering {resource_type}s on {_show(path)} is not supported; supported: "
            + ", ".join(sorted(_public(k) for k in fields))
            + ", id, externalId."
        )
    return fields[key]


def _public(key: str) -> str:
    return key.replace("enterprise:", definitions.ENTERPRISE_SCHEMA + ":")


def _is_work_type(node: Node) -> bool:
    return (
        isinstance(node, Compare)
        and node.op == "eq"
        and node.path.name == "type"
        and (node.value or "").lower() == "work"
    )


def _show(path: AttrPath) -> str:
    text = path.attr or ""
    if path.uri:
        text = f"{path.uri}:{text}"
    if path.value_filter is not None:
        text += "[...]"
    if path.sub:
        text += f".{path.sub}"
    return text


def _criteria(node: Node, fields: Mapping[str, str], resource_type: str) -> Criterion:
    if isinstance(node, And | Or):
        parts = conjuncts(node) if isinstance(node, And) else _disjuncts(node)
        op = "AND" if isinstance(node, And) else "OR"
        children = tuple(
            dataclasses.replace(_criteria(p, fields, resource_type), operator=op) for p in parts
        )
        # Genesys nests criteria in ``group``; the group's own ``type`` is required by the
        # swagger but not described, so a neutral EXACT is sent (the sandbox ignores it).
        return Criterion(type="EXACT", operator=op, group=children)
    if isinstance(node, Not):
        raise InvalidFilter("'not' filters are not supported.")
    if isinstance(node, Has):
        raise InvalidFilter(f"Filtering on {_show(node.path)} is not supported.")
    if node.path.name == "active" and node.path.uri is None and resource_type == "User":
        if node.op != "eq" or (node.value or "").lower() not in ("true", "false"):
            raise InvalidFilter("active supports only 'eq true' and 'eq false'.")
        state = "active" if (node.value or "").lower() == "true" else "inactive"
        return Criterion(type="EXACT", fields=("state",), value=state)
    field = _field(node.path, fields, resource_type)
    if node.op == "pr":
        return Criterion(type="REQUIRED_FIELDS", fields=(field,))
    kind = _CRITERION_TYPE.get(node.op)
    if kind is None:
        raise InvalidFilter(
            f"Operator {node.op!r} is not supported; supported: eq, sw, co, pr, and, or."
        )
    value = node.value or ""
    if field == "email" and node.op == "eq":
        value = value.lower()  # userName is caseExact false (RFC 7643 §4.1.1)
    return Criterion(type=kind, fields=(field,), value=value)


def _top(criterion: Criterion) -> tuple[Criterion, ...]:
    """A top-level AND group is the request's own list of criteria."""
    if criterion.group and criterion.operator == "AND":
        return criterion.group
    return (criterion,)


def plan_user_query(text: str | None) -> UserQuery:
    if text is None or not text.strip():
        return UserQuery()
    node = parse_filter(text)
    bound = _candidates(node, user_name=True)
    if bound is not None:
        _cap_keys(bound, MAX_KEYED_USERS, "Users")
        # Every attribute must still be understood, even those evaluated in memory.
        _validate_in_memory(node, "User")
        return UserQuery(
            ids=bound.ids,
            external_ids=bound.external_ids,
            user_names=bound.user_names,
            residual=lambda r: matches(node, r),
        )
    return UserQuery(criteria=_top(_criteria(node, USER_SEARCH_FIELDS, "User")))


def plan_group_query(text: str | None) -> GroupQuery:
    if text is None or not text.strip():
        return GroupQuery()
    node = parse_filter(text)
    bound = _candidates(node)
    if bound is not None:
        _cap_keys(bound, MAX_KEYED_GROUPS, "Groups")
        _validate_in_memory(node, "Group")
        return GroupQuery(
            ids=bound.ids, external_ids=bound.external_ids, residual=lambda r: matches(node, r)
        )
    return GroupQuery(criteria=_top(_criteria(node, GROUP_SEARCH_FIELDS, "Group")))


def _cap_keys(bound: _Keys, cap: int, what: str) -> None:
    """A keyed filter costs Genesys calls per key (a group: one or two each; users: one per
    100 ids, one per userName): past the cap it is ``tooMany`` (RFC 7644 §3.4.2.2), not hundreds
    of calls."""
    keys = len(set(bound.ids)) + len(set(bound.external_ids)) + len(set(bound.user_names))
    if keys > cap:
        raise TooMany(
            f"The filter names {keys} {what} by id, externalId or userName; at most {cap} per "
            "request."
        )


def _validate_in_memory(node: Node, resource_type: str) -> None:
    if isinstance(node, And | Or):
        _validate_in_memory(node.left, resource_type)
        _validate_in_memory(node.right, resource_type)
        return
    if isinstance(node, Not):
        _validate_in_memory(node.inner, resource_type)
        return
    path = node.path
    attribute = definitions.find_attribute(resource_type, path.uri, path.attr or "")
    if attribute is None:
        raise InvalidFilter(f"Unknown attribute {_show(path)} in the filter.")
    if path.sub is not None and attribute.sub(path.sub) is None:
        raise InvalidFilter(f"Unknown attribute {_show(path)} in the filter.")
