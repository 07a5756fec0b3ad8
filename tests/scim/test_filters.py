"""Filter parsing, in-memory evaluation and translation to Genesys criteria (RFC 7644 §3.4.2.2)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from scim_bridge.directory import Criterion
from scim_bridge.scim.errors import InvalidFilter
from scim_bridge.scim.filters import (
    Compare,
    matches,
    parse_filter,
    plan_group_query,
    plan_user_query,
)
from tests.fixtures.bridge import Bridge

USER = {
    "id": "u1",
    "userName": "Ann.Lee@example.com",
    "displayName": "Ann Lee",
    "active": False,
    "emails": [{"value": "ann@work.example", "type": "work"}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        "department": "Ops",
        "manager": {"value": "m1"},
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ann.lee@EXAMPLE.com"', True),  # caseExact false (RFC 7643 §4.1.1)
        ('id eq "U1"', False),  # caseExact true
        ('displayName sw "ann"', True),
        ('displayName co "n L"', True),
        ('displayName ew "lee"', True),
        ("title pr", False),
        ("active eq false", True),
        ('emails[type eq "work"].value eq "ann@work.example"', True),
        ('emails[type eq "home"]', False),
        ('emails eq "ann@work.example"', True),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "ops"', True),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1"', True),
        ('manager eq "m1"', True),  # Entra's manager check names it without the URN (E-TUT)
        ('displayName eq "x" or not (active eq true)', True),
        ('userName ne "x" and displayName gt "A"', True),
    ],
)
def test_in_memory_evaluation(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), USER) is expected


def test_okta_user_name_lookup_is_a_keyed_lookup_issue_13() -> None:
    # userName need not be an email (issue 13): the bridge's records answer it, with the
    # Genesys login (an EXACT email search in the directory) for users it never recorded.
    query = plan_user_query('userName eq "Test.User@okta.local"')
    assert query.keyed
    assert query.user_names == ("Test.User@okta.local",)
    assert query.criteria is None
    assert query.residual is not None
    assert query.residual({"userName": "test.user@OKTA.local"})  # caseExact false (§4.1.1)
    assert not query.residual({"userName": "other@okta.local"})


def test_other_user_name_operators_still_search_genesys() -> None:
    query = plan_user_query('userName sw "test."')
    assert query.criteria == (Criterion(type="STARTS_WITH", fields=("email",), value="test."),)


def test_filter_with_a_lone_surrogate_or_nul_is_invalid_filter() -> None:
    for text in ('userName eq "a\ud800"', 'userName eq "a\x00"'):
        with pytest.raises(InvalidFilter):
            plan_user_query(text)


def test_operators_and_logic_translate() -> None:
    query = plan_user_query(
        'title sw "Sup" and (displayName co "an" or active eq false) and '
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr"
    )
    assert query.criteria is not None
    first, group, present = query.criteria
    assert first == Criterion(type="STARTS_WITH", fields=("title",), value="Sup", operator="AND")
    assert group.operator == "AND"
    assert [c.operator for c in group.group] == ["OR", "OR"]
    assert group.group[0] == Criterion(type="CONTAINS", fields=("name",), value="an", operator="OR")
    assert group.group[1] == Criterion(
        type="EXACT", fields=("state",), value="inactive", operator="OR"
    )
    assert present == Criterion(type="REQUIRED_FIELDS", fields=("department",), operator="AND")


def test_id_and_external_id_are_keyed_lookups() -> None:
    query = plan_user_query('id eq "a" and manager eq "m"')
    assert query.keyed
    assert query.ids == ("a",)
    query = plan_user_query('externalId eq "x" or externalId eq "y"')
    assert query.external_ids == ("x", "y")
    assert query.residual is not None
    assert query.residual({"externalId": "y"})


def test_group_display_name_filter() -> None:
    assert plan_group_query('displayName eq "Sales"').criteria == (
        Criterion(type="EXACT", fields=("name",), value="Sales"),
    )
    with pytest.raises(InvalidFilter):
        plan_group_query('members.value eq "x"')


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x" * 5000,
        'emails[type eq "work"',
        'a eq "\\"q\\""',
        "userName eq 12",
        'meta.created gt "x"',
    ],
)
def test_unparseable_or_unanswerable(text: str) -> None:
    with pytest.raises(InvalidFilter):
        plan_user_query(text) if text.strip() else parse_filter(text)


# --- compValue strings are JSON strings (RFC 7644 §3.4.2.2, ECMA-404) -------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'userName eq "CORP\\jdoe2"', "CORP\\jdoe2"),
        (r'userName eq "o.brien\"x@example.com"', 'o.brien"x@example.com'),
        (r'displayName eq "J\u0020Doe2"', "J Doe2"),
        (r'displayName eq "a\/b\tc\nd\re\bf\fg"', "a/b\tc\nd\re\bf\fg"),
        (r'displayName eq "\u00e9\uD83D\uDE00"', "\u00e9\U0001f600"),  # a surrogate pair
        (r'displayName eq "\"\\"', '"\\'),  # the string ends at the first unescaped quote
        (r'emails[type eq "w\"k"].value eq "x"', None),
    ],
)
def test_comp_value_escapes_are_decoded_okta_bug_2(text: str, value: str | None) -> None:
    node = parse_filter(text)
    if value is None:  # inside a value path
        assert isinstance(node, Compare)
        inner = node.path.value_filter
        assert isinstance(inner, Compare)
        assert inner.value == 'w"k'
        return
    assert isinstance(node, Compare)
    assert node.value == value


@pytest.mark.parametrize(
    "text",
    [
        r'userName eq "a\qb"',  # not a JSON escape
        r'userName eq "a\u12"',  # a short \u escape
        r'userName eq "a\"',  # the escaped quote leaves the string open
        'userName eq "a\tb"',  # a raw control character is not allowed in a JSON string
        r'userName eq "a\ud800"',  # a lone surrogate decoded: not storable
        r'userName eq "a\u0000"',  # NUL decoded: not storable
    ],
)
def test_bad_json_strings_are_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text)


def test_escaped_filter_values_find_their_users_over_http(bridge: Bridge) -> None:
    """Okta bug 2: an escaped lookup that misses makes Okta POST next and stop on 409."""
    tag = uuid.uuid4().hex[:8]
    made = {}
    for user_name, display in [
        (f"CORP\\jdoe{tag}", f"J Doe{tag}"),
        (f'o.brien"x{tag}', f"O Brien{tag}"),
        (f"a/b{tag}", f"A B{tag}"),
    ]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "displayName": display,
            "emails": [{"primary": True, "value": f"u{uuid.uuid4().hex[:10]}@example.com"}],
            "active": True,
        }
        r = bridge.post("/Users", json=body)
        assert r.status_code == 201, r.get_data(as_text=True)
        made[user_name] = r.get_json()["id"]
    for text, user_name in [
        (f'userName eq "CORP\\\\jdoe{tag}"', f"CORP\\jdoe{tag}"),
        (f'userName eq "CORP\\u005cjdoe{tag}"', f"CORP\\jdoe{tag}"),
        (f'userName eq "o.brien\\"x{tag}"', f'o.brien"x{tag}'),
        (f'userName eq "a\\/b{tag}"', f"a/b{tag}"),
        (f'displayName eq "J\\u0020Doe{tag}"', f"CORP\\jdoe{tag}"),
        (f'displayName sw "O\\u0020Brien{tag}"', f'o.brien"x{tag}'),
    ]:
        r = bridge.get("/Users?filter=" + quote(text))
        assert r.status_code == 200, (text, r.get_data(as_text=True))
        assert [u["id"] for u in r.get_json()["Resources"]] == [made[user_name]], text
    r = bridge.get("/Users?filter=" + quote('userName eq "a\\qb"'))
    assert r.status_code == 400
    assert r.get_json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('userName eq "a" foo', "unexpected 'foo' at character 17"),
        ('userName eq "a" and', "incomplete"),
        ("userName eq", "incomplete"),
        ('emails[type eq "work"', "incomplete"),
        ('userName eq "abc', "not closed"),
        ("userName eq 'a'", 'unexpected character "\'" at character 13'),
    ],
)
def test_invalid_filter_detail_says_what_is_wrong_okta_bug_11(text: str, detail: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter(text)
    assert detail in caught.value.detail
    assert "Token(" not in caught.value.detail
    assert "None" not in caught.value.detail


def test_invalid_filter_detail_over_http(bridge: Bridge) -> None:
    r = bridge.get("/Users?filter=" + quote('userName eq "a" foo'))
    assert r.status_code == 400
    body = r.get_json()
    assert body["scimType"] == "invalidFilter"
    assert "unexpected 'foo' at character 17" in body["detail"]
    assert "Token(" not in body["detail"]
