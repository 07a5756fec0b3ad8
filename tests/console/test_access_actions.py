"""The console's access-first actions (issue 10), over HTTP (Flask's test client): "Cut access
now" on a job waiting for a live conversation, and "Accept missing conversations" on a job held
for a history mismatch; each with its reason and confirmation, audited under the operator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.audit import Tag
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs
from tests.console.conftest import ADMIN_TOKEN
from tests.console.test_pages import UI, sign_in
from tests.deprovision.conftest import finish, make_gateway
from tests.fixtures.bridge import Bridge, close_bridge, make_bridge

DEACTIVATE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


@pytest.fixture
def console_bridge(sandbox: Any, tmp_path: Path) -> Iterator[Bridge]:
    """The console on, no breaker, async history jobs polled as fast as the sandbox runs them;
    the worker driven by the test."""
    made = make_bridge(sandbox, tmp_path, admin_token=ADMIN_TOKEN, history_job_poll_s=0.05)
    yield made
    close_bridge(made)


def _seeded(sandbox: Any, *, talked: bool) -> str:
    for user in make_gateway(sandbox).list_users(page_size=100, state="active").items:
        record = sandbox.user(user.id)
        if any(q["memberBy"] == "group" for q in record["queues"]):
            continue
        if (record["conversationCount"] > 0) == talked:
            return user.id
    raise AssertionError("no such seeded user")


def _act(client: Any, csrf: str, job_id: str, action: str, reason: str) -> Any:
    url = f"{UI}/jobs/{job_id}/act"
    asked = client.post(url, data={"csrf_token": csrf, "action": action, "reason": reason})
    assert asked.status_code == 200, asked.get_data(as_text=True)
    data = {"csrf_token": csrf, "action": action, "reason": reason, "confirmed": "yes"}
    return asked, client.post(url, data=data)


def test_cut_access_now_from_the_job_page(console_bridge: Bridge, sandbox: Any) -> None:
    alice = OperatorStore(console_bridge.engine).create("alice")
    uid = _seeded(sandbox, talked=False)
    sandbox.set_conversation(uid, True)
    sandbox.sign_in(uid)
    # Queued behind the call, access not cut yet: 204 (a 200 could only show the user active).
    assert console_bridge.patch(f"/Users/{uid}", json=DEACTIVATE).status_code == 204
    (job,) = jobs.listing(console_bridge.engine, user_id=uid)
    assert (job.state, job.waiting_on) == ("waiting", "active-conversation")
    client = console_bridge.app.test_client()
    csrf = sign_in(client, alice)
    page = client.get(f"{UI}/jobs/{job.id}").get_data(as_text=True)
    assert 'id="act-cut-access"' in page

    asked, done = _act(client, csrf, job.id, "cut-access", "walked out, HR-88")
    assert "Confirm: Cut access now" in asked.get_data(as_text=True)
    assert done.status_code == 303
    engine = console_bridge.app.extensions["scim_bridge"].deprovisioner
    engine.worker.run_until_idle(timeout_s=30)

    record = sandbox.user(uid)
    assert (record["state"], record["activeSessions"]) == ("active", 0)  # the call goes on
    cut = jobs.find(console_bridge.engine, job.id)
    assert cut is not None
    assert cut.forced is not None
    assert (cut.forced.by, cut.forced.reason) == ("operator:alice", "walked out, HR-88")
    shown = client.get(f"{UI}/jobs/{job.id}").get_data(as_text=True)
    assert 'id="forced"' in shown
    assert 'id="act-cut-access"' not in shown  # asked once is enough
    events = [
        e
        for e in console_bridge.audit_events()
        if e["tag"] == Tag.DEPROVISION_ACCESS_CUT_REQUESTED and e["job_id"] == job.id
    ]
    assert [(e["actor"], json.loads(e["detail"])["operator_reason"]) for e in events] == [
        ("operator:alice", "walked out, HR-88")
    ]


def _held_on_a_history_mismatch(bridge: Bridge, sandbox: Any) -> tuple[str, Any, Any]:
    """A delete whose history the sandbox purges: (user, its job, the job engine) to finish."""
    sandbox.faults(purge_history_on_delete=True)
    uid = _seeded(sandbox, talked=True)
    assert bridge.delete(f"/Users/{uid}").status_code == 204
    (job,) = jobs.listing(bridge.engine, user_id=uid)
    return uid, job, bridge.app.extensions["scim_bridge"].deprovisioner


def test_accept_missing_conversations_from_the_job_page(
    console_bridge: Bridge, sandbox: Any
) -> None:
    alice = OperatorStore(console_bridge.engine).create("alice")
    uid, job, engine = _held_on_a_history_mismatch(console_bridge, sandbox)
    held = finish(engine.worker, job.id, timeout_s=60)
    assert (held.state, held.reason) == ("held", "history-mismatch")
    missing = sorted(held.history.missing or ())
    assert missing
    client = console_bridge.app.test_client()
    csrf = sign_in(client, alice)
    page = client.get(f"{UI}/jobs/{job.id}").get_data(as_text=True)
    assert 'id="act-accept"' in page
    assert 'id="act-approve"' not in page  # a mismatch is approved only by accepting ids
    assert all(c in page for c in missing)

    asked, done = _act(client, csrf, job.id, "accept", "purged under legal hold LH-12")
    shown = asked.get_data(as_text=True)
    assert "Confirm: Accept missing conversations" in shown
    assert 'id="confirm-accept"' in shown
    assert done.status_code == 303
    finished = finish(engine.worker, job.id, timeout_s=60)

    assert finished.state == "done"
    assert sandbox.user(uid)["state"] == "deleted"
    (accepted,) = finished.history.accepted
    assert (sorted(accepted.ids), accepted.by, accepted.reason) == (
        missing,
        "operator:alice",
        "purged under legal hold LH-12",
    )
    page = client.get(f"{UI}/jobs/{job.id}").get_data(as_text=True)
    assert "Accepted as missing" in page


def test_a_history_mismatch_hold_shows_its_reason_not_only_approval(
    console_bridge: Bridge, sandbox: Any
) -> None:
    # B9: every view showed "approval", so a mismatch looked like a breaker hold.
    alice = OperatorStore(console_bridge.engine).create("alice")
    _, job, engine = _held_on_a_history_mismatch(console_bridge, sandbox)
    held = finish(engine.worker, job.id, timeout_s=60)
    assert (held.state, held.waiting_on, held.reason) == ("held", "approval", "history-mismatch")
    client = console_bridge.app.test_client()
    sign_in(client, alice)
    for url in (f"{UI}/", f"{UI}/jobs?state=held", f"{UI}/jobs/{job.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "approval: history-mismatch" in page, url


def test_a_superseded_job_shows_its_reason_and_waits_on_nothing(
    console_bridge: Bridge, sandbox: Any
) -> None:
    # Okta trial bug 6: a deactivate waiting on a live call, then the IdP reactivates the user.
    alice = OperatorStore(console_bridge.engine).create("alice")
    uid = _seeded(sandbox, talked=False)
    sandbox.set_conversation(uid, True)
    assert console_bridge.patch(f"/Users/{uid}", json=DEACTIVATE).status_code == 204
    (job,) = jobs.listing(console_bridge.engine, user_id=uid)
    assert (job.state, job.waiting_on) == ("waiting", "active-conversation")
    reactivate = {**DEACTIVATE, "Operations": [{"op": "replace", "value": {"active": True}}]}
    assert console_bridge.patch(f"/Users/{uid}", json=reactivate).status_code == 200

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = console_bridge.flask.get(f"/admin/jobs?user={uid}", headers=auth).get_json()["jobs"]
    (cancelled,) = [j for j in listed if j["id"] == job.id]
    assert (cancelled["state"], cancelled["reason"]) == ("cancelled", "superseded")
    assert cancelled["waiting_on"] is None
    client = console_bridge.app.test_client()
    sign_in(client, alice)
    listing = client.get(f"{UI}/jobs?state=cancelled").get_data(as_text=True)
    assert "superseded" in listing
    assert "active-conversation" not in listing
    page = client.get(f"{UI}/jobs/{job.id}").get_data(as_text=True)
    assert "<dt>Waits on / reason</dt><dd>superseded</dd>" in page
