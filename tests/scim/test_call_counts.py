"""Genesys calls per SCIM operation (issue 15), counted by the sandbox (``/sandbox/stats``), and
that fewer calls never means stale answers: what Genesys holds now is what the IdP is told.

The bridge writes against the last answer Genesys gave it for a user or group (its version is
checked by Genesys), so Okta's GET-then-PUT and Entra's lookup-then-PATCH are one read and one
write; a group membership PATCH is the member calls alone.
"""

from __future__ import annotations

import json
from typing import Any

from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import UserFields
from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user, load

GET_USER = "GET /api/v2/users/<user_id>"
PATCH_USER = "PATCH /api/v2/users/<user_id>"
SEARCH_USERS = "POST /api/v2/users/search"
GET_GROUP = "GET /api/v2/groups/<group_id>"
MEMBERS = "GET /api/v2/groups/<group_id>/members"
ADD_MEMBERS = "POST /api/v2/groups/<group_id>/members"
REMOVE_MEMBERS = "DELETE /api/v2/groups/<group_id>/members"
SUBJECT = "GET /api/v2/authorization/subjects/<subject_id>"
USER_QUEUES = "GET /api/v2/users/<user_id>/queues"
TOKENS = "DELETE /api/v2/tokens/<user_id>"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Calls:
    """The Genesys calls the sandbox counted since the last ``take()``, by endpoint (any status)."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.last = sandbox.stats()

    def take(self) -> dict[str, int]:
        now = self.sandbox.stats()
        out: dict[str, int] = {}
        for endpoint, by_status in now["endpoints"].items():
            before = self.last["endpoints"].get(endpoint, {})
            n = sum(c - before.get(s, 0) for s, c in by_status.items())
            if n and "/api/" in endpoint:
                out[endpoint] = n
        self.last = now
        return out


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_okta_get_then_put_is_one_read_and_one_write(bridge: Bridge, sandbox: Any) -> None:
    """O-20 1(c): Okta GETs the user, then PUTs it whole: the PUT needs no read of its own."""
    user = create_user(bridge)
    calls = Calls(sandbox)
    current = bridge.get(f"/Users/{user['id']}").get_json()
    assert calls.take() == {GET_USER: 1}
    current["title"] = "Agent"
    response = bridge.put(f"/Users/{user['id']}", json=current)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert calls.take() == {PATCH_USER: 1}
    # The answer is Genesys's answer to the PATCH: the new version, the new title.
    held = sandbox.user(user["id"])
    assert response.get_json()["title"] == "Agent" == held["title"]
    assert response.headers["ETag"] == f'W/"{held["version"]}"'


def test_entra_lookup_then_patches_are_one_call_each(bridge: Bridge, sandbox: Any) -> None:
    """E-TUT 2(c): Entra's lookup, then PATCHes one after another, each on the last answer."""
    entra = bridge.entra
    user = create_user(entra, "entra-create-user.json")
    calls = Calls(sandbox)
    found = entra.get(f'/Users?filter=userName eq "{user["userName"]}"').get_json()
    assert found["totalResults"] == 1
    assert calls.take() == {SEARCH_USERS: 1}
    for title in ("Engineer", "Senior Engineer"):
        body = _patch({"op": "Replace", "path": "title", "value": title})
        response = entra.patch(f"/Users/{user['id']}", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert calls.take() == {PATCH_USER: 1}
        assert sandbox.user(user["id"])["title"] == title


def test_a_create_with_an_employee_number_is_the_post_and_one_patch(
    bridge: Bridge, sandbox: Any
) -> None:
    """The PATCH after the POST (employeeNumber: not in CreateUser, genesys-api.md 2.5) uses the
    version the POST answered."""
    calls = Calls(sandbox)
    create_user(bridge.entra, "entra-create-user.json")
    taken = calls.take()
    assert taken.pop("POST /api/v2/users") == 1
    assert taken.pop(PATCH_USER) == 1
    assert taken.pop(SEARCH_USERS, 0) <= 1  # no deleted user holds the email (re-hire check)
    assert taken == {}


def test_a_change_made_in_genesys_is_kept_and_shown(
    bridge: Bridge, sandbox: Any, gateway: SdkGateway
) -> None:
    """What the bridge remembers is only a base to write against: Genesys refuses its version
    once the user changed, and the change is applied again to a fresh read."""
    user = create_user(bridge)
    current = bridge.get(f"/Users/{user['id']}").get_json()
    gateway.update_user(user["id"], UserFields(department="Changed in Genesys"))
    # The next GET is Genesys's (nothing is served from memory).
    seen = bridge.get(f"/Users/{user['id']}").get_json()
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert seen[enterprise]["department"] == "Changed in Genesys"
    # A PUT built on the older GET: written on top of Genesys's current state, not of memory.
    current["title"] = "Agent"
    calls = Calls(sandbox)
    response = bridge.put(f"/Users/{user['id']}", json=current)
    assert response.status_code == 200, response.get_data(as_text=True)
    held = sandbox.user(user["id"])
    assert held["title"] == "Agent"
    assert response.get_json()["title"] == "Agent"
    assert response.headers["ETag"] == f'W/"{held["version"]}"'
    assert calls.take() == {PATCH_USER: 1}  # the read after the GET above remembered it


def test_a_write_on_a_stale_memory_is_refused_by_genesys_and_redone(
    bridge: Bridge, sandbox: Any, gateway: SdkGateway
) -> None:
    user = create_user(bridge)
    bridge.get(f"/Users/{user['id']}")  # remembered
    gateway.update_user(user["id"], UserFields(department="Changed in Genesys"))
    calls = Calls(sandbox)
    body = _patch({"op": "replace", "path": "title", "value": "Agent"})
    response = bridge.patch(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    # The PATCH on the remembered version was refused (409), the user read, the PATCH redone.
    assert calls.take() == {PATCH_USER: 2, GET_USER: 1}
    held = sandbox.user(user["id"])
    assert (held["title"], held["department"]) == ("Agent", "Changed in Genesys")
    assert response.get_json()["title"] == "Agent"


def test_no_change_is_never_decided_on_memory(
    bridge: Bridge, sandbox: Any, gateway: SdkGateway
) -> None:
    """The IdP sets the title the bridge last saw; Genesys has another one since. A remembered
    "already so" would answer 200 with nothing written: the bridge reads afresh and writes."""
    user = create_user(bridge)
    body = _patch({"op": "replace", "path": "title", "value": "Agent"})
    assert bridge.patch(f"/Users/{user['id']}", json=body).status_code == 200
    gateway.update_user(user["id"], UserFields(title="Changed in Genesys"))
    calls = Calls(sandbox)
    response = bridge.patch(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200
    assert calls.take() == {GET_USER: 1, PATCH_USER: 1}
    assert sandbox.user(user["id"])["title"] == "Agent"
    assert response.get_json()["title"] == "Agent"


def test_group_membership_patches_do_not_list_the_group(bridge: Bridge, sandbox: Any) -> None:
    """Entra (E-TUT 2(g)): create empty, add members, remove one: the member calls alone, 204."""
    entra = bridge.entra
    a, b = (create_user(entra, "entra-create-user.json")["id"] for _ in range(2))
    created = entra.post("/Groups", json=load("entra-group-create.json", groupname="Counted"))
    gid = created.get_json()["id"]
    calls = Calls(sandbox)
    added = entra.patch(f"/Groups/{gid}", json=load("entra-group-add-members.json", add=a, add2=b))
    assert added.status_code == 204, added.get_data(as_text=True)
    assert calls.take() == {ADD_MEMBERS: 1}  # with the version the create answered
    removed = entra.patch(
        f"/Groups/{gid}?excludedAttributes=members",
        json=load("entra-group-remove-member-flag.json", remove=b),
    )
    assert removed.status_code == 204
    assert calls.take() == {REMOVE_MEMBERS: 1}
    members = entra.get(f"/Groups/{gid}").get_json()["members"]
    assert [m["value"] for m in members] == [a]
    assert calls.take() == {GET_GROUP: 1, MEMBERS: 1}  # a GET with members lists them
    # Okta's form (O-20) repeats the unchanged name with each membership change: the group is
    # read (the name is compared with Genesys's, never with memory), no member listing.
    body = load("okta-group-members-mixed.json", remove=a, add=b)
    body["Operations"].insert(0, {"op": "replace", "value": {"id": gid, "displayName": "Counted"}})
    assert entra.patch(f"/Groups/{gid}", json=body).status_code == 204
    assert calls.take() == {GET_GROUP: 1, ADD_MEMBERS: 1, REMOVE_MEMBERS: 1}
    assert {g["id"] for g in sandbox.user(b)["groups"]} == {gid}
    assert sandbox.user(a)["groups"] == []


def test_a_stale_group_version_costs_a_read_not_a_failure(
    bridge: Bridge, sandbox: Any, gateway: SdkGateway
) -> None:
    entra = bridge.entra
    a, b = (create_user(entra, "entra-create-user.json")["id"] for _ in range(2))
    created = entra.post("/Groups", json=load("entra-group-create.json", groupname="Raced"))
    gid = created.get_json()["id"]
    gateway.add_group_members(gid, [a])  # another writer, after the create's answer
    calls = Calls(sandbox)
    body = load("entra-group-add-members.json", add=a, add2=b)
    assert entra.patch(f"/Groups/{gid}", json=body).status_code == 204
    # The remembered version was refused (409), the group read, the POST redone.
    assert calls.take() == {ADD_MEMBERS: 2, GET_GROUP: 1}
    assert {g["id"] for g in sandbox.user(b)["groups"]} == {gid}
    assert {g["id"] for g in sandbox.user(a)["groups"]} == {gid}


def test_patch_active_is_the_jobs_calls_and_answers_with_the_jobs_last_answer(
    bridge: Bridge, sandbox: Any
) -> None:
    """Okta's deactivate and reactivate (issue 15): the deprovisioning job's calls alone. The
    answer is Genesys's last answer to the job (its state PATCH's), not a read after it: the
    same state and version Genesys holds, and remembered, so that the next change needs no read."""
    user = create_user(bridge)
    uid = user["id"]
    calls = Calls(sandbox)
    off = bridge.patch(f"/Users/{uid}", json=_patch({"op": "replace", "value": {"active": False}}))
    assert off.status_code == 200, off.get_data(as_text=True)
    assert calls.take() == {
        GET_USER: 1,  # the snapshot: the user with the footprint's expands
        SUBJECT: 1,  # its role grants (deactivation strips them)
        USER_QUEUES: 2,  # joined=true and joined=false, for the drain
        PATCH_USER: 1,  # state=inactive, with the snapshot's version
        TOKENS: 1,  # every session ends
    }
    held = sandbox.user(uid)
    assert (off.get_json()["active"], held["state"]) == (False, "inactive")
    assert off.headers["ETag"] == f'W/"{held["version"]}"'

    on = bridge.patch(f"/Users/{uid}", json=_patch({"op": "replace", "value": {"active": True}}))
    assert on.status_code == 200, on.get_data(as_text=True)
    # The snapshot's read (its version serves the PATCH, its division the check) and the PATCH:
    # the user held nothing else the deactivation took, so there is nothing to restore or read.
    assert calls.take() == {GET_USER: 1, PATCH_USER: 1}
    held = sandbox.user(uid)
    assert (on.get_json()["active"], held["state"]) == (True, "active")
    assert on.headers["ETag"] == f'W/"{held["version"]}"'
    # The answer is remembered as a base: a title change is the PATCH alone.
    title = bridge.patch(
        f"/Users/{uid}", json=_patch({"op": "replace", "path": "title", "value": "Agent"})
    )
    assert title.status_code == 200
    assert calls.take() == {PATCH_USER: 1}


def _in_queues_of_its_own(bridge: Bridge, sandbox: Any) -> str:
    """An active seeded user in queues it joined itself (the bridge can drain them)."""
    listing = bridge.get("/Users?count=100&filter=active eq true").get_json()
    return str(
        next(
            r["id"]
            for r in listing["Resources"]
            if (queues := sandbox.user(r["id"])["queues"])
            and all(q["memberBy"] == "user" for q in queues)
        )
    )


def test_a_deactivation_of_a_user_not_remembered_reads_it_once(
    bridge: Bridge, sandbox: Any
) -> None:
    """Okta's deactivate of a user this process has not seen (a fresh replica, or no GET first:
    idp-behaviour.md 1(d)): the request's read is the snapshot's, with the footprint's expands,
    and the job takes it (issue 15): one user read, not one for the PATCH and one for the job.
    The snapshot's audit detail lists that read, with its correlation id."""
    uid = _in_queues_of_its_own(bridge, sandbox)
    queues = len(sandbox.user(uid)["queues"])
    # As another replica, or this one after a restart: nothing remembered of the user.
    bridge.app.extensions["scim_bridge"].directory.known_users.drop(uid)
    calls = Calls(sandbox)
    off = bridge.patch(f"/Users/{uid}", json=_patch({"op": "replace", "value": {"active": False}}))
    assert off.status_code == 200, off.get_data(as_text=True)
    assert off.get_json()["active"] is False
    assert calls.take() == {
        GET_USER: 1,  # the request's read, with the snapshot's expands: the job takes it
        SUBJECT: 1,
        USER_QUEUES: 2,
        "DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>": queues,
        PATCH_USER: 1,
        TOKENS: 1,
    }
    assert sandbox.user(uid)["state"] == "inactive"
    assert not sandbox.user(uid)["queues"]
    snapshot = next(
        e
        for e in bridge.audit_events()
        if e["tag"] == "deprovision:user:snapshot" and e["scim_id"] == uid
    )
    read = [c for c in json.loads(snapshot["detail"])["calls"] if c["method"] == "GET"]
    assert [c["endpoint"] for c in read][:1] == ["/api/v2/users/{userId}"]
    assert read[0]["correlation_id"]


def test_an_okta_put_deactivation_of_a_user_not_remembered_reads_it_once(
    bridge: Bridge, sandbox: Any
) -> None:
    """Okta's AIW apps deactivate with a PUT of the whole user, active false (idp-behaviour.md
    1(d)). Sent to a replica that has not seen the user, its read is the job's snapshot read, as
    for the PATCH; the same PUT that also changes the title writes it first, and the job then
    reads for itself (a read from before a write is never handed on)."""
    uid = _in_queues_of_its_own(bridge, sandbox)
    queues = len(sandbox.user(uid)["queues"])
    body = bridge.get(f"/Users/{uid}").get_json()
    body["active"] = False
    directory = bridge.app.extensions["scim_bridge"].directory
    directory.known_users.drop(uid)
    calls = Calls(sandbox)
    off = bridge.put(f"/Users/{uid}", json=body)
    assert off.status_code == 200, off.get_data(as_text=True)
    assert off.get_json()["active"] is False
    drain = {
        SUBJECT: 1,
        USER_QUEUES: 2,
        "DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>": queues,
        TOKENS: 1,
    }
    assert calls.take() == {GET_USER: 1, PATCH_USER: 1, **drain}
    assert sandbox.user(uid)["state"] == "inactive"

    other = _in_queues_of_its_own(bridge, sandbox)
    queues = len(sandbox.user(other)["queues"])
    body = bridge.get(f"/Users/{other}").get_json()
    body.update(active=False, title="Leaver")
    directory.known_users.drop(other)
    calls.take()
    off = bridge.put(f"/Users/{other}", json=body)
    assert off.status_code == 200, off.get_data(as_text=True)
    assert (off.get_json()["active"], off.get_json()["title"]) == (False, "Leaver")
    drain["DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>"] = queues
    # The request's read, the title's PATCH; the job's own snapshot read, its state PATCH.
    assert calls.take() == {GET_USER: 2, PATCH_USER: 2, **drain}
    assert (sandbox.user(other)["state"], sandbox.user(other)["title"]) == ("inactive", "Leaver")
