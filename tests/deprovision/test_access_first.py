"""Access first, always (issue 10): what an IdP is told is true under every policy and fault.

Driven as an IdP and an operator would: SCIM requests and the admin API through the bridge, the
bridge calling the sandbox over HTTP. Each test asserts what the sandbox holds (the user's
``stateHistory``, ``activeSessions``, queues) and what the audit trail says.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.audit import Tag
from scim_bridge.config import DeleteBreaker
from scim_bridge.console.operators import OperatorStore
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.model import Rules
from scim_bridge.deprovision.wiring import JobEngine
from tests.deprovision.conftest import FAST_RULES, Engine, finish, make_gateway
from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.fixtures.sandbox import Sandbox

OKTA = Requester(actor="okta", idp="okta")
ADMIN = "access-first-admin-" + "x" * 32
REACTIVATE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": True}}],
}
DEACTIVATE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


def _engine(bridge: Bridge, rules: Rules = FAST_RULES) -> JobEngine:
    """The bridge's job engine, with the short waits of the engine's own tests (the sandbox
    answers in milliseconds)."""
    engine: JobEngine = bridge.app.extensions["scim_bridge"].deprovisioner
    engine.service.runner.rules = rules
    return engine


@pytest.fixture
def guarded(sandbox: Sandbox, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge with an admin token and the delete breaker at one delete an hour."""
    made = make_bridge(
        sandbox, tmp_path, admin_token=ADMIN, delete_breaker=DeleteBreaker(1, 3600.0)
    )
    yield made
    close_bridge(made)


def _admin(bridge: Bridge, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return bridge.request(method, path, json=body, auth=f"Bearer {ADMIN}")


def _active_ids(sandbox: Sandbox, n: int, **where: Any) -> list[str]:
    gateway = make_gateway(sandbox)
    found = []
    for user in gateway.list_users(page_size=100, state="active").items:
        record = sandbox.user(user.id)
        if any(q["memberBy"] == "group" for q in record["queues"]):
            continue  # the drain of a group's membership has tests of its own
        if all(where_test(record) for where_test in where.values()):
            found.append(user.id)
    return found[:n]


def _me_status(sandbox: Sandbox, token: str) -> int:
    """``GET /api/v2/users/me`` with a user's session token: 200 while the session lives."""
    request = urllib.request.Request(
        f"{sandbox.url}/api/v2/users/me", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _states(sandbox: Sandbox, uid: str) -> list[str]:
    return [state for state, _ in sandbox.state_history(uid)]


def _never_active_after_first_deactivation(states: list[str]) -> None:
    """Once inactive, the user is never active again except inside a restore's undelete (an
    ``active`` right after ``deleted``, deactivated at once)."""
    first = states.index("inactive")
    for i in range(first + 1, len(states)):
        if states[i] == "active":
            assert states[i - 1] == "deleted", states
            assert states[i + 1 : i + 2] == ["inactive"], states


def _tags(bridge: Bridge, job_id: str) -> list[str]:
    return [e["tag"] for e in bridge.audit_events() if e["job_id"] == job_id]


def _job(bridge: Bridge, job_id: str) -> dict[str, Any]:
    shown = _admin(bridge, "GET", f"/admin/jobs/{job_id}")
    assert shown.status_code == 200
    body: dict[str, Any] = shown.get_json()
    return body


def _job_of(bridge: Bridge, uid: str, action: str) -> jobs.JobRow:
    found = [j for j in jobs.listing(bridge.engine, user_id=uid) if j.action == action]
    assert found, (uid, action)
    return found[0]


# --- 1. the breaker holds the delete, after access is cut ---------------------------------------


def test_a_delete_held_by_the_breaker_leaves_the_user_inactive_and_deactivatable(
    guarded: Bridge, sandbox: Sandbox
) -> None:
    engine = _engine(guarded)
    first, held_uid = _active_ids(sandbox, 2)
    session = sandbox.sign_in(held_uid)
    assert guarded.delete(f"/Users/{first}").status_code == 204
    engine.worker.run_until_idle(timeout_s=60)
    assert sandbox.user(first)["state"] == "deleted"

    # The second delete trips the breaker: the IdP hears 204, and it is true: access is cut.
    assert guarded.delete(f"/Users/{held_uid}").status_code == 204
    job = _job_of(guarded, held_uid, "delete")
    assert (job.state, job.step, job.reason) == ("held", "breaker", "breaker")
    record = sandbox.user(held_uid)
    assert (record["state"], record["activeSessions"]) == ("inactive", 0)
    assert _me_status(sandbox, session) == 401  # the session signed in before is over
    # Gone as far as SCIM is concerned (a delete is under way), yet still deactivatable.
    assert guarded.get(f"/Users/{held_uid}").status_code == 404
    again = guarded.patch(f"/Users/{held_uid}", json=DEACTIVATE)
    assert again.status_code == 204, again.get_data(as_text=True)
    tags = _tags(guarded, job.id)
    assert Tag.DEPROVISION_USER_DEACTIVATED in tags
    assert Tag.DEPROVISION_SESSIONS_REVOKED in tags
    assert tags.index(Tag.DEPROVISION_USER_DEACTIVATED) < tags.index(
        Tag.DEPROVISION_BREAKER_TRIPPED
    )
    assert Tag.DEPROVISION_JOB_JOINED in tags  # the PATCH joined the held delete

    approved = _admin(guarded, "POST", f"/admin/jobs/{job.id}/approve", {"by": "alice"})
    assert approved.status_code == 200, approved.get_data(as_text=True)
    engine.worker.run_until_idle(timeout_s=60)
    assert sandbox.user(held_uid)["state"] == "deleted"
    states = _states(sandbox, held_uid)
    assert states == ["active", "inactive", "deleted"]


# --- 2. a drain Genesys refuses never blocks the deactivation -----------------------------------


def _group_member(sandbox: Sandbox) -> tuple[str, list[str], str]:
    """(user, the queues it is in through a group, the group): a ``memberBy=group`` member of
    the group the seed routes (the largest; routed here again, in case the seed did not)."""
    gateway = make_gateway(sandbox)
    groups = gateway.list_groups(page_size=100).items
    group = max(groups, key=lambda g: (len(gateway.group_member_ids(g.id)), g.name))
    queue_id = sandbox.user(_active_ids(sandbox, 1, q=lambda r: r["queues"])[0])["queues"][0]["id"]
    members = sandbox.route_group(queue_id, group.id)
    active = [u for u in members if sandbox.user(u)["state"] == "active"]
    assert active, "no active member of the group is a queue member through it"
    uid = active[0]
    grouped = [q["id"] for q in sandbox.user(uid)["queues"] if q["memberBy"] == "group"]
    return uid, sorted(grouped), group.id


def test_a_membership_genesys_will_not_remove_is_recorded_retried_and_never_blocks_access(
    guarded: Bridge, sandbox: Sandbox
) -> None:
    engine = _engine(guarded)
    uid, grouped, group_id = _group_member(sandbox)
    own = [q["id"] for q in sandbox.user(uid)["queues"] if q["id"] not in grouped]

    r = guarded.patch(f"/Users/{uid}", json=DEACTIVATE)

    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["active"] is False
    assert sandbox.user(uid)["state"] == "inactive"
    job = _job_of(guarded, uid, "deactivate")
    assert (job.state, job.step, job.waiting_on) == ("waiting", "drain", "queue-drain")
    # Everything else was drained; the group's membership is on the job for operators.
    assert sorted(q["id"] for q in sandbox.user(uid)["queues"]) == grouped
    shown = _job(guarded, job.id)
    assert sorted(q["id"] for q in shown["unremoved_queues"]) == grouped
    assert shown["unremoved_queues"][0]["error"]["status"] == 400
    assert sorted(q.id for q in job.queues.removed) == sorted(own)
    assert Tag.DEPROVISION_QUEUE_REMOVE_FAILED in _tags(guarded, job.id)

    # The IdP (or a person) takes the user out of the group: the next retry finds it gone.
    make_gateway(sandbox).remove_group_members(group_id, [uid])
    done = finish(engine.worker, job.id)
    assert (done.state, done.queues.unremoved) == ("done", ())
    assert sandbox.user(uid)["queues"] == []
    resolved = [
        e
        for e in guarded.audit_events()
        if e["job_id"] == job.id and "unremoved_resolved" in (e["detail"] or "")
    ]
    assert resolved
    # The bridge never removed it (Genesys refused; the group change ended it): it is not
    # recorded as removed, so a reactivation does not turn it into a direct membership.
    assert sorted(q.id for q in done.queues.removed) == sorted(own)

    back = guarded.patch(f"/Users/{uid}", json=REACTIVATE)
    assert back.status_code == 200, back.get_data(as_text=True)
    finish(engine.worker, _job_of(guarded, uid, "reactivate").id)
    after = sandbox.user(uid)["queues"]
    assert sorted(q["id"] for q in after) == sorted(own)
    assert all(q["memberBy"] == "user" for q in after)


def test_a_membership_that_stays_is_given_up_on_after_the_retries_and_the_delete_goes_on(
    guarded: Bridge, sandbox: Sandbox
) -> None:
    engine = _engine(guarded)
    uid, grouped, _ = _group_member(sandbox)

    assert guarded.delete(f"/Users/{uid}").status_code == 204
    assert sandbox.user(uid)["state"] == "inactive"
    finish(engine.worker, _job_of(guarded, uid, "delete").id)

    job = _job_of(guarded, uid, "delete")
    assert job.state == "done"
    assert sorted(u.queue.id for u in job.queues.unremoved) == grouped
    assert sandbox.user(uid)["state"] == "deleted"
    tags = _tags(guarded, job.id)
    assert tags.count(Tag.DEPROVISION_QUEUE_REMOVE_FAILED) == 1
    assert tags.count(Tag.DEPROVISION_QUEUE_DRAIN_INCOMPLETE) == 1
    assert _states(sandbox, uid) == ["active", "inactive", "deleted"]


# --- a delete that upgrades a deactivation while its step runs -----------------------------------


def test_a_delete_arriving_while_the_deactivations_last_step_runs_is_carried_out(
    guarded: Bridge, sandbox: Sandbox
) -> None:
    """Entra's soft delete, then its hard delete while the deactivation's drain is under way
    (in another thread or process: here the drain's own Genesys call). The upgrade is stored
    while the holder runs its last step; the holder's record must go on as a delete, not end
    the job as the deactivation it was decided for."""
    engine = _engine(guarded)
    uid = _active_ids(sandbox, 1, q=lambda r: r["queues"])[0]
    gateway = engine.service.runner.gateway
    answers: list[int] = []
    remove = gateway.remove_queue_member

    def remove_then_delete(queue_id: str, user_id: str, **kw: Any) -> None:
        remove(queue_id, user_id, **kw)
        if not answers:
            answers.append(guarded.delete(f"/Users/{uid}").status_code)

    gateway.remove_queue_member = remove_then_delete  # type: ignore[method-assign]
    patched = guarded.patch(f"/Users/{uid}", json=DEACTIVATE)
    assert answers == [204]
    # Answered after the delete was accepted, the PATCH says what a GET would: being deleted.
    assert patched.status_code == 404, patched.get_data(as_text=True)
    assert "being deleted" in patched.get_json()["detail"]

    job = _job_of(guarded, uid, "delete")
    done = finish(engine.worker, job.id)
    assert (done.action, done.state) == ("delete", "done")
    assert done.history.after is not None
    assert sandbox.user(uid)["state"] == "deleted"
    assert guarded.get(f"/Users/{uid}").status_code == 404
    assert _admin(guarded, "GET", f"/admin/tombstones/{uid}").status_code == 200


# --- 3. sessions end with access ------------------------------------------------------------------


def test_every_deactivation_ends_the_users_sessions(guarded: Bridge, sandbox: Sandbox) -> None:
    _engine(guarded)
    (uid,) = _active_ids(sandbox, 1)
    token = sandbox.sign_in(uid)
    sandbox.sign_in(uid)
    assert sandbox.user(uid)["activeSessions"] == 2
    assert _me_status(sandbox, token) == 200

    assert guarded.patch(f"/Users/{uid}", json=DEACTIVATE).status_code == 200

    record = sandbox.user(uid)
    assert (record["state"], record["activeSessions"]) == ("inactive", 0)
    assert _me_status(sandbox, token) == 401
    job = _job_of(guarded, uid, "deactivate")
    assert job.sessions_revoked_at is not None
    revoked = [e for e in guarded.audit_events() if e["tag"] == Tag.DEPROVISION_SESSIONS_REVOKED]
    assert [e["job_id"] for e in revoked] == [job.id]


# --- 4. and 5. a history mismatch: restore inactive; approval accepts named ids -----------------


@pytest.fixture
def admin_bridge(sandbox: Sandbox, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge with an admin token; async history jobs polled as fast as the sandbox runs them."""
    made = make_bridge(sandbox, tmp_path, admin_token=ADMIN, history_job_poll_s=0.05)
    OperatorStore(made.engine).create("alice")  # accepting missing conversations names one
    yield made
    close_bridge(made)


def test_accepting_missing_conversations_needs_a_live_operator_not_the_token_alone(
    admin_bridge: Bridge,
) -> None:
    """trial-sec: the shared admin token accepted lost history with no person named."""
    for by in (None, "", "nobody"):
        body = {"accept": ["c-1"], "reason": "purged by legal hold", "by": by}
        refused = _admin(admin_bridge, "POST", "/admin/jobs/any/approve", body)
        assert refused.status_code == 400, refused.get_data(as_text=True)
        assert "live operator" in refused.get_json()["error"]
    # A named, live operator gets past that check (to the job's own: there is none here).
    body = {"accept": ["c-1"], "reason": "purged by legal hold", "by": "alice"}
    assert _admin(admin_bridge, "POST", "/admin/jobs/any/approve", body).status_code == 404


def _event(bridge: Bridge, job_id: str, tag: str) -> list[dict[str, Any]]:
    return [
        {**e, "detail": json.loads(e["detail"] or "{}")}
        for e in bridge.audit_events()
        if e["job_id"] == job_id and e["tag"] == tag
    ]


def test_a_history_mismatch_restores_the_user_inactive_and_keeps_the_original_evidence(
    admin_bridge: Bridge, sandbox: Sandbox
) -> None:
    engine = _engine(admin_bridge)
    sandbox.faults(purge_history_on_delete=True)
    (uid,) = _active_ids(sandbox, 1, talked=lambda r: r["conversationCount"] > 0)

    assert admin_bridge.delete(f"/Users/{uid}").status_code == 204
    job_id = _job_of(admin_bridge, uid, "delete").id
    held = finish(engine.worker, job_id, timeout_s=60)

    assert (held.state, held.step, held.reason) == ("held", "verify_before", "history-mismatch")
    record = sandbox.user(uid)
    assert (record["state"], record["activeSessions"]) == ("inactive", 0)
    states = _states(sandbox, uid)
    # The undelete brought the user back active (2.4); the same step deactivated at once.
    assert states == ["active", "inactive", "deleted", "active", "inactive"]
    _never_active_after_first_deactivation(states)
    (restored,) = _event(admin_bridge, job_id, Tag.DEPROVISION_USER_RESTORED)
    assert restored["detail"]["active_s"] >= 0
    assert [c["method"] for c in restored["detail"]["calls"]].count("PATCH") == 2
    (read_back,) = [
        e
        for e in _event(admin_bridge, job_id, Tag.DEPROVISION_JOB_HELD)
        if e["detail"].get("state_read_back")
    ]
    assert read_back["detail"]["state_read_back"] == "inactive"
    shown = _job(admin_bridge, job_id)
    missing = shown["missing_conversations"]
    assert missing
    before = shown["evidence"]["before"]

    # A retry checks again against the original evidence: still missing, held again, unchanged.
    assert _admin(admin_bridge, "POST", f"/admin/jobs/{job_id}/retry").status_code == 200
    again = finish(engine.worker, job_id, timeout_s=60)
    assert (again.state, again.reason) == ("held", "history-mismatch")
    assert _job(admin_bridge, job_id)["evidence"]["before"] == before
    assert _states(sandbox, uid) == states  # nothing deleted again

    # Approving is accepting every missing conversation by id, with a reason.
    refused = _admin(admin_bridge, "POST", f"/admin/jobs/{job_id}/approve", {"by": "alice"})
    assert refused.status_code == 409
    partial = {"by": "alice", "accept": missing[:-1], "reason": "purged by legal hold"}
    if missing[:-1]:
        assert (
            _admin(admin_bridge, "POST", f"/admin/jobs/{job_id}/approve", partial).status_code
            == 409
        )
    body = {"by": "alice", "accept": missing, "reason": "purged by legal hold LH-12"}
    approved = _admin(admin_bridge, "POST", f"/admin/jobs/{job_id}/approve", body)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    done = finish(engine.worker, job_id, timeout_s=60)

    assert done.state == "done"
    assert sandbox.user(uid)["state"] == "deleted"
    final = _job(admin_bridge, job_id)
    assert final["evidence"]["before"] == before  # never re-baselined
    (accepted,) = final["accepted_missing"]
    assert (accepted["ids"], accepted["by"], accepted["reason"]) == (
        sorted(missing),
        "admin:alice",
        "purged by legal hold LH-12",
    )
    (event,) = _event(admin_bridge, job_id, Tag.DEPROVISION_HISTORY_ACCEPTED)
    assert (event["actor"], event["detail"]["accepted"]) == ("admin:alice", sorted(missing))
    assert event["detail"]["accepted_reason"] == "purged by legal hold LH-12"
    assert jobs.tombstone(admin_bridge.engine, uid) is not None
    final_states = _states(sandbox, uid)
    assert final_states == [*states, "deleted"]
    _never_active_after_first_deactivation(final_states)


# --- 3. cut access now, during a live conversation ----------------------------------------------


def test_cut_access_during_a_live_conversation_ends_sessions_at_once_then_deactivates(
    admin_bridge: Bridge, sandbox: Sandbox
) -> None:
    # The wait is long: only the operator can cut it short here.
    engine = _engine(admin_bridge, dataclasses.replace(FAST_RULES, conversation_wait_max_s=3600))
    (uid,) = _active_ids(sandbox, 1)
    sandbox.set_conversation(uid, True)
    token = sandbox.sign_in(uid)

    r = admin_bridge.patch(f"/Users/{uid}", json=DEACTIVATE)
    assert r.status_code == 204  # durably queued behind a live conversation (bounded)
    job = _job_of(admin_bridge, uid, "deactivate")
    assert (job.state, job.step, job.waiting_on) == ("waiting", "await_idle", "active-conversation")
    assert _me_status(sandbox, token) == 200  # still signed in: the wait has not run out

    path = f"/admin/jobs/{job.id}/cut-access"
    assert _admin(admin_bridge, "POST", path, {"by": "alice"}).status_code == 400  # no reason
    cut = _admin(admin_bridge, "POST", path, {"by": "alice", "reason": "walked out, HR-88"})
    assert cut.status_code == 200, cut.get_data(as_text=True)
    engine.worker.run_until_idle(timeout_s=30)

    # Sessions ended at once, while Genesys still refuses the deactivation (the call goes on).
    record = sandbox.user(uid)
    assert (record["state"], record["activeSessions"]) == ("active", 0)
    assert _me_status(sandbox, token) == 401
    waiting = jobs.find(admin_bridge.engine, job.id)
    assert waiting is not None
    assert (waiting.state, waiting.step, waiting.waiting_on) == (
        "waiting",
        "deactivate",
        "active-conversation",
    )
    assert waiting.forced is not None
    assert (waiting.forced.by, waiting.forced.reason) == ("admin:alice", "walked out, HR-88")

    sandbox.set_conversation(uid, False)  # Genesys allows it now
    done = finish(engine.worker, job.id)
    assert done.state == "done"
    assert sandbox.user(uid)["state"] == "inactive"
    assert _states(sandbox, uid) == ["active", "inactive"]
    (asked,) = _event(admin_bridge, job.id, Tag.DEPROVISION_ACCESS_CUT_REQUESTED)
    assert (asked["actor"], asked["detail"]["operator_reason"]) == (
        "admin:alice",
        "walked out, HR-88",
    )
    assert len(_event(admin_bridge, job.id, Tag.DEPROVISION_SESSIONS_REVOKED)) >= 1


def test_the_cli_cuts_access_with_a_reason(admin_bridge: Bridge, sandbox: Sandbox) -> None:
    _engine(admin_bridge, dataclasses.replace(FAST_RULES, conversation_wait_max_s=3600))
    (uid,) = _active_ids(sandbox, 1)
    sandbox.set_conversation(uid, True)
    assert admin_bridge.patch(f"/Users/{uid}", json=DEACTIVATE).status_code == 204
    job = _job_of(admin_bridge, uid, "deactivate")
    env = {
        **os.environ,
        "DATABASE_URL": admin_bridge.settings.database_url,
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": sandbox.client_id,
        "GENESYS_CLIENT_SECRET": sandbox.client_secret,
    }
    OperatorStore(admin_bridge.engine).create("bob")
    command = [sys.executable, "-m", "scim_bridge", "jobs", "cut-access", job.id, "--by", "bob"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode != 0  # --reason is required
    ran = subprocess.run(
        [*command, "--reason", "contract ended"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    cut = jobs.find(admin_bridge.engine, job.id)
    assert cut is not None
    assert cut.forced is not None
    assert (cut.forced.by, cut.forced.reason, cut.state) == (
        "operator:bob",
        "contract ended",
        "pending",
    )


# --- 3. ACTIVE_CONVERSATION_WAIT runs out; conversationSummary missing ---------------------------


def test_when_active_conversation_wait_runs_out_access_is_cut_anyway(deprov: Engine) -> None:
    # The bridge's clock is the test's: it jumps past the wait, no real waiting.
    now, started = [time.time()], time.monotonic()
    service, worker = deprov.build(
        clock=lambda: now[0] + time.monotonic() - started,
        rules=dataclasses.replace(FAST_RULES, conversation_wait_max_s=900),
    )
    (uid,) = _active_ids(deprov.sandbox, 1)
    deprov.sandbox.set_conversation(uid, True)
    token = deprov.sandbox.sign_in(uid)

    outcome = service.request("deactivate", uid, requester=OKTA)
    assert (outcome.state, outcome.waiting_on) == ("waiting", "active-conversation")
    worker.run_until_idle()
    assert _me_status(deprov.sandbox, token) == 200  # inside the wait: still signed in

    now[0] += 901
    worker.run_until_idle()

    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    assert job.forced is not None
    assert job.forced.by == "policy:active-conversation-wait"
    assert (job.step, job.waiting_on) == ("deactivate", "active-conversation")
    record = deprov.sandbox.user(uid)
    assert (record["state"], record["activeSessions"]) == ("active", 0)  # Genesys still refuses
    tags = [e.tag for e in deprov.audit.events(job_id=job.id)]
    assert Tag.DEPROVISION_CONVERSATION_WAIT_EXPIRED in tags
    # Revoked at once (audited), although Genesys refused the deactivation itself.
    assert tags.count(Tag.DEPROVISION_SESSIONS_REVOKED) == 1
    assert Tag.DEPROVISION_USER_DEACTIVATED not in tags

    deprov.sandbox.set_conversation(uid, False)
    done = finish(worker, job.id)
    assert (done.state, deprov.sandbox.user(uid)["state"]) == ("done", "inactive")


def test_a_missing_conversation_summary_is_decided_not_waited_on(deprov: Engine) -> None:
    service, worker = deprov.build()
    idle, talking = _active_ids(deprov.sandbox, 2)
    deprov.sandbox.faults(conversation_summary_missing=[idle, talking])
    deprov.sandbox.set_conversation(talking, True)

    quiet = service.request("deactivate", idle, requester=OKTA)
    assert (quiet.state, quiet.access_cut) == ("done", True)
    tags = [e.tag for e in deprov.audit.events(job_id=quiet.job_id)]
    assert Tag.DEPROVISION_CONVERSATION_UNKNOWN in tags

    # Not known, and Genesys refuses during the call: that refusal is waited on, bounded.
    busy = service.request("deactivate", talking, requester=OKTA)
    assert (busy.state, busy.waiting_on, busy.access_cut) == (
        "waiting",
        "active-conversation",
        False,
    )
    assert deprov.sandbox.user(talking)["state"] == "active"
    deprov.sandbox.set_conversation(talking, False)
    done = finish(worker, busy.job_id)
    assert (done.state, deprov.sandbox.user(talking)["state"]) == ("done", "inactive")
