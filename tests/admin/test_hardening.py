"""The admin API's failure paths are bounded (issue 14 item 2): failed logins throttled in the
audit chain like SCIM ones, paging validated, routing errors as JSON, and no start with a weak
admin token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from scim_bridge.app import create_app
from scim_bridge.audit import Tag
from scim_bridge.config import MIN_SECRET_LENGTH, ConfigError, Settings

TOKEN = "admin-token-for-hardening-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Flask]:
    made = create_app(Settings(database_url=sqlite_url, admin_token=TOKEN))
    yield made
    made.extensions["scim_bridge"].close()


def test_a_flood_of_wrong_admin_tokens_is_one_audit_event_per_reason(app: Flask) -> None:
    client = app.test_client()
    for i in range(100):
        response = client.get("/admin/audit", headers={"Authorization": f"Bearer wrong-{i}"})
        assert response.status_code == 401
    for _ in range(20):
        assert client.get("/admin/jobs").status_code == 401  # reason "missing"
    events = app.extensions["scim_bridge"].audit.events(tag=Tag.ADMIN_AUTH_FAILED, limit=1000)
    assert sorted(e.detail["reason"] for e in events) == ["missing", "wrong"]
    assert client.get("/admin/audit", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "query",
    ["offset=1000000000000000000000000000000", "limit=-1", "limit=0", "limit=501", "offset=-3"],
)
def test_admin_paging_is_validated(app: Flask, query: str) -> None:
    response = app.test_client().get(f"/admin/jobs?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.is_json
    assert "limit" in response.json["error"]


def test_an_unknown_job_state_is_a_400_naming_the_states(app: Flask) -> None:
    # Okta trial bug 11: ?state=bogus answered 200 with no jobs, as if none were in that state.
    response = app.test_client().get("/admin/jobs?state=bogus", headers=AUTH)
    assert response.status_code == 400
    assert "bogus" in response.json["error"]
    assert "pending" in response.json["error"]
    assert "cancelled" in response.json["error"]
    assert app.test_client().get("/admin/jobs?state=held", headers=AUTH).status_code == 200


@pytest.mark.parametrize("action", ["approve", "retry", "cut-access"])
@pytest.mark.parametrize("body", ["true", "[1]", '"x"', "3"])
def test_a_body_that_is_not_a_json_object_is_a_400(app: Flask, action: str, body: str) -> None:
    # Found by the fuzz test: `true` reached body.get() and answered 500.
    response = app.test_client().post(
        f"/admin/jobs/some-job/{action}",
        data=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "JSON object" in response.json["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/admin/nothing-here", 404),
        ("GET", "/admin", 404),
        ("DELETE", "/admin/jobs", 405),
        ("PUT", "/admin/audit/verify", 405),
    ],
)
def test_admin_routing_errors_are_json(app: Flask, method: str, path: str, status: int) -> None:
    response = app.test_client().open(path, method=method, headers=AUTH)
    assert response.status_code == status
    assert response.is_json
    assert response.json["error"]
    assert b"<html" not in response.data.lower()
    if status == 405:
        assert "GET" in response.headers["Allow"]


def test_scim_routing_errors_stay_scim_json(app: Flask) -> None:
    response = app.test_client().get("/scim/v2/Nope")
    assert response.status_code in (401, 404)
    assert response.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


@pytest.mark.parametrize("length", [0 + 1, 16, MIN_SECRET_LENGTH - 1])
def test_the_bridge_refuses_an_admin_token_under_32_characters(length: int) -> None:
    with pytest.raises(ConfigError, match="SCIM_BRIDGE_ADMIN_TOKEN"):
        Settings.from_env({"SCIM_BRIDGE_ADMIN_TOKEN": "a" * length})
    with pytest.raises(ConfigError, match="SCIM_BRIDGE_ADMIN_TOKEN"):
        Settings(admin_token="a" * length)
    assert Settings(admin_token="a" * MIN_SECRET_LENGTH).admin_token


def test_a_short_audit_hmac_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="AUDIT_HMAC_KEY"):
        Settings.from_env({"AUDIT_HMAC_KEY": "short"})
