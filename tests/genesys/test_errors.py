"""What leaves the gateway when Genesys says no: the bridge's own exceptions, never the SDK's,
and nothing in them (or in their chained causes) that carries headers, bodies or secrets."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable

import pytest

from scim_bridge.genesys.errors import (
    BadRequest,
    GenesysError,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import Criterion, UserFields
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import active_users, served

READ_ONLY = ["directory:user:view", "routing:queue:view"]


def test_a_missing_permission_is_permission_denied_naming_it(
    make_gateway: MakeGateway, sandbox
) -> None:
    """5.4/5.5: 403 missing.any.permissions lists what the OAuth client lacks."""
    sandbox.add_client("reader", "reader-secret", READ_ONLY)
    reader = make_gateway(client_id="reader", client_secret="reader-secret")
    user = active_users(reader)[0]
    assert reader.search_users([Criterion(type="EXACT", fields=("email",), value=user.email)])
    with pytest.raises(PermissionDenied) as caught:
        reader.delete_user(user.id)
    error = caught.value
    assert error.status == 403
    assert error.code == "missing.any.permissions"
    assert "directory:user:delete" in error.message
    assert error.correlation_id
    assert not error.transient
    assert served(sandbox.stats(), "DELETE /api/v2/users/<user_id>", 403) == 1  # not retried
    assert sandbox.user(user.id)["state"] == "active"


def test_a_missing_permission_on_a_state_change(make_gateway: MakeGateway, sandbox) -> None:
    sandbox.add_client("reader", "reader-secret", READ_ONLY)
    reader = make_gateway(client_id="reader", client_secret="reader-secret")
    user = active_users(reader)[0]
    with pytest.raises(PermissionDenied) as caught:
        reader.set_state(user.id, "inactive")
    assert "directory:user:edit" in caught.value.message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _every_failure(
    gateway: SdkGateway, sandbox, make_gateway: MakeGateway
) -> list[Callable[[], object]]:
    user = active_users(gateway)[0]
    sandbox.add_client("nobody", "nobody-secret", [])
    nobody = make_gateway(client_id="nobody", client_secret="nobody-secret")
    offline = make_gateway(api_host=f"http://127.0.0.1:{_closed_port()}", default_deadline_s=0.3)
    wrong = make_gateway(client_secret="wrong")

    def rate_limited() -> object:
        sandbox.fail_next("/api/v2/users", status=429, retry_after=60)
        return gateway.list_users()

    def outage() -> object:
        sandbox.fail_next("/api/v2/users", status=502, count=100)
        return gateway.list_users()

    return [
        lambda: gateway.get_user("00000000-0000-0000-0000-000000000000"),
        lambda: gateway.create_user(UserFields(name="Dup", email=user.email)),
        lambda: gateway.update_user(user.id, UserFields(name="x"), version=user.version - 1),
        lambda: gateway.update_user(user.id, UserFields(manager_id="no-such-user")),
        lambda: nobody.search_users([]),
        offline.ensure_token,
        wrong.ensure_token,
        rate_limited,
        outage,
    ]


def test_no_sdk_exception_type_escapes(
    gateway: SdkGateway, sandbox, make_gateway: MakeGateway
) -> None:
    for call in _every_failure(gateway, sandbox, make_gateway):
        with pytest.raises(GenesysError) as caught:
            call()
        error = caught.value
        assert type(error).__module__ == "scim_bridge.genesys.errors"
        # The chain (raise ... from e) keeps the SDK exception as the cause, scrubbed of the
        # response headers and body its str() would print.
        printed = "".join(traceback.format_exception(error))
        for secret in ("sandbox-secret", "nobody-secret", "Bearer ", "inin-ratelimit", "Basic "):
            assert secret not in printed
        assert "HTTP response headers" not in printed
        assert "HTTP response body" not in printed


def test_the_mapping_of_statuses(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    with pytest.raises(NotFound):
        gateway.get_user("00000000-0000-0000-0000-000000000000")
    with pytest.raises(BadRequest) as bad:
        gateway.update_user(user.id, UserFields(manager_id="no-such-user"))
    assert bad.value.status == 400
    sandbox.fail_next("/api/v2/users", status=504, count=100)
    with pytest.raises(Unavailable) as unavailable:
        gateway.list_users()
    assert unavailable.value.status == 504
    sandbox.fail_next("/api/v2/users", status=429, retry_after=60)
    with pytest.raises(RateLimited) as limited:
        gateway.list_users()
    assert limited.value.retry_after_s == 60
    assert limited.value.describe()["retry_after_s"] == 60
    # Genesys's Retry-After holds the whole gateway (the limit is per token), not one call.
    before = sandbox.stats()["total"]
    with pytest.raises(RateLimited):
        gateway.get_user(user.id)
    assert sandbox.stats()["total"] == before
