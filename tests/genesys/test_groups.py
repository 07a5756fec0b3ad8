"""Groups through the gateway (genesys-api.md 7)."""

from __future__ import annotations

import pytest

from scim_bridge.genesys.errors import Conflict, NotFound, VersionConflict
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import CallRecord, Criterion
from tests.fixtures.genesys import MakeGateway
from tests.genesys.helpers import active_users, served


def test_create_read_update_delete(gateway: SdkGateway) -> None:
    created = gateway.create_group("Bridge Escalations", description="tier 2")
    assert (created.name, created.description, created.type) == (
        "Bridge Escalations",
        "tier 2",
        "official",
    )
    assert gateway.get_group(created.id) == created
    renamed = gateway.update_group(created.id, name="Bridge Escalations EU")
    assert renamed.name == "Bridge Escalations EU"
    assert renamed.description == "tier 2"  # None leaves it as it is
    assert renamed.version > created.version
    gateway.delete_group(created.id)
    with pytest.raises(NotFound):
        gateway.get_group(created.id)


def test_update_with_a_stale_version_is_a_version_conflict(gateway: SdkGateway) -> None:
    group = gateway.create_group("Bridge Versioned")
    gateway.update_group(group.id, name="Bridge Versioned 2")
    with pytest.raises(VersionConflict):
        gateway.update_group(group.id, name="Bridge Versioned 3", version=group.version)


def test_a_taken_name_is_a_conflict(gateway: SdkGateway) -> None:
    gateway.create_group("Bridge Unique")
    with pytest.raises(Conflict) as caught:
        gateway.create_group("Bridge Unique")
    assert type(caught.value) is Conflict


def test_list_and_search(gateway: SdkGateway, sandbox) -> None:
    listed = gateway.list_groups(page_size=100)
    assert listed.total == sandbox.info()["groups"] == len(listed.items)
    names = [g.name for g in listed.items]
    assert names == sorted(names)
    target = listed.items[0]
    found = gateway.search_groups([Criterion(type="EXACT", fields=("name",), value=target.name)])
    assert [g.id for g in found.items] == [target.id]


def test_members_add_list_remove_in_chunks(gateway: SdkGateway, sandbox) -> None:
    users = active_users(gateway, 5)
    group = gateway.create_group("Bridge Members")
    ids = [u.id for u in users]
    gateway.add_group_members(group.id, ids)
    assert sorted(gateway.group_member_ids(group.id)) == sorted(ids)
    gateway.remove_group_members(group.id, ids[:3])
    assert sorted(gateway.group_member_ids(group.id)) == sorted(ids[3:])
    gateway.remove_group_members(group.id, ids[:3])  # already gone: still fine


def test_add_members_rereads_the_version_on_409(
    gateway: SdkGateway, make_gateway: MakeGateway, sandbox
) -> None:
    user = active_users(gateway)[0]
    group = gateway.create_group("Bridge Racing")
    races = {"left": 2}

    def rename_after_read(record: CallRecord) -> None:
        # Another admin edits the group between the gateway's read and its POST.
        reads_group = record.endpoint == "/api/v2/groups/{groupId}" and record.method == "GET"
        if reads_group and races["left"]:
            races["left"] -= 1
            other_admin.update_group(group.id, name=f"Bridge Racing {races['left']}")

    other_admin = make_gateway()
    gateway.add_observer(rename_after_read)
    gateway.add_group_members(group.id, [user.id])
    assert gateway.group_member_ids(group.id) == (user.id,)
    assert served(sandbox.stats(), "POST /api/v2/groups/<group_id>/members", 409) == 2
