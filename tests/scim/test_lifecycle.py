"""Okta and Entra provisioning lifecycles as shared/idp-behaviour.md describes them: lookup with
no match, create, update in each form, deactivate, reactivate, delete, 404 after, and a re-hire
of the same login (issue 12). Driven through
the bridge, asserted in the sandbox and in the audit trail."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from tests.fixtures.bridge import Bridge, Client, close_bridge, make_bridge
from tests.scim.replay import load, unique_email


def _finish_jobs(bridge: Bridge) -> None:
    """What the worker does after the IdP's DELETE was answered: the rest of the delete."""
    bridge.app.extensions["scim_bridge"].deprovisioner.worker.run_until_idle(timeout_s=60)


def _filter(client: Client, expression: str) -> dict[str, Any]:
    # Okta sends %20 (O-20), Entra "+" (SCIMReferenceCode#63): both decode the same.
    response = client.get(
        "/Users?" + urllib.parse.urlencode({"filter": expression, "startIndex": 1, "count": 100})
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


# Genesys's search is eventually consistent (genesys-api.md 2.4: TF polls it for 3 minutes): the
# lifecycles run with the sandbox's search a second and a half behind every change.
SEARCH_LAG_S = 1.5


def test_okta_lifecycle(bridge: Bridge, sandbox: Any) -> None:
    sandbox.control.faults(search_lag_s=SEARCH_LAG_S)
    login = unique_email("okta")
    # (a) import / match check with no match: 200 and an empty ListResponse (O-20)
    empty = _filter(bridge, f'userName eq "{login}"')
    assert empty["totalResults"] == 0
    assert empty["Resources"] == []
    # (b) create (O-20) -> 201 with the full user
    r = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 201, r.get_data(as_text=True)
    uid = r.get_json()["id"]
    assert r.headers["Location"].endswith(f"/scim/v2/Users/{uid}")
    # duplicate -> 409 uniqueness (O-20, O-SPEC)
    dup = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert dup.status_code == 409
    assert dup.get_json()["scimType"] == "uniqueness"
    # the match is case-insensitive (O-SPEC: ALL CAPS lookup)
    found = _filter(bridge, f'userName eq "{login.upper()}"')
    assert [u["id"] for u in found["Resources"]] == [uid]
    # (c) update: GET then PUT of the whole object (O-20)
    current = bridge.get(f"/Users/{uid}").get_json()
    current["title"] = "Supervisor"
    r = bridge.put(f"/Users/{uid}", json=current)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert sandbox.control.user(uid)["title"] == "Supervisor"
    # (d) deactivate: path-less replace {active:false} (O-20, OIN)
    r = bridge.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["active"] is False
    assert sandbox.control.user(uid)["state"] == "inactive"
    # still readable and findable (O-CRUD, E-TUT)
    assert bridge.get(f"/Users/{uid}").get_json()["active"] is False
    assert _filter(bridge, f'userName eq "{login}"')["totalResults"] == 1
    # (e) reactivate (inferred body) on the same id
    r = bridge.patch(f"/Users/{uid}", json=load("okta-patch-activate.json"))
    assert r.status_code == 200
    assert r.get_json()["active"] is True
    assert sandbox.control.user(uid)["state"] == "active"
    # AIW apps deactivate with a full PUT active:false (O-20)
    r = bridge.put(
        f"/Users/{uid}", json=load("okta-put-user-deactivate.json", id=uid, username=login)
    )
    assert r.status_code == 200
    assert r.get_json()["active"] is False
    assert sandbox.control.user(uid)["state"] == "inactive"
    # (f) Okta never DELETEs, an operator may: 204, then 404 (RFC 7644 §3.6)
    r = bridge.delete(f"/Users/{uid}")
    assert r.status_code == 204, r.get_data(as_text=True)
    assert bridge.get(f"/Users/{uid}").status_code == 404
    assert bridge.delete(f"/Users/{uid}").status_code == 404
    assert _filter(bridge, f'userName eq "{login}"')["totalResults"] == 0
    # (g) re-hire (issue 12): once the delete is done, Okta's next push of the same login gets
    # the same Genesys id back (201), findable again by userName
    _finish_jobs(bridge)
    r = bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["id"] == uid
    assert sandbox.control.user(uid)["state"] == "active"
    assert [u["id"] for u in _filter(bridge, f'userName eq "{login}"')["Resources"]] == [uid]
    tags = bridge.tags()
    for tag in (
        "scim:user:created",
        "scim:user:updated",
        "scim:user:deactivate-requested",
        "scim:user:reactivate-requested",
        "scim:user:delete-requested",
        "deprovision:user:deactivated",
        "deprovision:user:reactivated",
        "scim:user:rehired",
    ):
        assert tag in tags, tag
    actors = {e["actor"] for e in bridge.audit_events() if e["tag"].startswith("scim:user")}
    assert actors == {"okta-test"}


def test_entra_lifecycle(bridge: Bridge, sandbox: Any) -> None:
    sandbox.control.faults(search_lag_s=SEARCH_LAG_S)
    entra = bridge.entra
    login = unique_email("entra")
    # Test Connection: a random GUID userName -> 200 + empty ListResponse (E-TUT, E-Q)
    probe = _filter(entra, 'userName eq "cf4d78e8-9a6c-4b7b-9d57-3c1d1cdb9f40"')
    assert probe == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }
    assert _filter(entra, 'externalId eq "jyoung"')["totalResults"] == 0
    r = entra.post("/Users", json=load("entra-create-user.json", username=login))
    assert r.status_code == 201, r.get_data(as_text=True)
    uid = r.get_json()["id"]
    # matched by externalId from the bridge's own table (E-TUT attribute table)
    assert [u["id"] for u in _filter(entra, 'externalId eq "jyoung"')["Resources"]] == [uid]
    # manager check: id eq and manager eq, attributes=id (E-TUT Example 4)
    check = entra.get(f'/Users?filter=id eq "{uid}" and manager eq "nobody"&attributes=id')
    assert check.status_code == 200
    assert check.get_json()["totalResults"] == 0
    # legacy update (E-KI)
    r = entra.patch(
        f"/Users/{uid}",
        json=load("entra-patch-legacy-update.json", username=login, workemail=login),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert sandbox.control.user(uid)["name"] == "Legacy Name"
    # disable: "Replace" active "False" (E-KI)
    r = entra.patch(f"/Users/{uid}", json=load("entra-patch-active-string.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["active"] is False
    assert sandbox.control.user(uid)["state"] == "inactive"
    # periodic re-send of the same state is harmless (sentry-docs#16258)
    again = entra.patch(f"/Users/{uid}", json=load("entra-patch-active-flag.json"))
    assert again.status_code == 200
    assert again.get_json()["active"] is False
    # reactivate: "Replace" "True" (inferred)
    r = entra.patch(f"/Users/{uid}", json=load("entra-patch-active-true-string.json"))
    assert r.status_code == 200
    assert r.get_json()["active"] is True
    assert sandbox.control.user(uid)["state"] == "active"
    # hard delete (E-TUT): 204, then 404 / totalResults 0 (E-LA)
    r = entra.delete(f"/Users/{uid}")
    assert r.status_code == 204, r.get_data(as_text=True)
    assert entra.get(f"/Users/{uid}").status_code == 404
    assert _filter(entra, f'userName eq "{login}"')["totalResults"] == 0
    # re-hire (issue 12): the person is assigned again after the hard delete; Entra's lookup
    # finds nothing, it creates, and gets the same Genesys id back
    _finish_jobs(bridge)
    assert _filter(entra, f'userName eq "{login}"')["totalResults"] == 0
    r = entra.post("/Users", json=load("entra-create-user.json", username=login))
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["id"] == uid
    assert r.get_json()["active"] is True
    assert "scim:user:rehired" in bridge.tags()
    events = [e for e in bridge.audit_events() if e["tag"].startswith("scim:user")]
    assert {e["actor"] for e in events} == {"entra-test"}


def test_a_user_the_bridge_deleted_is_gone_from_search_while_search_lags(
    sandbox: Any, tmp_path: Path
) -> None:
    """Search still holds the user as it was before the delete (a long lag here, so that the
    test never races it); SCIM must not show a user the bridge deleted as existing (issue 10)."""
    fast = make_bridge(sandbox, tmp_path, history_job_poll_s=0.05)
    try:
        sandbox.control.faults(search_lag_s=600)
        users = fast.get("/Users?count=100").get_json()["Resources"]
        target = next(
            u
            for u in users
            if u.get("title")
            # a group's queue membership holds the job at its drain for minutes (retried)
            and not any(q["memberBy"] == "group" for q in sandbox.control.user(u["id"])["queues"])
        )
        login, title = target["userName"], target["title"]
        titled = len(_filter(fast, f'title eq "{title}"')["Resources"])
        assert fast.delete(f"/Users/{target['id']}").status_code == 204
        _finish_jobs(fast)
        assert sandbox.control.user(target["id"])["state"] == "deleted"

        assert fast.get(f"/Users/{target['id']}").status_code == 404
        assert _filter(fast, f'userName eq "{login}"')["totalResults"] == 0
        after = _filter(fast, f'title eq "{title}"')
        assert target["id"] not in [u["id"] for u in after["Resources"]]
        assert after["totalResults"] == titled - 1
    finally:
        close_bridge(fast)
