"""Users through the gateway against the sandbox (genesys-api.md 2)."""

from __future__ import annotations

import pytest

from scim_bridge.genesys.errors import ActiveConversation, Conflict, NotFound, VersionConflict
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import CallRecord, ContactInfo, Criterion, UserFields
from tests.genesys.helpers import Recorder, active_users, served

PATCH_USER = "PATCH /api/v2/users/<user_id>"


def test_get_user_and_deleted_users(gateway: SdkGateway) -> None:
    user = active_users(gateway)[0]
    assert gateway.get_user(user.id) == user
    gateway.delete_user(user.id)
    with pytest.raises(NotFound):
        gateway.get_user(user.id)  # 2.1: a default GET does not see a deleted user
    deleted = gateway.get_user(user.id, include_deleted=True)
    assert deleted.state == "deleted"
    with pytest.raises(NotFound):
        gateway.get_user("00000000-0000-0000-0000-000000000000", include_deleted=True)


def test_get_users_reads_in_bulk_any_state(gateway: SdkGateway) -> None:
    a, b, c = active_users(gateway, 3)
    gateway.set_state(b.id, "inactive")
    gateway.delete_user(c.id)
    missing = "00000000-0000-0000-0000-000000000000"
    found = gateway.get_users([a.id, b.id, c.id, missing, a.id])
    assert list(found) == [a.id, b.id, c.id]
    assert [u.state for u in found.values()] == ["active", "inactive", "deleted"]


def test_list_users_pages_by_name(gateway: SdkGateway, sandbox) -> None:
    first = gateway.list_users(page_size=7)
    second = gateway.list_users(page_size=7, page_number=2)
    names = [u.name for u in first.items + second.items]
    assert names == sorted(names)
    assert not {u.id for u in first.items} & {u.id for u in second.items}
    assert first.total == sandbox.info()["users"]  # state=any: deleted users included
    assert gateway.list_users(state="inactive").total == sandbox.info()["states"]["inactive"]


def test_search_finds_inactive_users_unless_state_is_named(gateway: SdkGateway) -> None:
    user = active_users(gateway)[0]
    gateway.set_state(user.id, "inactive")
    by_email = Criterion(type="EXACT", fields=("email",), value=user.email)
    page = gateway.search_users([by_email])
    assert [u.id for u in page.items] == [user.id]
    active_only = Criterion(type="EXACT", fields=("state",), values=("active",))
    assert gateway.search_users([by_email, active_only]).items == ()


def test_search_never_returns_deleted_users(gateway: SdkGateway) -> None:
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    by_email = Criterion(type="EXACT", fields=("email",), value=user.email)
    assert gateway.search_users([by_email]).items == ()


def test_create_user_then_a_duplicate_email_is_a_conflict(gateway: SdkGateway) -> None:
    fields = UserFields(
        name="Zoe Quinn",
        email="zoe.quinn@example.com",
        department="Sales",
        title="Agent",
        preferred_name="Zo",
        employee_id="E999",
        addresses=(ContactInfo(address="+3531234567", media_type="PHONE", type="WORK"),),
    )
    created = gateway.create_user(fields)
    assert (created.name, created.email, created.state) == ("Zoe Quinn", fields.email, "active")
    assert (created.preferred_name, created.employee_id) == ("Zo", "E999")
    assert created.addresses[0].address == "+3531234567"
    with pytest.raises(Conflict) as caught:
        gateway.create_user(UserFields(name="Other", email=fields.email))
    assert type(caught.value) is Conflict
    assert caught.value.code == "general.conflict"


def test_a_deleted_users_email_is_still_taken(gateway: SdkGateway) -> None:
    """2.5: duplicate email, a deleted user's included -> 409 general.conflict."""
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    with pytest.raises(Conflict):
        gateway.create_user(UserFields(name="Again", email=user.email), state="inactive")


def test_update_user_with_a_stale_version_is_a_version_conflict(
    gateway: SdkGateway, sandbox
) -> None:
    """SCIM If-Match: an explicit version is a condition, not a hint; no retry."""
    user = active_users(gateway)[0]
    sandbox.bump_version(user.id)  # a concurrent editor
    with pytest.raises(VersionConflict) as caught:
        gateway.update_user(user.id, UserFields(title="Lead"), version=user.version)
    assert caught.value.transient
    assert served(sandbox.stats(), PATCH_USER) == 1


def test_update_user_without_a_version_reads_it(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.bump_version(user.id)
    updated = gateway.update_user(user.id, UserFields(title="Lead", department="Ops"))
    assert (updated.title, updated.department) == ("Lead", "Ops")
    assert updated.version > user.version + 1
    assert sandbox.user(user.id)["title"] == "Lead"


class ConcurrentEditor:
    """An observer that bumps a user's version right after the gateway has read it, the first
    ``times`` times: a real race between the gateway's GET and its PATCH."""

    def __init__(self, sandbox, user_id: str, times: int) -> None:
        self.sandbox, self.user_id, self.left = sandbox, user_id, times

    def __call__(self, record: CallRecord) -> None:
        if record.method == "GET" and record.endpoint == "/api/v2/users/{userId}" and self.left:
            self.left -= 1
            self.sandbox.bump_version(self.user_id)


def test_update_user_rereads_and_retries_on_409(gateway: SdkGateway, sandbox) -> None:
    """A version conflict between the gateway's read and its PATCH (409, 2.3) is re-read and
    retried, bounded (TF: 10 times)."""
    user = active_users(gateway)[0]
    gateway.add_observer(ConcurrentEditor(sandbox, user.id, 3))
    updated = gateway.update_user(user.id, UserFields(title="Lead"))
    assert updated.title == "Lead"
    assert served(sandbox.stats(), PATCH_USER, 409) == 3


def test_manager_can_be_set_and_cleared(gateway: SdkGateway) -> None:
    user, manager = active_users(gateway, 2)
    assert gateway.update_user(user.id, UserFields(manager_id=manager.id)).manager_id == manager.id
    assert gateway.update_user(user.id, UserFields(manager_id="")).manager_id is None


def test_set_state_is_idempotent(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    inactive = gateway.set_state(user.id, "inactive")
    assert inactive.state == "inactive"
    again = gateway.set_state(user.id, "inactive")
    assert again == inactive
    assert served(sandbox.stats(), PATCH_USER) == 1


def test_set_state_sends_the_state_alone(gateway: SdkGateway, sandbox) -> None:
    """2.3: "If specified, it is the only modifiable field" (the sandbox answers 400 otherwise)."""
    user = active_users(gateway)[0]
    sandbox.bump_version(user.id)
    assert gateway.set_state(user.id, "inactive").state == "inactive"
    assert sandbox.user(user.id)["state"] == "inactive"


def test_set_state_retries_a_version_race(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    gateway.add_observer(ConcurrentEditor(sandbox, user.id, 2))
    assert gateway.set_state(user.id, "inactive").state == "inactive"
    assert served(sandbox.stats(), PATCH_USER, 409) == 2


def test_set_state_gives_up_after_the_bounded_retries(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    gateway.add_observer(ConcurrentEditor(sandbox, user.id, 1000))
    with pytest.raises(VersionConflict):
        gateway.set_state(user.id, "inactive")
    assert served(sandbox.stats(), PATCH_USER, 409) == 10


def test_deactivation_during_an_active_conversation(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.set_conversation(user.id, True)
    with pytest.raises(ActiveConversation) as caught:
        gateway.set_state(user.id, "inactive")
    assert caught.value.transient
    assert sandbox.user(user.id)["state"] == "active"
    sandbox.set_conversation(user.id, False)
    assert gateway.set_state(user.id, "inactive").state == "inactive"


def test_restore_a_deleted_user(gateway: SdkGateway, sandbox) -> None:
    """2.3/2.4: PATCH state=active with the version read through ?state=deleted."""
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    restored = gateway.set_state(user.id, "active")
    assert restored.state == "active"
    assert sandbox.user(user.id)["state"] == "active"


def test_delete_is_soft_and_idempotent(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    recorder = Recorder()
    gateway.add_observer(recorder)
    gateway.delete_user(user.id)
    gateway.delete_user(user.id)  # already deleted: success
    assert sandbox.user(user.id)["state"] == "deleted"
    # DELETE 200; DELETE 404, then one read: ?state=deleted (expected deleted) answers it
    assert recorder.statuses("/api/v2/users/{userId}") == [200, 404, 200]


def test_deleting_an_unknown_user_is_not_found(gateway: SdkGateway) -> None:
    with pytest.raises(NotFound):
        gateway.delete_user("00000000-0000-0000-0000-000000000000")


def test_set_state_deleted_deletes(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    assert gateway.set_state(user.id, "deleted").state == "deleted"
    assert sandbox.user(user.id)["state"] == "deleted"


def test_a_general_conflict_on_a_state_change_is_not_retried(gateway: SdkGateway, sandbox) -> None:
    user = active_users(gateway)[0]
    sandbox.fail_next("/api/v2/users/", status=409, count=5, method="PATCH")
    with pytest.raises(Conflict) as caught:
        gateway.set_state(user.id, "inactive")
    assert caught.value.code == "general.conflict"
    assert served(sandbox.stats(), PATCH_USER, 409) == 1
