"""Rate limits, headers, ErrorBody and injected faults: genesys-api.md 5.1-5.4."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fixtures.sandbox import Sandbox
from tests.sandbox.conftest import Api

ERROR_KEYS = {"message", "code", "status", "contextId", "messageWithParams", "messageParams",
              "details", "errors"}  # fmt: skip
RATE_HEADERS = ("inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset")


def _assert_headers(headers: object) -> str:
    for name in (*RATE_HEADERS, "inin-correlation-id"):
        assert name in headers  # type: ignore[operator]
    correlation = headers["inin-correlation-id"]  # type: ignore[index]
    uuid.UUID(correlation)
    return str(correlation)


def test_every_response_has_rate_and_correlation_headers_5_2(api: Api) -> None:
    user = api.a_user()
    replies = [
        api.get(f"/api/v2/users/{user['id']}"),
        api.get("/api/v2/users/missing"),
        api.get("/api/v2/users", token=None),
        api.login(api.sandbox.client_id, "bad"),
        api.login(api.sandbox.client_id, api.sandbox.client_secret),
        api.delete(f"/api/v2/routing/queues/x/members/{user['id']}"),
    ]
    ids = {_assert_headers(r.headers) for r in replies}
    assert len(ids) == len(replies)  # a fresh id per response


def test_error_body_shape_and_context_id_5_3(api: Api) -> None:
    reply = api.get("/api/v2/users/missing")
    assert set(reply.body) >= ERROR_KEYS
    assert reply.body["status"] == 404
    assert reply.body["contextId"] == reply.headers["inin-correlation-id"]
    assert reply.headers["Content-Type"] == "application/json"


def test_unknown_route_is_404_and_wrong_method_405_5_4(api: Api) -> None:
    unknown = api.get("/api/v2/nothing/here")
    assert unknown.status == 404
    assert unknown.code == "not.found"
    assert set(unknown.body) >= ERROR_KEYS
    wrong = api.put("/api/v2/users/search", {})
    assert wrong.status == 405
    assert set(wrong.body) >= ERROR_KEYS


def test_rate_limit_429_with_retry_after_5_1(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(rate_limit_per_minute=3, rate_limit_window_s=1.0)
    api.relogin()
    counts = [int(api.get("/api/v2/users").headers["inin-ratelimit-count"]) for _ in range(3)]
    assert counts == [1, 2, 3]
    limited = api.get("/api/v2/users")
    assert limited.status == 429
    assert limited.code == "too.many.requests.retry.after"
    assert set(limited.body) >= ERROR_KEYS
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["inin-ratelimit-allowed"] == "3"
    time.sleep(int(limited.headers["Retry-After"]))
    assert api.get("/api/v2/users").status == 200
    assert sandbox.stats()["rate_limited"] == 1


def test_rate_budget_is_per_token_5_1(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(rate_limit_per_minute=2)
    api.relogin()
    first = api.token
    assert [api.get("/api/v2/users").status for _ in range(3)] == [200, 200, 429]
    api.relogin()
    assert api.token != first
    assert api.get("/api/v2/users").status == 200


def test_default_budget_is_300_per_minute_5_1(sandbox: Sandbox) -> None:
    sandbox.reset(users=5)
    faults = sandbox.faults()
    sandbox.faults(rate_limit_per_minute=300)
    assert faults["rate_limit_window_s"] == 60.0


def test_fail_next_is_deterministic(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    sandbox.fail_next("/api/v2/users", method="DELETE", status=503, count=2)
    assert api.get(f"/api/v2/users/{user['id']}").status == 200  # other methods pass
    first = api.delete(f"/api/v2/users/{user['id']}")
    assert first.status == 503
    assert first.code == "service.unavailable"
    assert "Retry-After" not in first.headers
    assert api.delete(f"/api/v2/users/{user['id']}").status == 503
    assert api.delete(f"/api/v2/users/{user['id']}").status == 200
    assert sandbox.faults()["fail_next"] == []


def test_fail_next_retry_after_header(api: Api, sandbox: Sandbox) -> None:
    sandbox.fail_next("/api/v2/users", status=429, retry_after=2)
    reply = api.get("/api/v2/users")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "2"


def test_fail_next_can_hit_the_token_endpoint(api: Api, sandbox: Sandbox) -> None:
    sandbox.fail_next("/oauth/token", status=502)
    assert api.login(sandbox.client_id, sandbox.client_secret).status == 502
    assert api.login(sandbox.client_id, sandbox.client_secret).status == 200


def test_error_rate_is_seeded(api: Api, sandbox: Sandbox) -> None:
    def run() -> list[int]:
        sandbox.reset(users=5, seed=3)
        sandbox.faults(error_rate=0.5)
        api.relogin()
        return [api.get("/api/v2/users").status for _ in range(20)]

    first = run()
    assert set(first) == {200, 503}
    assert run() == first


def test_latency_fault(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(latency_ms=150)
    started = time.monotonic()
    api.get("/api/v2/users")
    assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize(
    "body",
    [{"nonsense": 1}, {"error_rate": 2}, {"latency_ms": -1}, {"fail_next": [{"status": 500}]},
     {"purge_history_on_delete": "yes"}],
)  # fmt: skip
def test_bad_fault_is_400(sandbox: Sandbox, body: dict[str, object]) -> None:
    from scim_bridge.sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError) as caught:
        sandbox.faults(**body)
    assert caught.value.status == 400


def test_reset_clears_faults_and_stats(api: Api, sandbox: Sandbox) -> None:
    sandbox.faults(latency_ms=5, search_lag_s=3, purge_history_on_delete=True)
    api.get("/api/v2/users")
    sandbox.reset(users=7, seed=9)
    faults = sandbox.faults()
    assert faults["latency_ms"] == 0
    assert faults["search_lag_s"] == 0
    assert faults["purge_history_on_delete"] is False
    assert sandbox.stats()["total"] == 0
    assert sandbox.info()["users"] == 7


def test_stats_by_endpoint_template_and_status(api: Api, sandbox: Sandbox) -> None:
    user = api.a_user()
    api.get(f"/api/v2/users/{user['id']}")
    api.get("/api/v2/users/missing")
    stats = sandbox.stats()
    assert stats["endpoints"]["GET /api/v2/users/<user_id>"] == {"200": 1, "404": 1}
    assert stats["endpoints"]["POST /oauth/token"] == {"200": 1}
    assert stats["tokens_issued"] == 1
    assert not any(key.split()[1].startswith("/sandbox") for key in stats["endpoints"])


def test_control_user_record(api: Api, sandbox: Sandbox) -> None:
    deleted = api.a_user("deleted")
    record = sandbox.user(deleted["id"])
    assert record["state"] == "deleted"
    assert {"queues", "groups", "activeConversation", "conversationCount"} <= set(record)
    from scim_bridge.sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError):
        sandbox.user("missing")


def test_a_rejected_fault_change_applies_nothing(sandbox: Sandbox) -> None:
    from scim_bridge.sandbox.control import SandboxControlError

    with pytest.raises(SandboxControlError):
        sandbox.faults(latency_ms=50, error_rate=7)
    assert sandbox.faults()["latency_ms"] == 0
