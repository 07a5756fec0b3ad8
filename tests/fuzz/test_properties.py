"""Property-based fuzzing of every SCIM and admin route (issue 14 item 5), bounded for CI.

Routes are read from the app's URL map, so a route added later is fuzzed without touching this
file. Each example is one request: a method the route allows, its path filled with an existing,
random or hostile id, a hostile query (filters, paging, projections), a body drawn from
malformed JSON, wrong types, huge and deeply nested values and unicode edge cases, and odd
headers. For every answer:

* never a 500 (a 503 only with ``Retry-After``, a 501 only for ``/Me`` and ``/Bulk``);
* under ``/scim/v2``, every 4xx is a SCIM error body (RFC 7644 §3.12) with its status;
* no secret (SCIM tokens, the admin token, the Genesys client secret) and no traceback in a body;
* a refused request (4xx) wrote nothing to Genesys: the sandbox's count of write calls is
  unchanged across it.

Bounded: a fixed number of examples per test, derandomised (a failure replays in CI), no
per-example deadline (the machine is shared), about a minute on 2 cores.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from tests.fixtures.bridge import Bridge, close_bridge, make_bridge

ADMIN_TOKEN = "fuzz-admin-token-" + "a1b2c3d4" * 4
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
WRITES = ("POST ", "PUT ", "PATCH ", "DELETE ")
EXAMPLES = 120

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def fuzzed(sandbox: Any, tmp_path: Path) -> Iterator[tuple[Bridge, Any]]:
    made = make_bridge(sandbox, tmp_path, admin_token=ADMIN_TOKEN, sync_budget_s=1.0)
    yield made, sandbox
    close_bridge(made)


def _routes(bridge: Bridge, prefix: str) -> list[tuple[Rule, str]]:
    found = []
    for rule in bridge.app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda pair: (pair[0].rule, pair[1]))


# --- strategies ---------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "../users/x",
        "..%2F..%2Fadmin",
        "%00",
        "\u0000",
        "\ud7ff\ue000\uffff",
        "\u202e\u200b",
        "😀" * 40,
        "' OR 1=1 --",
        "<script>x</script>",
        "${jndi:ldap://x}",
        "a" * 5000,
        "null",
        "-1",
        "1e400",
        "NaN",
    ]
)
TEXT = st.one_of(st.text(max_size=40), HOSTILE_TEXT)
ID = st.one_of(
    st.uuids().map(str),
    st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=80),
    HOSTILE_TEXT,
)
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(TEXT, st.sampled_from(_keys := [
            "schemas", "userName", "active", "emails", "name", "members", "displayName",
            "Operations", "op", "path", "value", "filter", "startIndex", "count", "id",
            "externalId", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ])), inner, max_size=6),
    ),
    max_leaves=30,
)  # fmt: skip
SCIM_SHAPED = st.fixed_dictionaries(
    {
        "schemas": st.sampled_from(
            [
                ["urn:ietf:params:scim:schemas:core:2.0:User"],
                ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "not-a-list",
            ]
        )
    },
    optional={
        "userName": st.one_of(st.emails().map(lambda e: "fz." + e), TEXT, JSON_SCALAR),
        "displayName": TEXT,
        "active": JSON_SCALAR,
        "emails": JSON,
        "members": st.lists(st.fixed_dictionaries({"value": ID}), max_size=3),
        "Operations": st.lists(
            st.fixed_dictionaries(
                {"op": st.sampled_from(["add", "replace", "remove", "Add", "x", ""])},
                optional={"path": st.one_of(TEXT, st.just("emails[type eq \"work\"].value")),
                          "value": JSON},
            ),
            max_size=4,
        ),
        "filter": TEXT,
        "startIndex": JSON_SCALAR,
        "count": JSON_SCALAR,
    },
)  # fmt: skip
DEEP = st.integers(min_value=30, max_value=3000).map(lambda n: "[" * n + "]" * n)
BODY = st.one_of(
    st.none(),
    SCIM_SHAPED.map(json.dumps),
    JSON.map(json.dumps),
    DEEP,
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["{", '{"a":', "[1,2", "NaN", '{"a": Infinity}', "\ufeff{}", '"x"', "{}"]),
    st.text(max_size=20).map(lambda t: '{"userName": "' + "x" * 70_000 + t + '"}'),
)
FILTER = st.one_of(
    TEXT,
    st.integers(min_value=1, max_value=400).map(lambda n: "(" * n + 'userName eq "a"' + ")" * n),
    st.integers(min_value=1, max_value=300).map(
        lambda n: " or ".join(f'id eq "{i}"' for i in range(n))
    ),
    st.sampled_from(
        [
            'userName eq "a"',
            'emails[type eq "work"].value co "@"',
            "active eq true",
            'displayName sw "G"',
            "title pr",
            'members[value eq "x"]',
            'id eq "../users/1"',
            'not (userName eq "a")',
        ]
    ),
)
QUERY = st.dictionaries(
    st.sampled_from(
        ["filter", "count", "startIndex", "attributes", "excludedAttributes", "limit", "offset",
         "after_seq", "since", "tag", "user", "state", "job"]
    ),
    st.one_of(FILTER, st.integers(min_value=-(10**30), max_value=10**30).map(str), TEXT),
    max_size=4,
)  # fmt: skip
CONTENT_TYPE = st.sampled_from(
    [
        "application/scim+json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/scim+json; charset=latin-1",
        "",
    ]
)


@st.composite
def requests_for(
    draw: st.DrawFn, routes: list[tuple[Rule, str]], known_ids: list[str]
) -> dict[str, Any]:
    rule, method = draw(st.sampled_from(routes))
    path = rule.rule
    for argument in sorted(rule.arguments):
        value = draw(st.one_of(st.sampled_from(known_ids), ID)) if known_ids else draw(ID)
        quoted = re.sub(r"[/?#]", lambda m: f"%{ord(m.group()):02X}", value) or "x"
        path = path.replace(f"<{argument}>", quoted).replace(f"<path:{argument}>", quoted)
    headers = {"Content-Type": draw(CONTENT_TYPE)}
    if draw(st.booleans()):
        headers["If-Match"] = draw(
            st.sampled_from(['W/"1"', "*", "garbage", 'W/"99999999999999999999"'])
        )
    if draw(st.integers(0, 9)) == 0:
        headers["X-Request-Id"] = draw(TEXT).replace("\n", " ")[:300]
    return {
        "method": method,
        "path": path,
        "query": draw(QUERY),
        "body": draw(BODY) if method in ("POST", "PUT", "PATCH") else None,
        "headers": headers,
        "auth": draw(st.sampled_from(["token", "token", "token", "none", "junk", "basic"])),
    }  # fmt: skip


def _secrets(bridge: Bridge, sandbox: Any) -> list[str]:
    return [bridge.token, bridge.entra.token, ADMIN_TOKEN, sandbox.client_secret]


def _writes(sandbox: Any) -> int:
    endpoints = sandbox.stats()["endpoints"]
    return sum(
        count
        for name, by_status in endpoints.items()
        if name.startswith(WRITES) and "/oauth/" not in name and "/search" not in name
        for status, count in by_status.items()
        if status.startswith("2")
    )


def _send(bridge: Bridge, sandbox: Any, request: dict[str, Any], token: str) -> None:
    headers = dict(request["headers"])
    auth = request["auth"]
    if auth == "token":
        headers["Authorization"] = f"Bearer {token}"
    elif auth == "junk":
        headers["Authorization"] = "Bearer " + "x" * 40
    elif auth == "basic":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    before = _writes(sandbox)
    response = bridge.flask.open(
        request["path"],
        method=request["method"],
        query_string=request["query"],
        data=request["body"].encode("utf-8", "surrogatepass")
        if request["body"] is not None
        else None,
        headers={k: v for k, v in headers.items() if v},
    )
    status = response.status_code
    text = response.get_data(as_text=True)
    shown = f"{request['method']} {request['path']} -> {status}: {text[:300]}"
    assert status != 500, shown
    if status == 501:  # RFC 7644 §3.11, §3.12: what the bridge does not implement
        assert re.match(r"/scim/v2/(Me|Bulk)(/|$)", request["path"]), shown
    elif status >= 500:
        assert status == 503, shown
        assert response.headers.get("Retry-After"), shown
    if request["path"].startswith("/scim/v2") and 400 <= status < 500:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), shown
        assert body.get("schemas") == [ERROR], shown
        assert body.get("status") == str(status), shown
    assert "Traceback" not in text, shown
    assert 'File "' not in text, shown
    for secret in _secrets(bridge, sandbox):
        assert secret not in text, shown
    if 400 <= status < 500:
        assert _writes(sandbox) == before, f"a refused request wrote to Genesys: {shown}"


def _known_ids(bridge: Bridge) -> list[str]:
    users = bridge.get("/Users?count=3").get_json()["Resources"]
    groups = bridge.get("/Groups?count=2&excludedAttributes=members").get_json()["Resources"]
    return [r["id"] for r in users + groups]


def test_fuzz_every_scim_route(fuzzed: tuple[Bridge, Any]) -> None:
    bridge, sandbox = fuzzed
    routes = _routes(bridge, "/scim/v2")
    assert len(routes) >= 15
    known = _known_ids(bridge)

    @FUZZ
    @given(requests_for(routes, known))
    def run(request: dict[str, Any]) -> None:
        _send(bridge, sandbox, request, bridge.token)

    run()


def test_fuzz_every_admin_route(fuzzed: tuple[Bridge, Any]) -> None:
    bridge, sandbox = fuzzed
    routes = _routes(bridge, "/admin")
    assert len(routes) >= 6
    known = _known_ids(bridge)

    @FUZZ
    @given(requests_for(routes, known))
    def run(request: dict[str, Any]) -> None:
        _send(bridge, sandbox, request, ADMIN_TOKEN)

    run()
