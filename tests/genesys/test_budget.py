"""The client-side rate budget (budget.py): the bridge stays under Genesys's limit rather than
living on 429s (genesys-api.md 5.1). Assertions are on the sandbox's counts, not on timings."""

from __future__ import annotations

import threading
import time

import pytest

from scim_bridge.genesys.budget import SlidingWindowBudget
from scim_bridge.genesys.errors import RateLimited
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import active_users, served

GET_USER = "GET /api/v2/users/<user_id>"


def test_a_budget_grants_its_slots_then_refuses_within_the_deadline() -> None:
    budget = SlidingWindowBudget(3, window_s=60)
    now = time.monotonic()
    assert [budget.acquire(now + 1) for _ in range(3)] == pytest.approx([0, 0, 0], abs=0.05)
    with pytest.raises(RateLimited) as caught:
        budget.acquire(time.monotonic() + 1)
    assert caught.value.retry_after_s == pytest.approx(61, abs=1)


def test_a_budget_waits_for_the_window_to_slide() -> None:
    budget = SlidingWindowBudget(2, window_s=0.3, margin_s=0)
    deadline = time.monotonic() + 5
    budget.acquire(deadline)
    budget.acquire(deadline)
    waited = budget.acquire(deadline)
    assert 0.2 < waited < 1.0


def test_a_budget_is_shared_safely_by_threads() -> None:
    budget = SlidingWindowBudget(50, window_s=60)
    granted: list[float] = []
    refused: list[RateLimited] = []

    def take() -> None:
        for _ in range(20):
            try:
                granted.append(budget.acquire(time.monotonic() + 0.01))
            except RateLimited as e:
                refused.append(e)

    threads = [threading.Thread(target=take) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50
    assert len(refused) == 50


def test_the_budget_keeps_the_gateway_under_the_sandbox_limit(
    make_gateway: MakeGateway, sandbox
) -> None:
    """Budget and limit both 10 per window: more calls than that, from several threads, and the
    sandbox never has to refuse one."""
    sandbox.faults(rate_limit_per_minute=10, rate_limit_window_s=1.0)
    gateway = make_gateway(
        budget=SlidingWindowBudget(10, window_s=1.0, margin_s=0.2), default_deadline_s=20.0
    )
    user = active_users(gateway)[0]  # one request of the budget
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(6):
                gateway.get_user(user.id)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sandbox.stats()
    assert errors == []
    assert served(stats, GET_USER, 200) == 24
    assert stats["rate_limited"] == 0


def test_a_spent_budget_raises_rate_limited_before_sending(
    make_gateway: MakeGateway, sandbox
) -> None:
    gateway = make_gateway(budget=SlidingWindowBudget(3, window_s=60))
    user = active_users(gateway)[0]
    gateway.get_user(user.id)
    gateway.get_user(user.id)
    with pytest.raises(RateLimited) as caught:
        gateway.get_user(user.id, deadline=time.monotonic() + 1)
    assert caught.value.retry_after_s is not None
    stats = sandbox.stats()
    assert served(stats, GET_USER) == 2  # the refused call never reached Genesys
    assert stats["rate_limited"] == 0
