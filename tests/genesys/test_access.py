"""Cutting access through the gateway: sessions (``DELETE /api/v2/tokens/{userId}``, PYDOCS
``TokensApi.delete_token``, permission ``oauth:token:delete``) and the undelete that comes back
active whatever was asked (genesys-api.md 2.4, the sandbox's stricter reading)."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from scim_bridge.genesys.errors import PermissionDenied
from scim_bridge.genesys.gateway import SdkGateway
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import Recorder, active_users


def _me(sandbox: Any, token: str) -> int:
    http = urllib3.PoolManager(retries=False, timeout=5.0)
    reply = http.request(
        "GET", sandbox.url + "/api/v2/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    return reply.status


def test_revoke_sessions_ends_every_session_of_the_user(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    tokens = [sandbox.sign_in(user.id), sandbox.sign_in(user.id)]
    assert all(_me(sandbox, t) == 200 for t in tokens)
    assert gateway.revoke_sessions(user.id) is True
    assert [_me(sandbox, t) for t in tokens] == [401, 401]
    assert sandbox.user(user.id)["activeSessions"] == 0
    assert gateway.revoke_sessions(user.id) is True  # none left: still success


def test_revoke_sessions_of_an_unknown_user_is_false(gateway: SdkGateway) -> None:
    assert gateway.revoke_sessions("00000000-0000-4000-8000-000000000000") is False


def test_revoke_sessions_needs_oauth_token_delete(make_gateway: MakeGateway, sandbox) -> None:
    sandbox.add_client("editor", "s", ["directory:user:edit"])
    limited = make_gateway(client_id="editor", client_secret="s")
    with pytest.raises(PermissionDenied) as raised:
        limited.revoke_sessions(active_users(limited)[0].id)
    assert raised.value.status == 403


def test_restore_user_answers_the_state_the_undelete_left_2_4(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    gateway.set_state(user.id, "inactive")
    gateway.delete_user(user.id)
    restored = gateway.restore_user(user.id)
    assert restored.state == "active"  # an undelete comes back active (stricter reading)
    assert sandbox.user(user.id)["state"] == "active"
    assert gateway.restore_user(user.id).state == "active"  # not deleted: answered as read


def test_set_state_inactive_on_a_deleted_user_restores_then_deactivates_2_4(
    gateway: SdkGateway, sandbox
) -> None:
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    recorder = Recorder()
    gateway.add_observer(recorder)
    result = gateway.set_state(user.id, "inactive")
    assert result.state == "inactive"
    patches = [r.status for r in recorder.records if r.method == "PATCH"]
    assert patches == [200, 200]  # the restore, then the deactivation
    states = [state for state, _ in sandbox.state_history(user.id)]
    assert states == ["active", "deleted", "active", "inactive"]
