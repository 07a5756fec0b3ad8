"""Queue memberships and the active-conversation check (genesys-api.md 3, 2.1)."""

from __future__ import annotations

import uuid

from scim_bridge.genesys.gateway import SdkGateway
from tests.genesys.helpers import active_users, served


def _member_of_queues(gateway: SdkGateway, sandbox) -> tuple[str, list[dict]]:
    for user in active_users(gateway, 10):
        queues = sandbox.user(user.id)["queues"]
        # A group's membership (memberBy=group, seeded) cannot be removed one user at a time.
        if len(queues) >= 2 and all(q["memberBy"] == "user" for q in queues):
            return user.id, queues
    raise AssertionError("no seeded user is a member of two queues")


def test_user_queues_lists_joined_and_unjoined(gateway: SdkGateway, sandbox) -> None:
    user_id, queues = _member_of_queues(gateway, sandbox)
    first = queues[0]
    gateway.remove_queue_member(first["id"], user_id)
    gateway.add_queue_member(first["id"], user_id)  # the sandbox starts a new member unjoined
    memberships = {m.queue_id: m for m in gateway.user_queues(user_id)}
    assert set(memberships) == {q["id"] for q in sandbox.user(user_id)["queues"]}
    assert memberships[first["id"]].joined is False
    stats = sandbox.stats()
    assert served(stats, "GET /api/v2/users/<user_id>/queues") >= 2  # joined=true and false


def test_remove_queue_member_twice_is_success(gateway: SdkGateway, sandbox) -> None:
    user_id, queues = _member_of_queues(gateway, sandbox)
    for queue in queues:
        gateway.remove_queue_member(queue["id"], user_id)
        gateway.remove_queue_member(queue["id"], user_id)  # already gone
    assert gateway.user_queues(user_id) == ()
    assert sandbox.user(user_id)["queues"] == []


def test_re_added_members_get_their_joined_flags_back_in_one_request(
    gateway: SdkGateway, sandbox
) -> None:
    user_id, _ = _member_of_queues(gateway, sandbox)
    before = {m.queue_id: m.joined for m in gateway.user_queues(user_id)}
    first = next(iter(before))
    before[first] = not before[first]  # both flags, whatever the seed gave
    for queue_id in before:
        gateway.remove_queue_member(queue_id, user_id)
    for queue_id in before:
        gateway.add_queue_member(queue_id, user_id)
    start = sandbox.stats()
    gateway.set_queues_joined(user_id, before)
    assert (
        served(sandbox.stats(), "PATCH /api/v2/users/<user_id>/queues")
        - served(start, "PATCH /api/v2/users/<user_id>/queues")
        == 1
    )
    assert {m.queue_id: m.joined for m in gateway.user_queues(user_id)} == before


def test_conversation_status(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    idle = gateway.conversation_status(user.id)
    assert (idle.active, idle.acw, idle.busy) == (0, 0, False)
    sandbox.set_conversation(user.id, True)
    busy = gateway.conversation_status(user.id)
    assert busy.active == 1
    assert busy.busy
    sandbox.set_conversation(user.id, False)
    assert not gateway.conversation_status(user.id).busy
    sandbox.set_conversation(user.id, True, media_type="chat")  # any medium counts
    assert gateway.conversation_status(user.id).active == 1


# --- bulk removal: POST /api/v2/routing/queues/{q}/members?delete=true (genesys-api.md 3) -------

BULK = "POST /api/v2/routing/queues/<queue_id>/members"
SINGLE = "DELETE /api/v2/routing/queues/<queue_id>/members/<user_id>"


def _queue_with_members(sandbox, gateway: SdkGateway, least: int) -> tuple[str, list[str]]:
    by_queue: dict[str, list[str]] = {}
    for user in gateway.list_users(state="active", page_size=100).items:
        for queue in sandbox.user(user.id)["queues"]:
            if queue["memberBy"] == "user":  # a group's membership is not removed one by one
                by_queue.setdefault(queue["id"], []).append(user.id)
    queue_id, members = max(by_queue.items(), key=lambda item: len(item[1]))
    assert len(members) >= least, "no seeded queue has enough members"
    return queue_id, members


def _in_queue(sandbox, user_id: str, queue_id: str) -> bool:
    return queue_id in {q["id"] for q in sandbox.user(user_id)["queues"]}


def test_remove_queue_members_takes_many_users_in_one_request(gateway: SdkGateway, sandbox) -> None:
    queue_id, members = _queue_with_members(sandbox, gateway, 3)
    before = served(sandbox.stats(), BULK, 204)
    assert gateway.remove_queue_members(queue_id, members) == {}
    assert served(sandbox.stats(), BULK, 204) == before + 1
    assert not any(_in_queue(sandbox, uid, queue_id) for uid in members)
    # Again, when every one of them is gone already: success, nothing refused.
    assert gateway.remove_queue_members(queue_id, members) == {}


def test_remove_queue_members_sends_at_most_100_a_request(gateway: SdkGateway, sandbox) -> None:
    queue_id, members = _queue_with_members(sandbox, gateway, 2)
    strangers = [str(uuid.UUID(int=i + 1, version=4)) for i in range(150)]
    before = served(sandbox.stats(), BULK, 204)
    assert gateway.remove_queue_members(queue_id, [*strangers, *members]) == {}
    assert served(sandbox.stats(), BULK, 204) == before + 2  # 152 ids: 100, then 52
    assert served(sandbox.stats(), BULK, 400) == 0
    assert not any(_in_queue(sandbox, uid, queue_id) for uid in members)


def test_a_group_membership_refuses_only_itself(gateway: SdkGateway, sandbox) -> None:
    """A group's member in the list makes Genesys refuse the whole request (UNCONFIRMED, the
    sandbox's stricter reading); the others are still removed, one request each."""
    group = max(gateway.list_groups().items, key=lambda g: g.member_count)
    queue_id, members = _queue_with_members(sandbox, gateway, 2)
    by_group = sandbox.route_group(queue_id, group.id)
    assert by_group, "no member of the group was new to the queue"
    direct = [uid for uid in members if uid not in by_group][:2]
    refused = gateway.remove_queue_members(queue_id, [*direct, by_group[0]])
    assert set(refused) == {by_group[0]}
    assert refused[by_group[0]].status == 400
    assert _in_queue(sandbox, by_group[0], queue_id)
    assert not any(_in_queue(sandbox, uid, queue_id) for uid in direct)
    stats = sandbox.stats()
    assert served(stats, BULK, 400) == 1
    assert served(stats, SINGLE, 204) == len(direct)


def test_remove_queue_members_of_a_queue_that_is_gone_is_success(
    gateway: SdkGateway, sandbox
) -> None:
    user = active_users(gateway)[0]
    gone = str(uuid.UUID(int=7, version=4))
    assert gateway.remove_queue_members(gone, [user.id]) == {}
    assert served(sandbox.stats(), BULK, 404) == 1


# --- memberships of many users (genesys-api.md 3) ---------------------------------------------------

USER_QUEUES = "GET /api/v2/users/<user_id>/queues"
LIST_QUEUES = "GET /api/v2/routing/queues"
QUEUE_MEMBERS = "GET /api/v2/routing/queues/<queue_id>/members"


def test_queue_memberships_of_many_users_read_through_the_queues(
    gateway: SdkGateway, sandbox
) -> None:
    ids = [u.id for u in gateway.list_users(state="active", page_size=100).items][:30]
    # One of them unjoined somewhere, one with no queue at all: both must come out as they are.
    expected = {uid: {q["id"]: q["joined"] for q in sandbox.user(uid)["queues"]} for uid in ids}
    assert any(False in by.values() for by in expected.values())
    assert any(not by for by in expected.values())
    before = sandbox.stats()
    found = gateway.queue_memberships(ids)
    stats = sandbox.stats()
    assert {uid: {m.queue_id: m.joined for m in ms} for uid, ms in found.items()} == expected
    assert served(stats, USER_QUEUES) == served(before, USER_QUEUES)  # none per user
    assert served(stats, LIST_QUEUES) - served(before, LIST_QUEUES) == 1
    queues = {m.queue_id for ms in found.values() for m in ms}
    members = served(stats, QUEUE_MEMBERS) - served(before, QUEUE_MEMBERS)
    assert len(queues) <= members < 2 * len(ids) - 1


def test_queue_memberships_of_a_few_users_read_each_one(gateway: SdkGateway, sandbox) -> None:
    ids = [u.id for u in active_users(gateway, 3)]
    before = sandbox.stats()
    found = gateway.queue_memberships(ids)
    stats = sandbox.stats()
    assert served(stats, USER_QUEUES) - served(before, USER_QUEUES) == 2 * len(ids)
    assert served(stats, LIST_QUEUES) == served(before, LIST_QUEUES)
    assert found == {uid: gateway.user_queues(uid) for uid in ids}
