"""Users over HTTP: paging, projection, filters on state, and the deprovisioning answers of
DESIGN.md "What the IdP is told" (queued success, SCIM_ACK=strict 503, the open-job extension)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.scim.replay import create_user, load

BRIDGE = "urn:ietf:params:scim:schemas:extension:scim-bridge:2.0:User"


def test_paging_is_stable_and_covers_every_user(bridge: Bridge) -> None:
    """O-20 import: startIndex=1, 101, ...; E-LA pages with count=5 and expects startIndex echoed."""
    everything = bridge.get("/Users?startIndex=1&count=100").get_json()
    ids = [u["id"] for u in everything["Resources"]]
    assert len(ids) == everything["totalResults"]
    for size in (5, 3):
        seen: list[str] = []
        for start in range(1, everything["totalResults"] + 1, size):
            page = bridge.get(f"/Users?startIndex={start}&count={size}").get_json()
            assert page["startIndex"] == start
            assert isinstance(page["totalResults"], int)
            seen += [u["id"] for u in page["Resources"]]
        assert seen == ids
    odd = bridge.get("/Users?startIndex=4&count=3").get_json()
    assert [u["id"] for u in odd["Resources"]] == ids[3:6]


def test_attributes_and_excluded_attributes(bridge: Bridge) -> None:
    uid = create_user(bridge)["id"]
    slim = bridge.get(f"/Users/{uid}?attributes=userName,name.givenName").get_json()
    assert set(slim) == {"schemas", "id", "userName", "name"}
    assert slim["name"] == {"givenName": "Test"}
    listed = bridge.get("/Users?attributes=id&count=2").get_json()["Resources"]
    assert all(set(u) == {"schemas", "id"} for u in listed)
    lean = bridge.get(f"/Users/{uid}?excludedAttributes=emails,meta,id").get_json()
    assert "emails" not in lean
    assert "meta" not in lean
    assert lean["id"] == uid  # always returned


def test_inactive_users_are_found_by_filters(bridge: Bridge) -> None:
    uid = create_user(bridge)["id"]
    assert bridge.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json")).status_code == 200
    inactive = bridge.get("/Users?filter=active eq false&count=100").get_json()
    assert uid in [u["id"] for u in inactive["Resources"]]
    assert all(u["active"] is False for u in inactive["Resources"])


def test_deactivation_behind_an_active_conversation(bridge: Bridge, sandbox: Any) -> None:
    """Success once durably queued (DESIGN.md): 204, since a 200 could only carry the user still
    active (RFC 7644 §3.5.2); the open job shows in the bridge's extension of a GET."""
    uid = create_user(bridge)["id"]
    sandbox.control.set_conversation(uid, True)
    r = bridge.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json"))
    assert r.status_code == 204, r.get_data(as_text=True)
    assert not r.get_data()
    assert sandbox.control.user(uid)["state"] == "active"  # not cut yet: waiting for the call
    job = bridge.get(f"/Users/{uid}").get_json()[BRIDGE]["deprovisioning"]
    assert job["action"] == "deactivate"
    assert job["jobId"]


def test_strict_ack_answers_503_until_access_is_cut(sandbox: Any, tmp_path: Path) -> None:
    strict = make_bridge(sandbox, tmp_path, ack_mode="strict")
    try:
        uid = create_user(strict)["id"]
        sandbox.control.set_conversation(uid, True)
        r = strict.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json"))
        assert r.status_code == 503, r.get_data(as_text=True)
        assert int(r.headers["Retry-After"]) >= 1
        assert r.get_json()["status"] == "503"
        # a user the engine can cut at once: 200 in strict mode too
        other = create_user(strict)["id"]
        r = strict.patch(f"/Users/{other}", json=load("okta-patch-deactivate.json"))
        assert r.status_code == 200, r.get_data(as_text=True)
        assert sandbox.control.user(other)["state"] == "inactive"
    finally:
        close_bridge(strict)


def test_delete_of_unknown_user_is_404(bridge: Bridge) -> None:
    assert bridge.delete("/Users/00000000-0000-0000-0000-000000000000").status_code == 404


def test_discovery(bridge: Bridge) -> None:
    spc = bridge.get("/ServiceProviderConfig").get_json()
    assert spc["patch"]["supported"] is True
    assert spc["etag"]["supported"] is True
    schemas = {s["id"] for s in bridge.get("/Schemas").get_json()["Resources"]}
    assert BRIDGE in schemas
    assert bridge.get(f"/Schemas/{BRIDGE}").status_code == 200
    types = bridge.get("/ResourceTypes").get_json()["Resources"]
    assert {t["id"] for t in types} == {"User", "Group"}


def _modified(bridge: Bridge, uid: str) -> str:
    stamp: str = bridge.get(f"/Users/{uid}").get_json()["meta"]["lastModified"]
    return stamp


def test_a_state_change_through_the_bridge_moves_last_modified(bridge: Bridge) -> None:
    """Okta bug 3, Entra bug 3: deactivation and reactivation are writes through the bridge
    (docs/scim-mapping.md; RFC 7643 §3.1 lastModified), by PATCH (either IdP's form) or PUT."""
    made = create_user(bridge)
    uid, user_name = made["id"], made["userName"]
    stamps = [made["meta"]["lastModified"]]
    steps = [
        lambda: bridge.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json")),
        lambda: bridge.patch(f"/Users/{uid}", json=load("okta-patch-activate.json")),
        lambda: bridge.patch(f"/Users/{uid}", json=load("entra-patch-active-string.json")),
        lambda: bridge.put(
            f"/Users/{uid}",
            json={
                **load("okta-put-user-deactivate.json", id=uid, username=user_name),
                "active": True,
            },
        ),
    ]
    for step in steps:
        r = step()
        assert r.status_code in (200, 204), r.get_data(as_text=True)
        stamps.append(_modified(bridge, uid))
        if r.status_code == 200:
            assert r.get_json()["meta"]["lastModified"] == stamps[-1]
    assert stamps == sorted(set(stamps)), stamps  # each change moved it forward
    # A repeated "already so" changes nothing: lastModified stays.
    assert bridge.patch(f"/Users/{uid}", json=load("okta-patch-activate.json")).status_code == 200
    assert _modified(bridge, uid) == stamps[-1]


def test_created_is_only_for_users_the_bridge_created(bridge: Bridge) -> None:
    """Okta bug 4: RFC 7643 §3.1 created is when the resource was added to the service
    provider; for a user Genesys held before, the bridge does not know it, and its first write
    (here a deactivation, then a PUT) is not that time."""
    listed = bridge.get("/Users?count=20").get_json()["Resources"]
    seeded = [u for u in listed if "created" not in u["meta"]][:2]
    assert len(seeded) == 2
    first, second = seeded[0]["id"], seeded[1]["id"]
    r = bridge.patch(f"/Users/{first}", json=load("okta-patch-deactivate.json"))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "created" not in r.get_json()["meta"]
    assert "lastModified" in r.get_json()["meta"]
    echo = {k: v for k, v in seeded[1].items() if k != "meta"}
    r = bridge.put(f"/Users/{second}", json={**echo, "title": "Changed"})
    assert r.status_code == 200, r.get_data(as_text=True)
    for uid in (first, second):
        meta = bridge.get(f"/Users/{uid}").get_json()["meta"]
        assert "created" not in meta
        assert "lastModified" in meta
    made = create_user(bridge)
    assert made["meta"]["created"] <= made["meta"]["lastModified"]
    assert (
        bridge.get(f"/Users/{made['id']}").get_json()["meta"]["created"] == made["meta"]["created"]
    )


def test_if_none_match_on_get_answers_304_when_the_version_is_current(bridge: Bridge) -> None:
    """Okta bug 8: RFC 7644 §3.14 (etag.supported is true): If-None-Match naming the current
    version is 304 with the ETag and no body; any other version is the full 200."""
    uid = create_user(bridge)["id"]
    group = bridge.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": f"g-{uid}",
        },
    )
    assert group.status_code == 201
    for path in (f"/Users/{uid}", f"/Groups/{group.get_json()['id']}"):
        tag = bridge.get(path).headers["ETag"]
        for header in (tag, f'"x", {tag}', tag.removeprefix("W/"), "*"):
            r = bridge.get(path, headers={"If-None-Match": header})
            assert r.status_code == 304, (path, header)
            assert r.headers["ETag"] == tag
            assert r.get_data() == b""
            assert "Content-Type" not in r.headers
        r = bridge.get(path, headers={"If-None-Match": 'W/"999999"'})
        assert r.status_code == 200
        assert r.get_json()["meta"]["version"] == tag
    # A change makes the old version stale: the full answer again.
    old = bridge.get(f"/Users/{uid}").headers["ETag"]
    assert bridge.patch(f"/Users/{uid}", json=load("okta-patch-deactivate.json")).status_code == 200
    r = bridge.get(f"/Users/{uid}", headers={"If-None-Match": old})
    assert r.status_code == 200
    assert r.headers["ETag"] != old
