"""OAuth client credentials and token lifetime: genesys-api.md 1.1 and 1.3."""

from __future__ import annotations

import time

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api


def test_token_on_the_api_host_1_1(api: Api) -> None:
    reply = api.login(api.sandbox.client_id, api.sandbox.client_secret)
    assert reply.status == 200
    assert reply.body["token_type"] == "bearer"
    assert reply.body["expires_in"] == 86400
    assert isinstance(reply.body["access_token"], str)
    assert api.get("/api/v2/users", token=reply.body["access_token"]).status == 200


def test_bad_credentials_are_invalid_client_1_1(api: Api) -> None:
    reply = api.login(api.sandbox.client_id, "wrong")
    assert reply.status == 401
    assert reply.body == {"error": "invalid_client", "description": "authentication failed"}
    assert api.login("nobody", "x").status == 401


def test_other_grant_type_is_refused_1_1(api: Api) -> None:
    reply = api.login(api.sandbox.client_id, api.sandbox.client_secret, grant_type="password")
    assert reply.status == 400
    assert reply.body["error"] == "unsupported_grant_type"


def test_missing_token_is_authentication_required_1_3(api: Api) -> None:
    reply = api.get("/api/v2/users", token=None)
    assert reply.status == 401
    assert reply.code == "authentication.required"


def test_unknown_token_is_bad_credentials_1_3(api: Api) -> None:
    reply = api.get("/api/v2/users", token="not-a-token")
    assert reply.status == 401
    assert reply.code == "bad.credentials"


def test_token_expires_after_ttl_credentials_expired_1_3(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(token_ttl_s=1)
    login = api.login(sandbox.client_id, sandbox.client_secret)
    assert login.body["expires_in"] == 1
    token = login.body["access_token"]
    assert api.get("/api/v2/users", token=token).status == 200
    time.sleep(1.05)
    reply = api.get("/api/v2/users", token=token)
    assert reply.status == 401
    assert reply.code == "credentials.expired"
    fresh = api.login(sandbox.client_id, sandbox.client_secret).body["access_token"]
    assert api.get("/api/v2/users", token=fresh).status == 200


def test_expire_tokens_control_forces_expiry_1_3(api: Api, sandbox: Sandbox) -> None:
    assert sandbox.expire_tokens() >= 1
    assert api.get("/api/v2/users").code == "credentials.expired"


def test_missing_permission_is_403_missing_any_permissions_5_5(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("reader", "reader-secret", ["directory:user:view"])
    token = api.login("reader", "reader-secret").body["access_token"]
    user = api.a_user()
    assert api.get(f"/api/v2/users/{user['id']}", token=token).status == 200  # no permission needed
    reply = api.delete(f"/api/v2/users/{user['id']}", token=token)
    assert reply.status == 403
    assert reply.code == "missing.any.permissions"
    for needed in ("admin", "directory:user:delete", "directory:organization:admin"):
        assert needed in reply.body["messageWithParams"]
        assert needed in reply.body["message"]
    assert sandbox.user(user["id"])["state"] == "active"


def test_client_with_the_permission_may_act_5_5(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("deleter", "s", ["directory:user:delete"])
    token = api.login("deleter", "s").body["access_token"]
    user = api.a_user()
    assert api.delete(f"/api/v2/users/{user['id']}", token=token).status == 200


def test_reset_forgets_extra_clients_and_tokens(api: Api, sandbox: Sandbox) -> None:
    sandbox.add_client("temp", "s", ["*"])
    token = api.login("temp", "s").body["access_token"]
    sandbox.reset(users=5, seed=2)
    assert api.login("temp", "s").status == 401
    assert api.get("/api/v2/users", token=token).code == "bad.credentials"
