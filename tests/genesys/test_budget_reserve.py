"""A share of the rate budget that reads cannot take, kept for deprovisioning (issue 14 item 2;
DESIGN.md "reads cannot take the share kept for deprovisioning"): in-process, through the
database ring shared by replicas, and end to end over SCIM, where a deactivation still goes
through after reads have spent all they may."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scim_bridge.deprovision import jobs
from scim_bridge.genesys.budget import SharedBudget, SlidingWindowBudget, reads
from scim_bridge.genesys.errors import RateLimited
from scim_bridge.store.migrate import upgrade
from scim_bridge.store.rate_budget import SlotTable
from tests.fixtures.bridge import close_bridge, make_bridge


def _take_until_refused(acquire: Any, limit: int = 100) -> int:
    taken = 0
    while taken < limit:
        try:
            acquire(time.monotonic() + 0.01)
        except RateLimited:
            return taken
        taken += 1
    return taken


def test_reads_leave_the_reserve_in_process() -> None:
    budget = SlidingWindowBudget(10, window_s=60, reserve=0.3)
    with reads():
        assert _take_until_refused(budget.acquire) == 7
    assert _take_until_refused(budget.acquire) == 3  # deprovisioning takes the rest


def test_reads_leave_the_reserve_in_the_shared_ring(engine: sa.Engine) -> None:
    upgrade(engine)
    ring = SlotTable(engine, "client@host", 10, window_s=60)
    budget = SharedBudget(10, ring.try_take, reserve=0.3)
    with reads():
        assert _take_until_refused(budget.acquire) == 7
        with pytest.raises(RateLimited) as refused:
            budget.acquire(time.monotonic() + 0.01)
        assert refused.value.retry_after_s is not None
    assert _take_until_refused(budget.acquire) == 3


def test_a_deactivation_goes_through_after_reads_spent_their_share(
    sandbox: Any, tmp_path: Path
) -> None:
    """Budget 40 a window, 25 % kept: reads over SCIM get at most 30 slots, then 429; a PATCH
    active=false still deactivates at once from the 10 kept (measured figures in the note), and
    is answered with the job's own last answer."""
    made = make_bridge(
        sandbox,
        tmp_path,
        rate_limit_per_minute=40,
        rate_limit_window_s=60.0,
        deprovision_reserve=0.25,
        sync_budget_s=3.0,
    )
    try:
        made.get("/Users?count=1")  # the token, one read
        users = made.get("/Users?count=5&filter=active eq true").get_json()["Resources"]
        reads_served = 2
        while made.get(f"/Users/{users[0]['id']}").status_code == 200:
            reads_served += 1
        assert 28 <= reads_served <= 30
        assert made.get(f"/Users/{users[0]['id']}").status_code == 429
        response = made.patch(
            f"/Users/{users[1]['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        # The answer is the job's own (the state PATCH's: issue 15), no read after it that the
        # spent read share would refuse: 200 with the user inactive.
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["active"] is False
        assert sandbox.user(users[1]["id"])["state"] == "inactive", jobs.listing(
            made.engine, user_id=users[1]["id"]
        )
    finally:
        close_bridge(made)
