"""Client-credentials login and token renewal (genesys-api.md 1.1, 1.3)."""

from __future__ import annotations

import time

import pytest

from scim_bridge.genesys.errors import AuthenticationFailed
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.sdk import SdkClients, Transport
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import Recorder, active_users, served

TOKEN = "POST /oauth/token"
GET_USER = "GET /api/v2/users/<user_id>"


@pytest.mark.parametrize(
    ("api_host", "login"),
    [
        # genesys-api.md 1.1: the literal "//api." becomes "//login.", nothing else.
        ("https://api.mypurecloud.ie", "https://login.mypurecloud.ie/oauth/token"),
        ("https://api.usw2.pure.cloud", "https://login.usw2.pure.cloud/oauth/token"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth/token"),
        ("http://localhost:8080/genesys", "http://localhost:8080/genesys/oauth/token"),
    ],
)
def test_token_endpoint_follows_the_sdk_rule(api_host: str, login: str) -> None:
    transport = Transport(connect_timeout_s=1, read_timeout_s=1)
    assert SdkClients.create(api_host, transport).login_url() == login
    transport.close()


def test_logs_in_once_and_reuses_the_token(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    for _ in range(5):
        gateway.get_user(user.id)
    stats = sandbox.stats()
    assert stats["tokens_issued"] == 1
    assert served(stats, GET_USER, 200) == 5


def test_renews_the_token_before_it_expires(make_gateway: MakeGateway, sandbox) -> None:
    """The SDK ignores expires_in (1.3); the gateway reads it and renews ahead of expiry (here at
    80% of a 1 s lifetime), so a run that outlives several tokens does not live on 401s."""
    sandbox.faults(token_ttl_s=1)
    gateway = make_gateway()
    recorder = Recorder()
    gateway.add_observer(recorder)
    user = active_users(gateway)[0]
    finish = time.monotonic() + 2.6
    while time.monotonic() < finish:
        gateway.get_user(user.id)
        time.sleep(0.05)
    stats = sandbox.stats()
    assert stats["tokens_issued"] >= 3
    # Renewals happen ahead of expiry, not because of a 401. (On a starved CPU a request may
    # still arrive after the 0.2 s margin of a 1 s token and be answered 401, then retried.)
    assert stats["by_status"].get("401", 0) < stats["tokens_issued"] - 1
    assert served(stats, GET_USER, 200) == len(recorder.statuses("/api/v2/users/{userId}")) - (
        stats["by_status"].get("401", 0)
    )


def test_logs_in_again_once_on_a_401_and_retries_the_call(gateway: SdkGateway, sandbox) -> None:
    """A token Genesys stops accepting before its expires_in (revoked, 1.3 credentials.expired)."""
    user = active_users(gateway)[0]
    assert sandbox.expire_tokens() == 1
    assert gateway.get_user(user.id).id == user.id
    stats = sandbox.stats()
    assert served(stats, GET_USER, 401) == 1
    assert served(stats, GET_USER, 200) == 1  # the retry, with the new token
    assert stats["tokens_issued"] == 2


def test_a_refused_secret_is_authentication_failed(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(client_secret="not-the-secret")
    with pytest.raises(AuthenticationFailed) as caught:
        gateway.ensure_token()
    assert "not-the-secret" not in str(caught.value)
    assert caught.value.describe()["error"] == "AuthenticationFailed"


def test_ensure_token_is_explicit_and_idempotent(gateway: SdkGateway, sandbox) -> None:
    gateway.ensure_token()
    gateway.ensure_token()
    assert sandbox.stats()["tokens_issued"] == 1
