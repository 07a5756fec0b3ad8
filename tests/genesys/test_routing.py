"""Queue memberships and the active-conversation check (genesys-api.md 3, 2.1)."""

from __future__ import annotations

from scim_bridge.genesys.gateway import SdkGateway
from tests.genesys.helpers import active_users, served


def _member_of_queues(gateway: SdkGateway, sandbox) -> tuple[str, list[dict]]:
    for user in active_users(gateway, 10):
        queues = sandbox.user(user.id)["queues"]
        if len(queues) >= 2:
            return user.id, queues
    raise AssertionError("no seeded user is a member of two queues")


def test_user_queues_lists_joined_and_unjoined(gateway: SdkGateway, sandbox) -> None:
    user_id, queues = _member_of_queues(gateway, sandbox)
    first = queues[0]
    gateway.remove_queue_member(first["id"], user_id)
    gateway.add_queue_member(first["id"], user_id, joined=False)
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


def test_add_queue_member_restores_the_joined_flag(gateway: SdkGateway, sandbox) -> None:
    user_id, _ = _member_of_queues(gateway, sandbox)
    before = {m.queue_id: m.joined for m in gateway.user_queues(user_id)}
    for queue_id in before:
        gateway.remove_queue_member(queue_id, user_id)
    for queue_id, joined in before.items():
        gateway.add_queue_member(queue_id, user_id, joined=joined)
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
