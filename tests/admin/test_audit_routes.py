"""``GET /admin/audit`` behind SCIM_BRIDGE_ADMIN_TOKEN (RFC 6750 bearer)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from scim_bridge.app import Components, create_app
from scim_bridge.audit import AuditLog, Tag
from scim_bridge.config import Settings

TOKEN = "admin-token-for-tests-0123456789"


@contextlib.contextmanager
def _app(db_url: str, token: str | None = TOKEN) -> Iterator[Flask]:
    app = create_app(Settings(database_url=db_url, admin_token=token))
    try:
        yield app
    finally:
        app.extensions["scim_bridge"].engine.dispose()


def _audit(app: Flask) -> AuditLog:
    components = app.extensions["scim_bridge"]
    assert isinstance(components, Components)
    return components.audit


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    with _app(db_url) as app:
        audit = _audit(app)
        for i in range(5):
            audit.record(
                Tag.DEPROVISION_USER_DEACTIVATED if i % 2 else Tag.SCIM_USER_DELETE_REQUESTED,
                actor="okta",
                idp="okta",
                scim_id=f"u{i % 2}",
                genesys_user_id=f"g{i % 2}",
                job_id="j1",
            )
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(_auth("wrong-token"), id="wrong"),
        pytest.param(_auth(TOKEN + "x"), id="longer"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="not-bearer"),
        pytest.param({"Authorization": "Bearer "}, id="empty"),
    ],
)
def test_a_missing_or_wrong_token_is_refused(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/admin/audit", headers=headers)
    assert response.status_code == 401
    assert response.is_json
    assert response.json is not None
    assert response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The refusal is in the trail, without the token that was presented.
    (failed,) = _audit(app).events(tag=Tag.ADMIN_AUTH_FAILED)
    assert failed.outcome == "refused"
    assert "wrong-token" not in failed.to_json()


def test_the_right_token_serves_events(client: FlaskClient) -> None:
    response = client.get("/admin/audit", headers=_auth())
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["count"] == 5
    assert [e["seq"] for e in body["events"]] == [1, 2, 3, 4, 5]
    assert body["next_after_seq"] is None
    assert response.headers["X-Request-Id"]


def test_filters_and_paging(client: FlaskClient) -> None:
    def seqs(query: str) -> list[int]:
        response = client.get(f"/admin/audit?{query}", headers=_auth())
        assert response.status_code == 200, response.json
        assert response.json is not None
        return [e["seq"] for e in response.json["events"]]

    assert seqs("user=u1") == [2, 4]
    assert seqs("user=g0") == [1, 3, 5]
    assert seqs("tag=deprovision:user:deactivated") == [2, 4]
    assert seqs("user=u0&tag=scim:user:delete-requested&limit=2") == [1, 3]
    assert seqs("since=2000-01-01T00:00:00Z&limit=2") == [1, 2]
    assert seqs("since=2999-01-01T00:00:00Z") == []
    assert seqs("limit=2&after_seq=2") == [3, 4]
    assert seqs("job=j1&limit=3") == [1, 2, 3]
    page = client.get("/admin/audit?limit=2", headers=_auth()).json
    assert page is not None
    assert page["next_after_seq"] == 2


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=ten", "since=yesterday", "tag=no:such:tag"]
)
def test_bad_queries_are_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"/admin/audit?{query}", headers=_auth())
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"] == "bad_request"


def test_verify_endpoint(client: FlaskClient) -> None:
    response = client.get("/admin/audit/verify", headers=_auth())
    assert response.status_code == 200
    assert response.json is not None
    assert (response.json["ok"], response.json["count"]) == (True, 5)
    assert client.get("/admin/audit/verify").status_code == 401


def test_without_an_admin_token_the_admin_api_is_disabled(db_url: str) -> None:
    with _app(db_url, token=None) as app:
        client = app.test_client()
        for headers in ({}, _auth(), {"Authorization": "Bearer "}):
            response = client.get("/admin/audit", headers=headers)
            assert response.status_code == 503
            assert response.json is not None
            assert "SCIM_BRIDGE_ADMIN_TOKEN" in response.json["detail"]


def test_components_carry_the_engine_and_the_trail(app: Flask) -> None:
    components = app.extensions["scim_bridge"]
    assert dataclasses.is_dataclass(components)
    assert components.audit.engine is components.engine


@pytest.mark.parametrize("stored", ["not json", "[1, 2]", '"text"'])
def test_a_detail_that_is_not_a_json_object_is_named_not_a_500(
    app: Flask, client: FlaskClient, stored: str
) -> None:
    """The easiest tamper there is: the row is named like any other edit, and listings still
    answer (the row as stored, so an export's own check fails on it too)."""
    with _audit(app).engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET detail = :d WHERE seq = 3"), {"d": stored})
    response = client.get("/admin/audit/verify", headers=_auth())
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["first_broken_seq"] == 3
    assert "detail" in response.json["reason"]
    listing = client.get("/admin/audit?after_seq=1", headers=_auth())
    assert listing.status_code == 200
    assert listing.json is not None
    assert [e["seq"] for e in listing.json["events"]] == [2, 3, 4, 5]
