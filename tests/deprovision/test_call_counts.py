"""Genesys calls per deleted user, counted by the sandbox (``/sandbox/stats``), alone and batched.

Alone (one job, nothing to share): snapshot (the user with the footprint's expands and the
conversation summary, the grants, 2 queue listings), await_idle (no call: the snapshot's read,
whose user also serves the deactivate's version), the PATCH and the session revocation
(``DELETE /api/v2/tokens/{userId}``, issue 10), one DELETE per queue, verify_before (an async
details job: submit, one status read (its first poll comes about when the last job took, kept in
the database), one results page; the synchronous tail from a week before the lake date: the
users are settled by then, so its live interval ends on its short page), the DELETE, confirm (no call:
the DELETE's answer), verify_after (an async job for the users whose lake part found
something; the tail only where it found something, until the ids are back). Batched (the
worker): the snapshot reads are one bulk read for the round (and the queue memberships of all
its users through the org's queues when that is cheaper), the drains one bulk removal per queue, each side's async job
and tail query serve every user of the round.
"""

from __future__ import annotations

import uuid
from typing import Any

from scim_bridge.audit import Tag
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.api import Requester
from scim_bridge.deprovision.proof import BY_ID_API, JOB_API, QUERY_API
from scim_bridge.genesys.types import UserFields
from tests.deprovision.conftest import Engine, finish, users

OKTA = Requester(actor="okta", idp="okta", scim_id="scim-1")
GET_USER = "GET /api/v2/users/<user_id>"
LIST_USERS = "GET /api/v2/users"
QUEUES = "GET /api/v2/users/<user_id>/queues"
REMOVE = "DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>"
BULK_REMOVE = "POST /api/v2/routing/queues/<queue_id>/members"  # ?delete=true
LIST_QUEUES = "GET /api/v2/routing/queues"
QUEUE_MEMBERS = "GET /api/v2/routing/queues/<queue_id>/members"
PATCH = "PATCH /api/v2/users/<user_id>"
DELETE = "DELETE /api/v2/users/<user_id>"
TOKENS = "DELETE /api/v2/tokens/<user_id>"
DETAILS = "POST /api/v2/analytics/conversations/details/query"
# The footprint snapshot (issue 12): the snapshot's user read asks for skills, languages and
# groups as expands, and the role grants are one more read.
SUBJECT = "GET /api/v2/authorization/subjects/<subject_id>"
JOBS = "/api/v2/analytics/conversations/details/jobs"
SUBMIT = f"POST {JOBS}"
STATUS = f"GET {JOBS}/<job_id>"
RESULTS = f"GET {JOBS}/<job_id>/results"
BY_ID = "GET /api/v2/analytics/conversations/details"
HISTORY = (DETAILS, SUBMIT, STATUS, RESULTS, BY_ID)
# A reactivation's restores (issue 12).
BULKADD = "POST /api/v2/authorization/subjects/<subject_id>/bulkadd"
SKILLS = "PATCH /api/v2/users/<user_id>/routingskills/bulk"
LANGUAGES = "PATCH /api/v2/users/<user_id>/routinglanguages/bulk"
ADD_MEMBERS = BULK_REMOVE  # the same POST without ?delete=true
USER_QUEUES = "PATCH /api/v2/users/<user_id>/queues"  # the joined flag


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for endpoint, by_status in after["endpoints"].items():
        for status, n in by_status.items():
            d = n - before["endpoints"].get(endpoint, {}).get(status, 0)
            if d and "/api/" in endpoint:
                out.setdefault(endpoint, {})[status] = d
    return out


def _parts(job_data: dict[str, Any], side: str) -> dict[str, dict[str, Any]]:
    return {p["api"]: p for p in job_data["evidence"][side].get("parts", [])}


def test_a_delete_alone_makes_only_the_calls_that_prove_it(deprov: Engine) -> None:
    service, worker = deprov.build()
    uid = next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if deprov.sandbox.user(u)["queues"] and deprov.sandbox.user(u)["conversationCount"]
    )
    queues = len(deprov.sandbox.user(uid)["queues"])
    deprov.gateway.ensure_token()
    before = deprov.sandbox.stats()

    outcome = service.request("delete", uid, requester=OKTA)
    job = finish(worker, outcome.job_id)

    assert job.state == "done"
    data = jobs.dump_data(job)
    lake_before, tail_before = (_parts(data, "before")[api] for api in (JOB_API, QUERY_API))
    after_parts = _parts(data, "after")
    delta = _delta(before, deprov.sandbox.stats())
    reads = delta.pop(GET_USER)["200"] + delta.pop(LIST_USERS, {}).get("200", 0)
    # One: the snapshot's, with the footprint's expands and the conversation summary, serves
    # await_idle too; the DELETE's answer serves confirm (issue 11: no re-read an answer gave).
    assert reads == 1
    assert {k: v for k, v in delta.items() if k not in HISTORY} == {
        SUBJECT: {"200": 1},  # the role grants, for the footprint snapshot (issue 12)
        QUEUES: {"200": 2},  # joined=true and joined=false (genesys-api.md 3)
        REMOVE: {"204": queues},
        PATCH: {"200": 1},  # with await_idle's version: no GET of its own
        TOKENS: {"204": 1},  # every deactivation ends the user's sessions (issue 10)
        DELETE: {"200": 1},
    }
    # Before: one async job (the lake held this user's history), one results page and one
    # status read, the first poll waiting about as long as a job takes (issue 11); the tail, one
    # short page (the user is settled: inactive, idle).
    assert delta[SUBMIT] == {"202": 1}
    assert delta[RESULTS] == {"200": 1}
    assert delta[STATUS] == {"200": 1}
    assert tail_before["calls"] == 1
    assert delta[DETAILS] == {"200": 1}
    # After: what was found before, read back by id: one call a hundred, no job, no tail.
    (after_part,) = after_parts.values()
    assert after_part["api"] == BY_ID_API
    assert delta[BY_ID] == {"200": -(-data["evidence"]["before"]["count"] // 100)}
    assert after_part["calls"] == delta[BY_ID]["200"]
    # Every history call is on the evidence of the side that made it.
    recorded = sum(p["calls"] for side in ("before", "after") for p in _parts(data, side).values())
    assert recorded == sum(sum(delta.get(e, {}).values()) for e in HISTORY)
    before_ev, after_ev = data["evidence"]["before"], data["evidence"]["after"]
    assert before_ev["sha256"] == after_ev["sha256"]
    assert before_ev["count"] == deprov.sandbox.user(uid)["conversationCount"]
    assert before_ev["count"] == lake_before["count"] + tail_before["count"] - len(
        set(data["history_before_lake_ids"])
        & {i for ids in data["history_before_intervals"].values() for i in ids}
    )
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
    queues = {q["id"] for u in ids for q in deprov.sandbox.user(u)["queues"]}
    deprov.gateway.ensure_token()
    before = deprov.sandbox.stats()
    job_ids = [service.enqueue("delete", uid, requester=OKTA)[0].id for uid in ids]

    for job_id in job_ids:
        finish(worker, job_id)

    found = [jobs.find(deprov.engine, j) for j in job_ids]
    assert [j.state for j in found if j is not None] == ["done"] * len(ids)
    assert all(deprov.sandbox.user(u)["state"] == "deleted" for u in ids)
    delta = _delta(before, deprov.sandbox.stats())
    assert delta[LIST_USERS] == {"200": 1}  # one bulk read at snapshot: confirm has the DELETE's
    assert GET_USER not in delta  # await_idle takes the snapshot's read (conversationSummary)
    assert delta[SUBJECT] == {"200": len(ids)}  # the grants of each footprint snapshot
    # The memberships of the round's 12 users through the org's queues (fewer calls than the
    # 24 listings a user each: Gateway.queue_memberships), none a user.
    assert QUEUES not in delta
    listing = delta[LIST_QUEUES]["200"] + delta[QUEUE_MEMBERS]["200"]
    assert delta[LIST_QUEUES] == {"200": 1}
    assert listing < 2 * len(ids)
    # The drains in bulk: one request per queue for the round's users, none per membership.
    assert REMOVE not in delta
    assert delta[BULK_REMOVE] == {"204": len(queues)}
    assert not any(deprov.sandbox.user(u)["queues"] for u in ids)
    assert delta[PATCH] == {"200": len(ids)}
    assert delta[TOKENS] == {"204": len(ids)}
    assert delta[DELETE] == {"200": len(ids)}
    data = [jobs.dump_data(j) for j in found if j is not None]
    windows = {d["evidence"]["before"]["window"]["until"] for d in data}
    if len(windows) == 1:  # the round did not cross a minute: one shared window
        # One async job for all 12 before; after, their ids read back by id, 100 a call.
        assert delta[SUBMIT] == {"202": 1}
        found_before = set().union(
            *(d["history_before_lake_ids"] for d in data),
            *(i for d in data for i in d["history_before_intervals"].values()),
        )
        assert delta[BY_ID] == {"200": -(-len(found_before) // 100)}
        lake = {_parts(d, "before")[JOB_API]["job_id"] for d in data}
        assert len(lake) == 1
        assert {_parts(d, "before")[JOB_API]["users"] for d in data} == {len(ids)}
        tails = {_parts(d, "before")[QUERY_API]["calls"] for d in data}
        assert len(tails) == 1  # one shared tail query (its pages: the last one short)
        assert delta[DETAILS]["200"] <= 2 + len(ids)
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


def _agent(deprov: Engine) -> str:
    """A seeded active user with what an admin gives an agent: own role grants, skills,
    languages and two or more queue memberships the bridge can drain (none through a group)."""
    return next(
        u
        for u in users(deprov.sandbox, deprov.gateway)
        if len((record := deprov.sandbox.user(u))["queues"]) >= 2
        and any(g["subjectId"] == u for g in record["footprint"]["grants"])
        and record["footprint"]["routingSkills"]
        and record["footprint"]["routingLanguages"]
    )


def test_a_deactivation_and_its_reactivation_make_only_the_calls_they_need(
    deprov: Engine,
) -> None:
    """Deactivate (issue 15): the snapshot (the user with the footprint's expands, its grants,
    both queue listings), the state PATCH with that read's version, the sessions, one removal a
    queue. Reactivate: one user read (its version serves the state PATCH, its division the
    division check), the state PATCH, one bulk call a restored part, the queues' listing, one
    add a re-added membership and one request for all their joined flags, and the check reads
    back only what was restored: the user with skills and languages (no division read of its
    own), the grants, the queues.
    Each request's outcome carries the job's last answer, current for the SCIM answer."""
    service, _ = deprov.build(worker=False)
    uid = _agent(deprov)
    queues = len(deprov.sandbox.user(uid)["queues"])
    deprov.gateway.ensure_token()
    before = deprov.sandbox.stats()

    off = service.request("deactivate", uid, requester=OKTA)

    assert (off.state, off.access_cut) == ("done", True)
    after_off = deprov.sandbox.stats()
    assert _delta(before, after_off) == {
        GET_USER: {"200": 1},
        SUBJECT: {"200": 1},
        QUEUES: {"200": 2},
        PATCH: {"200": 1},
        TOKENS: {"204": 1},
        REMOVE: {"204": queues},
    }
    held = deprov.sandbox.user(uid)
    assert off.user is not None
    assert (off.user.state, off.user.version) == ("inactive", held["version"])

    on = service.request("reactivate", uid, requester=OKTA)

    assert on.state == "done", on
    assert _delta(after_off, deprov.sandbox.stats()) == {
        GET_USER: {"200": 2},  # the snapshot's; the check's, with skills and languages
        PATCH: {"200": 1},  # with the snapshot's version: no read of its own
        BULKADD: {"204": 1},
        SKILLS: {"200": 1},
        LANGUAGES: {"200": 1},
        QUEUES: {"200": 4},  # restore_queues' listing; the check's, after the re-adds
        ADD_MEMBERS: {"204": queues},
        USER_QUEUES: {"200": 1},  # every re-added membership's joined flag in one request
        SUBJECT: {"200": 1},  # the check's grants
    }
    held = deprov.sandbox.user(uid)
    assert len(held["queues"]) == queues
    assert on.user is not None
    assert (on.user.state, on.user.version) == ("active", held["version"])
    assert deprov.audit.verify().ok


def test_a_reactivation_with_nothing_to_restore_is_one_read_and_the_patch(
    deprov: Engine,
) -> None:
    """A user the bridge took nothing from but its state (no grants, skills, languages or
    queues of its own): the snapshot's read and the state PATCH; the check compares the division
    with the PATCH's answer and reads nothing."""
    service, _ = deprov.build(worker=False)
    created = deprov.gateway.create_user(
        UserFields(name="Plain User", email=f"plain.{uuid.uuid4().hex[:8]}@example.com")
    )
    uid = created.id
    assert service.request("deactivate", uid, requester=OKTA).state == "done"
    before = deprov.sandbox.stats()

    on = service.request("reactivate", uid, requester=OKTA)

    assert on.state == "done"
    assert _delta(before, deprov.sandbox.stats()) == {GET_USER: {"200": 1}, PATCH: {"200": 1}}
    job = jobs.find(deprov.engine, on.job_id)
    assert job is not None
    assert job.restoration.difference == {}
    assert on.user is not None
    assert (on.user.state, on.user.version) == ("active", deprov.sandbox.user(uid)["version"])
