"""The gateway's one retry policy (retry.py) against injected faults: the SDK's own silent urllib3
retries are off (genesys-api.md 1.4), every wait is inside the caller's deadline."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.errors import RateLimited, Unavailable
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.retry import RetryPolicy
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import Recorder, active_users, served

GET_USER = "GET /api/v2/users/<user_id>"
POST_GROUPS = "POST /api/v2/groups"


def test_a_5xx_burst_is_retried_to_success(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.fail_next("/api/v2/users/", status=500, count=1, method="GET")
    recorder = Recorder()
    gateway.add_observer(recorder)
    assert gateway.get_user(user.id).id == user.id
    assert served(sandbox.stats(), GET_USER, 500) == 1
    assert recorder.statuses("/api/v2/users/{userId}") == [500, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_every_5xx_is_retried_for_a_read(gateway: SdkGateway, sandbox, status: int) -> None:
    user = active_users(gateway)[0]
    sandbox.fail_next("/api/v2/users/", status=status, count=3, method="GET")
    assert gateway.get_user(user.id).id == user.id
    stats = sandbox.stats()
    assert served(stats, GET_USER, status) == 3
    assert served(stats, GET_USER, 200) == 1


def test_an_ambiguous_failure_of_a_create_group_is_not_replayed(
    gateway: SdkGateway, sandbox
) -> None:
    """POST /groups has nothing unique: a replay after a 500 could make a second group."""
    gateway.ensure_token()
    sandbox.fail_next("/api/v2/groups", status=500, count=1, method="POST")
    with pytest.raises(Unavailable) as caught:
        gateway.create_group("Bridge test group")
    assert caught.value.status == 500
    assert sandbox.stats()["by_status"] == {"200": 1, "500": 1}  # the token, then one POST


def test_a_503_with_retry_after_is_waited_out_even_for_a_create(
    gateway: SdkGateway, sandbox
) -> None:
    """503 + Retry-After means "not processed, come back then": safe for any method."""
    gateway.ensure_token()
    sandbox.fail_next("/api/v2/groups", status=503, count=1, method="POST", retry_after=1)
    recorder = Recorder()
    gateway.add_observer(recorder)
    started = time.monotonic()
    group = gateway.create_group("Bridge test group")
    assert time.monotonic() - started >= 1.0
    assert group.name == "Bridge test group"
    assert [(r.status, r.retry_after_s) for r in recorder.records] == [(503, 1.0), (200, None)]


def test_retries_stop_at_the_deadline(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.fail_next("/api/v2/users/", status=503, count=1000, method="GET")
    slow = RetryPolicy(max_attempts=100, base_delay_s=0.2, max_delay_s=0.2)
    gateway._retry = slow  # a slower policy so that the deadline, not the attempts, ends it
    started = time.monotonic()
    with pytest.raises(Unavailable):
        gateway.get_user(user.id, deadline=started + 1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.3
    assert served(sandbox.stats(), GET_USER, 503) < 100


def test_a_retry_after_past_the_deadline_raises_at_once(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.fail_next("/api/v2/users/", status=429, count=1, method="GET", retry_after=30)
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        gateway.get_user(user.id, deadline=started + 5)
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after_s == 30
    assert caught.value.transient


def test_the_sdk_does_not_retry_a_429_silently(gateway: SdkGateway, sandbox) -> None:
    """With the SDK's Retry(total=10) a 429 + Retry-After would be replayed inside urllib3 (and
    a POST replayed too), invisible to the bridge. Here each exchange is one observed call."""
    gateway.ensure_token()
    sandbox.fail_next("/api/v2/groups", status=429, count=2, method="POST", retry_after=0)
    recorder = Recorder()
    gateway.add_observer(recorder)
    gateway.create_group("Bridge test weekend")
    assert recorder.statuses("/api/v2/groups") == [429, 429, 200]
    assert sandbox.stats()["rate_limited"] == 2


def test_the_ratelimit_headers_keep_a_generous_budget_under_the_limit(
    make_gateway: MakeGateway, sandbox
) -> None:
    """The client budget allows far more than Genesys does; inin-ratelimit-count reaching
    inin-ratelimit-allowed (genesys-api.md 5.2) makes the gateway hold off until the reset."""
    sandbox.faults(rate_limit_per_minute=5, rate_limit_window_s=1.0)
    gateway = make_gateway(budget=SlidingWindowBudget(100_000))
    user = active_users(gateway)[0]
    for _ in range(12):
        gateway.get_user(user.id)
    stats = sandbox.stats()
    assert served(stats, GET_USER, 200) == 12
    assert stats["rate_limited"] == 0


def test_a_429_storm_is_waited_out(make_gateway: MakeGateway, sandbox) -> None:
    """Six threads at once against a limit of 5 a second: the requests in flight overshoot
    (the headers arrive too late to help), Genesys answers 429 + Retry-After, every call still
    ends in success."""
    sandbox.faults(rate_limit_per_minute=5, rate_limit_window_s=1.0, latency_ms=100)
    gateway = make_gateway(budget=SlidingWindowBudget(100_000), default_deadline_s=20.0)
    user = active_users(gateway)[0]
    barrier = threading.Barrier(6)
    results: list[str] = []

    def work() -> None:
        barrier.wait()
        for _ in range(2):
            results.append(gateway.get_user(user.id).id)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sandbox.stats()
    assert results == [user.id] * 12
    assert served(stats, GET_USER, 200) == 12
    assert stats["rate_limited"] >= 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_unavailable_within_the_deadline(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(api_host=f"http://127.0.0.1:{_closed_port()}")
    recorder = Recorder()
    gateway.add_observer(recorder)
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        gateway.get_user("anyone", deadline=started + 2)
    assert time.monotonic() - started < 2.5
    assert caught.value.status == 0
    assert caught.value.transient
    # The token request is where it failed, retried by the policy (connection refused: not sent).
    assert len(recorder.records) > 1
    assert {r.status for r in recorder.records} == {0}
    assert {r.endpoint for r in recorder.records} == {"/oauth/token"}


def test_a_read_timeout_is_unavailable(make_gateway: MakeGateway, sandbox) -> None:
    gateway = make_gateway(read_timeout_s=0.2)
    user = active_users(gateway)[0]
    recorder = Recorder()
    gateway.add_observer(recorder)
    sandbox.faults(latency_ms=500)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        gateway.get_user(user.id, deadline=started + 1.5)
    assert time.monotonic() - started < 2.0
    attempts = recorder.statuses("/api/v2/users/{userId}")
    assert len(attempts) > 1
    assert set(attempts) == {0}
    # The sandbox still answers the abandoned requests; wait for them, so that they are not
    # counted in the next test's stats.
    give_up = time.monotonic() + 10
    while served(sandbox.stats(), GET_USER) < len(attempts) and time.monotonic() < give_up:
        time.sleep(0.1)
