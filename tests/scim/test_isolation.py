"""Two IdPs' tokens on one org (trial-sec B3, B4; trial-okta 9): for a token, a resource it cannot
reach is indistinguishable from one that does not exist: the same status, the same detail (ids
aside), the same side effects (no job, nothing left in Genesys). A uniqueness 409 cannot be
avoided (the name is taken), but its detail names nothing the token cannot reach. Operators still
see every refusal as ``scim:access:denied``.
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

import sqlalchemy as sa

from scim_bridge.store.schema import jobs
from tests.fixtures.bridge import Bridge, Client
from tests.scim.replay import load

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NOBODY = "11111111-1111-1111-1111-111111111111"


def _create(client: Client, email: str) -> str:
    response = client.post("/Users", json=load("okta-create-user.json", username=email))
    assert response.status_code == 201, response.get_data(as_text=True)
    return str(response.get_json()["id"])


def _email() -> str:
    return f"iso.{uuid.uuid4().hex[:10]}@example.com"


def _detail(response: Any, *ids: str) -> str:
    """The error's detail with the ids asked about blanked: what is left must not differ."""
    detail = str(response.get_json()["detail"])
    for i in ids:
        detail = detail.replace(i, "<id>")
    return detail


def _job_count(bridge: Bridge, user_id: str) -> int:
    with bridge.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.user_id == user_id)
        return int(conn.execute(query).scalar_one())


def _denied(bridge: Bridge, user_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in bridge.audit_events()
        if e["tag"] == "scim:access:denied" and user_id in str(e["detail"])
    ]


def _activate(active: bool) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": active}}]}


def test_delete_of_another_tokens_user_answers_as_a_delete_of_no_user(
    bridge: Bridge, sandbox: Any
) -> None:
    okta, entra = bridge, bridge.entra
    owned = _create(okta, _email())
    theirs = entra.delete(f"/Users/{owned}")
    nobody = entra.delete(f"/Users/{NOBODY}")
    assert theirs.status_code == nobody.status_code == 404
    assert _detail(theirs, owned) == _detail(nobody, NOBODY)
    # Neither leaves a job behind (a nonexistent id must not fill the failed-job list).
    assert _job_count(bridge, owned) == 0
    assert _job_count(bridge, NOBODY) == 0
    assert sandbox.user(owned)["state"] == "active"
    assert _denied(bridge, owned)  # operators still see the refusal


def test_a_uniqueness_conflict_names_no_user_the_token_cannot_reach(bridge: Bridge) -> None:
    okta, entra = bridge, bridge.entra
    email = _email()
    owned = _create(okta, email)
    created = entra.post("/Users", json=load("okta-create-user.json", username=email))
    assert created.status_code == 409
    assert created.get_json()["scimType"] == "uniqueness"
    assert owned not in created.get_data(as_text=True)
    assert "taken" in created.get_json()["detail"]
    # The same on a rename of the token's own user onto that userName.
    mine = _create(entra, _email())
    renamed = entra.patch(
        f"/Users/{mine}",
        json={
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "userName", "value": email.upper()}],
        },
    )
    assert renamed.status_code == 409
    assert owned not in renamed.get_data(as_text=True)


def test_reactivating_a_user_another_token_is_deleting_answers_as_no_user(
    bridge: Bridge, sandbox: Any
) -> None:
    okta, entra = bridge, bridge.entra
    owned = _create(okta, _email())
    sandbox.control.set_conversation(owned, True)  # the delete waits for the call to end
    assert okta.delete(f"/Users/{owned}").status_code == 204
    theirs = entra.patch(f"/Users/{owned}", json=_activate(True))
    nobody = entra.patch(f"/Users/{NOBODY}", json=_activate(True))
    assert theirs.status_code == nobody.status_code == 404
    assert _detail(theirs, owned) == _detail(nobody, NOBODY)
    # The owner is still told why.
    own = okta.patch(f"/Users/{owned}", json=_activate(True))
    assert own.status_code == 404
    assert "being deleted" in own.get_json()["detail"]


def _group_named(client: Client, name: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'displayName eq "{name}"'})
    response = client.get(f"/Groups?{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(response.get_json()["Resources"])


def test_a_group_with_an_unreachable_or_unknown_member_is_refused_alike_and_not_created(
    bridge: Bridge,
) -> None:
    okta, entra = bridge, bridge.entra
    owned = _create(okta, _email())
    answers = {}
    for member in (owned, NOBODY):
        name = f"iso-{uuid.uuid4().hex[:8]}"
        body = {"schemas": [GROUP], "displayName": name, "members": [{"value": member}]}
        response = entra.post("/Groups", json=body)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.get_json()["scimType"] == "invalidValue"
        answers[member] = _detail(response, member)
        # Nothing was written to Genesys: no group by that name, for any token.
        assert _group_named(okta, name) == []
        assert _group_named(entra, name) == []
        # So the IdP's retry without the bad member creates it (not a 409 forever).
        retry = entra.post("/Groups", json={"schemas": [GROUP], "displayName": name})
        assert retry.status_code == 201, retry.get_data(as_text=True)
        assert "scim:group:created" in bridge.tags()
    assert answers[owned] == answers[NOBODY]
    assert _denied(bridge, owned)


def test_adding_an_unreachable_or_unknown_member_is_refused_alike(bridge: Bridge) -> None:
    okta, entra = bridge, bridge.entra
    owned = _create(okta, _email())
    created = entra.post(
        "/Groups", json={"schemas": [GROUP], "displayName": f"iso-{uuid.uuid4().hex[:8]}"}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    gid = created.get_json()["id"]
    answers = {}
    for member in (owned, NOBODY):
        body = {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
        }
        response = entra.patch(f"/Groups/{gid}", json=body)
        assert response.status_code == 400, response.get_data(as_text=True)
        answers[member] = _detail(response, member)
    assert answers[owned] == answers[NOBODY]
    assert entra.get(f"/Groups/{gid}").get_json().get("members", []) == []


def test_a_delete_sent_again_is_a_recorded_refusal_not_a_second_delete(
    bridge: Bridge, sandbox: Any
) -> None:
    """Entra trial bug 4: the second DELETE of a deleted user answered 404 but left a second
    `done` delete job with no evidence and a `done` request event. It is a refusal: 404, the
    audit's request outcome `not-found`, and the user's only job is the real delete."""
    uid = _create(bridge, _email())
    assert bridge.delete(f"/Users/{uid}").status_code == 204
    bridge.app.extensions["scim_bridge"].deprovisioner.worker.run_until_idle(timeout_s=60)
    assert sandbox.user(uid)["state"] == "deleted"
    assert _job_count(bridge, uid) == 1

    again = bridge.delete(f"/Users/{uid}")

    assert again.status_code == 404
    assert again.get_json()["status"] == "404"
    assert _job_count(bridge, uid) == 1
    refused = [e for e in bridge.audit_events() if e["tag"] == "scim:user:refused"]
    assert refused
    assert refused[-1]["scim_id"] == uid
    assert refused[-1]["outcome"] == "not-found"
    requested = [
        e
        for e in bridge.audit_events()
        if e["tag"] == "scim:user:delete-requested" and e["scim_id"] == uid
    ]
    assert len(requested) == 1  # the first, real delete only
