"""A bridge with the console on, a delete breaker at 0 (every delete is held for a person) and
an operator named alice; ``held_job`` asks for a delete over SCIM and returns the held job's id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.config import DeleteBreaker
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs
from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.scim.replay import load, unique_email

ADMIN_TOKEN = "console-tests-admin-token-0123456789abcdef"


class Console:
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.operators = OperatorStore(bridge.engine)
        self.alice = self.operators.create("alice")

    def held_job(self) -> str:
        """A user created and deleted over SCIM; the breaker holds the delete."""
        login = unique_email()
        for _ in range(3):  # as an IdP does, try again after a 503 (a loaded test machine)
            created = self.bridge.post("/Users", json=load("okta-create-user.json", username=login))
            if created.status_code != 503:
                break
            time.sleep(1)
        assert created.status_code == 201, created.get_data(as_text=True)
        uid = created.get_json()["id"]
        assert self.bridge.delete(f"/Users/{uid}").status_code == 204
        return self.wait_for(uid, "held").id

    def wait_for_job(self, job_id: str, state: str, timeout_s: float = 60) -> jobs.JobRow:
        job = jobs.find(self.bridge.engine, job_id)
        assert job is not None
        return self.wait_for(job.user_id, state, timeout_s)

    def wait_for(self, user_id: str, state: str, timeout_s: float = 60) -> jobs.JobRow:
        deadline = time.monotonic() + timeout_s
        while True:
            found = jobs.listing(self.bridge.engine, user_id=user_id, limit=1)
            if found and found[0].state == state:
                return found[0]
            if time.monotonic() > deadline:
                shown = [(j.state, j.step, j.reason) for j in found]
                raise AssertionError(f"job of {user_id} not {state} in {timeout_s}s: {shown}")
            time.sleep(0.1)


def console_bridge(sandbox: Any, tmp_path: Path) -> Bridge:
    return make_bridge(
        sandbox,
        tmp_path,
        delete_breaker=DeleteBreaker(0, 3600),
        admin_token=ADMIN_TOKEN,
        worker_in_process=True,
        sync_budget_s=20.0,  # the console's tests are not about the sync budget
    )


@pytest.fixture
def console(sandbox: Any, tmp_path: Path) -> Iterator[Console]:
    made = console_bridge(sandbox, tmp_path)
    try:
        yield Console(made)
    finally:
        close_bridge(made)
