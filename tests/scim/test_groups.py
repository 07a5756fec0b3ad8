"""SCIM Groups over Genesys groups, in the forms Okta (O-20, O-OLD) and Entra (E-TUT, E-KI) use."""

from __future__ import annotations

from typing import Any

from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user, load

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _groups_of(sandbox: Any, user_id: str) -> set[str]:
    return {g["id"] for g in sandbox.control.user(user_id)["groups"]}


def test_okta_push_groups(bridge: Bridge, sandbox: Any) -> None:
    a, b, c = (create_user(bridge)["id"] for _ in range(3))
    # link check by name: no match -> empty list (O-GRP)
    r = bridge.get('/Groups?filter=displayName eq "Okta Sales"')
    assert r.status_code == 200
    assert r.get_json()["totalResults"] == 0
    r = bridge.post("/Groups", json=load("okta-group-create.json", groupname="Okta Sales"))
    assert r.status_code == 201, r.get_data(as_text=True)
    gid = r.get_json()["id"]
    assert r.get_json()["members"] == []
    found = bridge.get('/Groups?filter=displayName eq "okta sales"').get_json()
    assert [g["id"] for g in found["Resources"]] == [gid]
    # duplicate name -> 409 (E-TUT: displayName must be unique)
    dup = bridge.post("/Groups", json=load("okta-group-create.json", groupname="Okta Sales"))
    assert dup.status_code == 409
    # full push: replace members
    r = bridge.patch(f"/Groups/{gid}", json=load("okta-group-members-replace.json", add=a))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _groups_of(sandbox, a) == {gid}
    # mixed remove (value filter) + add in one PATCH (O-20): named members only, so the group's
    # members are not listed and the answer is 204 (Okta accepts 200 or 204: O-20)
    r = bridge.patch(f"/Groups/{gid}", json=load("okta-group-members-mixed.json", remove=a, add=b))
    assert r.status_code == 204
    assert _groups_of(sandbox, a) == set()
    assert _groups_of(sandbox, b) == {gid}
    # AIW: PUT with the full member list (O-20)
    r = bridge.put(
        f"/Groups/{gid}",
        json={"schemas": [GROUP], "displayName": "Okta Sales", "members": [{"value": c}]},
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert [m["value"] for m in r.get_json()["members"]] == [c]
    assert _groups_of(sandbox, b) == set()
    assert _groups_of(sandbox, c) == {gid}
    # delete (O-20): 204, then 404
    assert bridge.delete(f"/Groups/{gid}").status_code == 204
    assert bridge.get(f"/Groups/{gid}").status_code == 404
    assert {"scim:group:created", "scim:group:updated", "scim:group:deleted"} <= set(bridge.tags())


def test_entra_groups(bridge: Bridge, sandbox: Any) -> None:
    entra = bridge.entra
    a, b = (create_user(entra, "entra-create-user.json")["id"] for _ in range(2))
    r = entra.get('/Groups?excludedAttributes=members&filter=displayName eq "Entra Ops"')
    assert r.get_json()["totalResults"] == 0
    r = entra.post("/Groups", json=load("entra-group-create.json", groupname="Entra Ops"))
    assert r.status_code == 201, r.get_data(as_text=True)
    gid = r.get_json()["id"]
    assert r.get_json()["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    found = entra.get(
        '/Groups?filter=externalId eq "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"'
    ).get_json()
    assert [g["id"] for g in found["Resources"]] == [gid]
    r = entra.patch(f"/Groups/{gid}", json=load("entra-group-add-members.json", add=a, add2=b))
    assert r.status_code == 204, r.get_data(as_text=True)  # E-TUT: "Add members" -> 204
    assert _groups_of(sandbox, a) == {gid}
    assert _groups_of(sandbox, b) == {gid}
    got = entra.get(f"/Groups/{gid}?excludedAttributes=members").get_json()
    assert "members" not in got
    r = entra.patch(
        f"/Groups/{gid}?excludedAttributes=members",
        json=load("entra-group-remove-member-flag.json", remove=b),
    )
    assert r.status_code == 204
    assert _groups_of(sandbox, b) == set()
    assert _groups_of(sandbox, a) == {gid}
    r = entra.patch(f"/Groups/{gid}", json=load("entra-group-rename.json", groupname="Entra Ops 2"))
    assert r.get_json()["displayName"] == "Entra Ops 2"
    # removing every member: remove on "members" with no value (RFC 7644 §3.5.2.2)
    r = entra.patch(
        f"/Groups/{gid}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": "members"}],
        },
    )
    assert r.get_json()["members"] == []
    assert _groups_of(sandbox, a) == set()
    assert entra.delete(f"/Groups/{gid}").status_code == 204


def test_group_list_pages(bridge: Bridge) -> None:
    for i in range(3):
        bridge.post("/Groups", json={"schemas": [GROUP], "displayName": f"Paged {i}"})
    everything = bridge.get("/Groups?startIndex=1&count=100").get_json()
    ids = [g["id"] for g in everything["Resources"]]
    paged = []
    for start in range(1, everything["totalResults"] + 1, 2):
        page = bridge.get(f"/Groups?startIndex={start}&count=2").get_json()
        paged += [g["id"] for g in page["Resources"]]
    assert paged == ids
