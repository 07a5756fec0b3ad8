"""No input produces a 500: seeded random PATCH bodies, filters and paths (issue 5 item 7).

Built from fragments of what IdPs send plus junk, so that most inputs get past the JSON parser
and exercise the quirks, the path parser, the filter parser and PATCH application. Seeded: a
failure replays.
"""

from __future__ import annotations

import json
import random
from typing import Any

from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user

E = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ATTRS = ["userName", "displayName", "title", "active", "name", "name.givenName", "emails", "emails.value",
         'emails[type eq "work"].value', 'phoneNumbers[type eq "mobile"].value', "phoneNumbers", "externalId",
         "id", "meta", "members", 'members[value eq "x"]', f"{E}:manager", f"{E}:department", E, "manager",
         "nickName", "x.y.z", "emails[", "[]", "urn:x:y", "", " ", "emails[type eq \"work\"]", "groups"]  # fmt: skip
VALUES: list[Any] = ["x", "", None, True, False, "True", "False", 0, -1, 1.5, [], {}, [{"value": "v"}],
                     {"value": "m"}, {"givenName": "G"}, "a@example.com", [None], {"": ""}, "\u0000", "é" * 50,
                     {"name.givenName": "n", f"{E}:employeeNumber": "1", "active": "false"}]  # fmt: skip
OPS: list[Any] = [
    "add",
    "replace",
    "remove",
    "Add",
    "Replace",
    "Remove",
    "ADD",
    "merge",
    None,
    1,
    "",
]
FILTERS = ['userName eq "a"', "userName eq", 'title sw "x" and (displayName co "y" or active eq true)',
           'emails[type eq "work"].value eq "q"', "not (a eq b)", 'id eq "1" or externalId eq "2"',
           "((", ")", '"', "pr", "title pr", 'manager eq "m"', "a[b[c eq 1]]", "userName eq true",
           'displayName eq "' + "z" * 300 + '"', "\u00e9 eq 1", "userName Eq \"X\"", "x eq null"]  # fmt: skip


def _operation(rng: random.Random) -> Any:
    op: dict[str, Any] = {}
    if rng.random() < 0.9:
        op["op"] = rng.choice(OPS)
    if rng.random() < 0.75:
        op["path"] = rng.choice(ATTRS) if rng.random() < 0.95 else rng.choice(VALUES)
    if rng.random() < 0.85:
        op["value"] = rng.choice(VALUES)
    return op if rng.random() < 0.95 else rng.choice(VALUES)


def _check(response: Any) -> None:
    assert response.status_code < 500 or response.status_code == 503, response.get_data(
        as_text=True
    )
    if response.status_code >= 400:
        body = response.get_json()
        assert body["status"] == str(response.status_code)


def test_random_patches_never_500(bridge: Bridge) -> None:
    rng = random.Random(20261129)
    user = create_user(bridge)["id"]
    group = bridge.post("/Groups", json={"displayName": "Fuzz"}).get_json()["id"]
    for _ in range(150):
        body: Any = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [_operation(rng) for _ in range(rng.randint(1, 3))],
        }
        if rng.random() < 0.1:
            body = rng.choice(VALUES)
        target = f"/Users/{user}" if rng.random() < 0.7 else f"/Groups/{group}"
        _check(bridge.patch(target, json=body))
        if rng.random() < 0.1:
            raw = json.dumps(body)[: rng.randint(0, 40)]
            _check(
                bridge.patch(target, data=raw, headers={"Content-Type": "application/scim+json"})
            )


def test_random_filters_and_paging_never_500(bridge: Bridge) -> None:
    rng = random.Random(7)
    for _ in range(80):
        expression = rng.choice(FILTERS)
        if rng.random() < 0.5:
            expression = f"{expression} {rng.choice(['and', 'or'])} {rng.choice(FILTERS)}"
        params = {
            "filter": expression,
            "startIndex": str(rng.randint(-3, 30)),
            "count": str(rng.randint(-3, 200)),
        }
        if rng.random() < 0.3:
            params["attributes"] = rng.choice(ATTRS)
        if rng.random() < 0.3:
            params["excludedAttributes"] = rng.choice(ATTRS)
        _check(bridge.get(rng.choice(["/Users", "/Groups"]), query_string=params))


def test_random_resource_bodies_never_500(bridge: Bridge) -> None:
    rng = random.Random(11)
    for _ in range(60):
        body: dict[str, Any] = {}
        for _ in range(rng.randint(0, 6)):
            body[rng.choice(ATTRS)] = rng.choice(VALUES)
        if rng.random() < 0.5:
            body["userName"] = f"f{rng.randint(0, 10**9)}@example.com"
        _check(bridge.post(rng.choice(["/Users", "/Groups"]), json=body))
