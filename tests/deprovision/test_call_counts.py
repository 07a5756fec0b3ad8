"""Genesys calls per deleted user, counted by the sandbox (``/sandbox/stats``), alone and batched.

Alone (a request run inline to the end): snapshot (user, 2 queue listings), one DELETE per queue,
await_idle (one GET that also serves the deactivate's version), the PATCH, verify_before (a
closed interval ends on its short page, the live one on its empty page), the DELETE, confirm
(``?state=deleted``: one read), verify_after (only intervals where history was found, until the
ids are back). Batched (the worker): the snapshot and confirm reads are one bulk read for the
round, the history checks one query per window and page.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from scim_bridge.audit import Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.genesys import history
from tests.deprovision.conftest import Engine, users

OKTA = Requester(actor="okta", idp="okta", scim_id="scim-1")
GET_USER = "GET /api/v2/users/<user_id>"
LIST_USERS = "GET /api/v2/users"
QUEUES = "GET /api/v2/users/<user_id>/queues"
REMOVE = "DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>"
PATCH = "PATCH /api/v2/users/<user_id>"
DELETE = "DELETE /api/v2/users/<user_id>"
DETAILS = "POST /api/v2/analytics/conversations/details/query"


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for endpoint, by_status in after["endpoints"].items():
        for status, n in by_status.items():
            d = n - before["endpoints"].get(endpoint, {}).get(status, 0)
            if d and "/api/" in endpoint:
                out.setdefault(endpoint, {})[status] = d
    return out


def _expected_history_queries(job_data: dict[str, Any]) -> tuple[int, int]:
    """(verify_before, verify_after) queries for one user with fewer than a page per interval."""
    window = job_data["evidence"]["before"]["window"]
    since, until = (datetime.fromisoformat(window[k]) for k in ("since", "until"))
    intervals = history.intervals(since, until)
    with_data = set(job_data["history_before_intervals"])
    live = [i for i in intervals if not history.is_closed(i, until)]
    before = len(intervals) + sum(1 for i in live if i in with_data)  # the live empty page
    return before, len(with_data)


def test_a_delete_alone_makes_only_the_calls_that_prove_it(deprov: Engine) -> None:
    service, _ = deprov.build(worker=False)
    uid = next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if deprov.sandbox.user(u)["queues"] and deprov.sandbox.user(u)["conversationCount"]
    )
    queues = len(deprov.sandbox.user(uid)["queues"])
    deprov.gateway.ensure_token()
    before = deprov.sandbox.stats()

    outcome = service.request("delete", uid, requester=OKTA)

    assert (outcome.state, outcome.final) == ("done", True)
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    history_before, history_after = _expected_history_queries(jobs.dump_data(job))
    assert history_after >= 1
    assert _delta(before, deprov.sandbox.stats()) == {
        GET_USER: {"200": 3},  # snapshot, await_idle, confirm (?state=deleted): no 404
        QUEUES: {"200": 2},  # joined=true and joined=false (genesys-api.md 3)
        REMOVE: {"204": queues},
        PATCH: {"200": 1},  # with await_idle's version: no GET of its own
        DELETE: {"200": 1},
        DETAILS: {"200": history_before + history_after},
    }
    before_ev, after_ev = (
        jobs.dump_data(job)["evidence"]["before"],
        jobs.dump_data(job)["evidence"]["after"],
    )
    assert before_ev["sha256"] == after_ev["sha256"]
    assert before_ev["count"] == deprov.sandbox.user(uid)["conversationCount"]
    assert after_ev["analytics_queries"] == history_after
    assert deprov.audit.verify().ok


def test_a_user_without_history_needs_no_check_after_the_delete(deprov: Engine) -> None:
    service, _ = deprov.build(worker=False)
    uid = next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if not deprov.sandbox.user(u)["conversationCount"]
    )
    outcome = service.request("delete", uid, requester=OKTA)
    assert outcome.state == "done"
    job = jobs.find(deprov.engine, outcome.job_id)
    assert job is not None
    assert jobs.dump_data(job)["evidence"]["after"]["analytics_queries"] == 0
    assert (
        jobs.dump_data(job)["evidence"]["after"]["count"]
        == jobs.dump_data(job)["evidence"]["before"]["count"]
        == 0
    )
    tags = [e.tag for e in deprov.audit.events(job_id=outcome.job_id)]
    assert Tag.DEPROVISION_HISTORY_VERIFIED in tags


def test_batched_deletes_share_their_user_reads(deprov: Engine) -> None:
    service, worker = deprov.build()
    ids = users(deprov.sandbox, deprov.gateway)[:12]
    queues = sum(len(deprov.sandbox.user(u)["queues"]) for u in ids)
    deprov.gateway.ensure_token()
    before = deprov.sandbox.stats()
    job_ids = [service.enqueue("delete", uid, requester=OKTA)[0].id for uid in ids]

    worker.run_until_idle(timeout_s=60)

    found = [jobs.find(deprov.engine, j) for j in job_ids]
    assert [j.state for j in found if j is not None] == ["done"] * len(ids)
    assert all(deprov.sandbox.user(u)["state"] == "deleted" for u in ids)
    delta = _delta(before, deprov.sandbox.stats())
    assert delta[LIST_USERS] == {"200": 2}  # one bulk read at snapshot, one at confirm
    assert delta[GET_USER] == {"200": len(ids)}  # await_idle only
    assert delta[QUEUES] == {"200": 2 * len(ids)}
    assert delta[REMOVE] == {"204": queues}
    assert delta[PATCH] == {"200": len(ids)}
    assert delta[DELETE] == {"200": len(ids)}
    # verify_before: one query per interval (12 users have fewer than a page of history), plus
    # the live interval's empty page; verify_after: one per interval where history was found.
    windows = {
        jobs.dump_data(j)["evidence"]["before"]["window"]["until"] for j in found if j is not None
    }
    if len(windows) == 1:  # the round did not cross a minute: one shared window
        (until,) = windows
        intervals = history.intervals(
            datetime.fromisoformat(until) - timedelta(days=90), datetime.fromisoformat(until)
        )
        with_data = {
            i for j in found if j is not None for i in jobs.dump_data(j)["history_before_intervals"]
        }
        live = intervals[-1]
        assert not history.is_closed(live, datetime.fromisoformat(until))
        expected = len(intervals) + (live in with_data) + len(with_data)
        assert delta[DETAILS] == {"200": expected}
    # The shared read is on each job's record, with its correlation id.
    for job_id in job_ids:
        snap = next(
            e for e in deprov.audit.events(job_id=job_id) if e.tag == Tag.DEPROVISION_USER_SNAPSHOT
        )
        (call,) = snap.detail["calls"][:1]
        assert (call["endpoint"], call["status"]) == ("/api/v2/users", 200)
        assert call["correlation_id"]
    assert deprov.audit.verify().ok


def test_a_purged_history_is_still_caught_when_batched(deprov: Engine) -> None:
    service, worker = deprov.build()
    deprov.sandbox.faults(purge_history_on_delete=True)
    ids = [
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if deprov.sandbox.user(u)["conversationCount"]
    ][:3]
    job_ids = [service.enqueue("delete", uid, requester=OKTA)[0].id for uid in ids]
    worker.run_until_idle(timeout_s=60)
    for job_id, uid in zip(job_ids, ids, strict=True):
        job = jobs.find(deprov.engine, job_id)
        assert job is not None
        assert (job.state, job.reason) == ("held", "history-mismatch")
        assert deprov.sandbox.user(uid)["state"] == "inactive"
