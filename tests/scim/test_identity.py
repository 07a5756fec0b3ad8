"""SCIM identity fidelity (issue 13): any userName, names for every user, atomic creates.

Driven over HTTP against the sandbox; the end state is read back through SCIM and from the
sandbox's own record of the Genesys user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.scim.replay import create_user, load, unique_email

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _posts(sandbox: Any) -> int:
    """Genesys user creates the sandbox has seen (any status)."""
    counts = sandbox.stats()["endpoints"].get("POST /api/v2/users", {})
    return sum(int(n) for n in counts.values())


def _error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def _find(bridge: Bridge, expression: str) -> list[dict[str, Any]]:
    response = bridge.get("/Users", query_string={"filter": expression})
    assert response.status_code == 200, response.get_data(as_text=True)
    found: list[dict[str, Any]] = response.get_json()["Resources"]
    return found


def _nickname() -> str:
    return f"jdoe{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "payload", ["okta-create-user-custom-username.json", "entra-create-user-mailnickname.json"]
)
def test_non_email_user_name_logs_in_with_the_work_email(
    bridge: Bridge, sandbox: Any, payload: str
) -> None:
    """Okta's custom username format (sAMAccountName) and Entra's userName <- mailNickname."""
    name, email = _nickname(), unique_email("jdoe")
    created = create_user(bridge, payload, username=name, email=email)
    uid = created["id"]
    assert created["userName"] == name
    assert sandbox.user(uid)["email"] == email  # the Genesys login
    # Found by userName, case-insensitively (RFC 7643 §4.1.1), and not by the login.
    assert [u["id"] for u in _find(bridge, f'userName eq "{name.upper()}"')] == [uid]
    assert _find(bridge, f'userName eq "{email}"') == []
    # The bridge keeps it unique: another create with the same userName in other case is 409.
    again = bridge.post(
        "/Users",
        json=load(payload, username=name.upper(), email=unique_email("other")),
    )
    _error(again, 409, "uniqueness")


def test_user_name_and_login_email_can_each_change_later(bridge: Bridge, sandbox: Any) -> None:
    name, email = _nickname(), unique_email("jdoe")
    uid = create_user(bridge, "okta-create-user-custom-username.json", username=name, email=email)[
        "id"
    ]
    renamed = _nickname()
    response = bridge.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "userName", "value": renamed}],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["userName"] == renamed
    assert _find(bridge, f'userName eq "{name}"') == []
    assert [u["id"] for u in _find(bridge, f'userName eq "{renamed}"')] == [uid]
    assert sandbox.user(uid)["email"] == email
    # A new work email becomes the new login (Entra's form of the change).
    new_email = unique_email("moved")
    response = bridge.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email}
            ],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sandbox.user(uid)["email"] == new_email
    assert bridge.get(f"/Users/{uid}").get_json()["userName"] == renamed
    # And an email userName becomes the login itself.
    response = bridge.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "userName", "value": new_email.upper()}],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sandbox.user(uid)["email"].lower() == new_email
    assert [u["id"] for u in _find(bridge, f'userName eq "{new_email}"')] == [uid]


def test_non_email_user_name_without_a_usable_email_is_400_before_genesys(
    bridge: Bridge, sandbox: Any
) -> None:
    before = _posts(sandbox)
    for body in (
        load("okta-create-user-custom-username-no-email.json", username=_nickname()),
        # a home email is not the work address Genesys needs for the login
        {
            "schemas": [USER],
            "userName": _nickname(),
            "emails": [{"value": unique_email(), "type": "home"}],
        },
        # a work "email" that is no email address
        {"schemas": [USER], "userName": _nickname(), "emails": [{"value": "x", "type": "work"}]},
    ):
        error = _error(bridge.post("/Users", json=body), 400, "invalidValue")
        assert 'emails[type eq "work"].value' in error["detail"]
        assert "userName" in error["detail"]
    assert _posts(sandbox) == before


def test_users_the_bridge_did_not_write_have_given_and_family_names(bridge: Bridge) -> None:
    """Okta's import needs both (its spec test reads the first listed user)."""
    listed = bridge.get("/Users", query_string={"count": "5"}).get_json()["Resources"]
    assert listed
    for user in listed:
        assert user["name"]["givenName"], user
        assert user["name"]["familyName"], user
        assert user["name"]["formatted"] == user["displayName"]
    uid = listed[0]["id"]
    response = bridge.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": "replace", "path": "name.givenName", "value": "Idp-Given"},
                {"op": "replace", "path": "name.familyName", "value": "Idp-Family"},
            ],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    name = bridge.get(f"/Users/{uid}").get_json()["name"]
    assert (name["givenName"], name["familyName"]) == ("Idp-Given", "Idp-Family")


def test_patch_without_operations_is_invalid_syntax(bridge: Bridge) -> None:
    """RFC 7644 §3.12 table 9: the body is not a PatchOp message."""
    uid = create_user(bridge)["id"]
    _error(bridge.patch(f"/Users/{uid}", json={"schemas": [PATCH]}), 400, "invalidSyntax")


def test_401_carries_www_authenticate_bearer(bridge: Bridge) -> None:
    """RFC 6750 §3."""
    for auth in ("", "Bearer not-a-token"):
        response = bridge.get("/Users", auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- atomic creates, on both databases -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_bridge(request: pytest.FixtureRequest, sandbox: Any, tmp_path: Path) -> Iterator[Bridge]:
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("pg_url")
    made = make_bridge(sandbox, tmp_path, **overrides)
    yield made
    close_bridge(made)


def _storage_refusals() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("externalId", {"externalId": "x" * 401}),  # directory_resources.external_id is 400
        ("userName", {"userName": "u" * 401}),
        ("displayName", {"displayName": "Ann \ud800 Lee"}),
        ("name.givenName", {"name": {"givenName": "A\x00nn"}}),
        (f"{ENTERPRISE}:department", {ENTERPRISE: {"department": "\udfff"}}),
        ("emails.value", {"emails": [{"value": "a\ud800@example.com", "type": "work"}]}),
        ("nickName", {"nickName": "n" * 1025}),
    ]


@pytest.mark.parametrize(("attribute", "change"), _storage_refusals())
def test_what_storage_cannot_hold_is_400_before_any_genesys_call(
    any_db_bridge: Bridge, sandbox: Any, attribute: str, change: dict[str, Any]
) -> None:
    bridge = any_db_bridge
    before = _posts(sandbox)
    body = {**load("okta-create-user.json", username=unique_email()), **change}
    error = _error(bridge.post("/Users", json=body), 400, "invalidValue")
    assert error["detail"].startswith(attribute), error
    assert _posts(sandbox) == before
    # The same create without the bad value succeeds (nothing was left behind).
    good = load("okta-create-user.json", username=body["userName"])
    if attribute == "userName":
        good["userName"] = unique_email()
    response = bridge.post("/Users", json=good)
    assert response.status_code == 201, response.get_data(as_text=True)


def test_unknown_manager_is_400_before_the_genesys_post(
    any_db_bridge: Bridge, sandbox: Any
) -> None:
    bridge = any_db_bridge
    before = _posts(sandbox)
    body = load("entra-create-user.json", username=unique_email())
    body[ENTERPRISE]["manager"] = {"value": str(uuid.uuid4())}
    error = _error(bridge.post("/Users", json=body), 400, "invalidValue")
    assert "manager" in error["detail"]
    assert _posts(sandbox) == before
    email = body["userName"]
    body[ENTERPRISE].pop("manager")
    response = bridge.post("/Users", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert _find(bridge, f'userName eq "{email}"')[0]["id"] == response.get_json()["id"]


def test_retry_of_a_create_that_failed_after_the_post_completes_it(
    any_db_bridge: Bridge, sandbox: Any
) -> None:
    """The step after the Genesys POST fails: the IdP's retry (same token, same userName) finds
    the user this bridge created and finishes it with 201, not a permanent 409."""
    bridge = any_db_bridge
    name, email = _nickname(), unique_email("retry")
    body = load("entra-create-user-mailnickname.json", username=name, email=email)
    sandbox.fail_next("/api/v2/users/", method="PATCH", status=400)
    first = bridge.post("/Users", json=body)
    assert first.status_code == 400, first.get_data(as_text=True)
    posts = _posts(sandbox)
    # Another IdP (token) cannot take it over.
    other = bridge.entra.post("/Users", json=body)
    _error(other, 409, "uniqueness")
    retry = bridge.post("/Users", json=body)
    assert retry.status_code == 201, retry.get_data(as_text=True)
    created = retry.get_json()
    assert _posts(sandbox) == posts  # completed, not created again
    assert created["userName"] == name
    assert created[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour Operations"}
    genesys = sandbox.user(created["id"])
    assert genesys["email"] == email
    assert genesys["employerInfo"]["employeeId"] == "701984"
    assert [u["id"] for u in _find(bridge, f'userName eq "{name}"')] == [created["id"]]
    # Once complete, a further create of the same userName is a conflict again.
    _error(bridge.post("/Users", json=body), 409, "uniqueness")
