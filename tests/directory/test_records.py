"""The bridge's local record (directory_resources) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from scim_bridge.directory.errors import AlreadyExists
from scim_bridge.directory.records import LocalFields, Records
from scim_bridge.store.migrate import upgrade


def test_save_get_and_find_by_external_id(engine: sa.Engine) -> None:
    records = Records(engine)
    kept = {"name": {"givenName": "A", "middleName": "\u00e9"}, "nickName": "Al"}
    first = records.save(
        "User", "u1", LocalFields(external_id="x1", attributes=kept), owner="okta", created=True
    )
    assert first.owner == "okta"
    assert first.attributes == kept
    assert first.created_at == first.last_modified_at
    again = records.save("User", "u1", LocalFields(external_id="x2"), owner="entra")
    assert again.owner == "okta"  # set only on creation
    assert again.attributes is None
    assert again.created_at == first.created_at
    assert again.last_modified_at >= first.last_modified_at
    written = records.save("Group", "u1", LocalFields(external_id="x2"))
    assert written.created_at == ""  # not created by the bridge: unknown (RFC 7643 §3.1)
    assert records.ids_by_external_id("User", ["x2"]) == ["u1"]
    assert records.ids_by_external_id("User", ["x1"]) == []
    assert set(records.get_many("User", ["u1", "nope"])) == {"u1"}
    records.delete("Group", "u1")
    assert records.get("Group", "u1") is None


def test_user_names_are_unique_case_insensitively(engine: sa.Engine) -> None:
    """RFC 7643 §4.1.1: userName is caseExact false and unique (issue 13)."""
    records = Records(engine)
    records.save("User", "u1", LocalFields(user_name="JDoe", create_pending=True), owner="okta")
    held = records.by_user_name("User", "jdoe")
    assert held is not None
    assert (held.genesys_id, held.user_name, held.create_pending) == ("u1", "JDoe", True)
    assert records.ids_by_user_name("User", ["JDOE", "other"]) == ["u1"]
    with pytest.raises(AlreadyExists):
        records.save("User", "u2", LocalFields(user_name="jdoe"), owner="okta")
    records.save("Group", "g1", LocalFields(user_name="jdoe"))  # per resource type
    records.release_user_name("User", "u1")
    assert records.by_user_name("User", "jdoe") is None
    assert records.save("User", "u2", LocalFields(user_name="jdoe")).user_name == "jdoe"


def test_a_row_written_before_directory_2_still_loads_and_upgrades(engine: sa.Engine) -> None:
    """Issue 13's migration step on a database holding a row of the earlier shape."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ux_directory_resources_user_name")
        for column in ("user_name", "user_name_key", "attributes", "create_pending"):
            conn.exec_driver_sql(f"ALTER TABLE directory_resources DROP COLUMN {column}")
        conn.exec_driver_sql("DELETE FROM schema_version WHERE step = 'directory-2-user-names'")
        conn.exec_driver_sql(
            "INSERT INTO directory_resources (resource_type, genesys_id, external_id, owner,"
            " given_name, family_name, formatted_name, unset_attributes, created_at,"
            " last_modified_at) VALUES ('User', 'old', 'ext', 'okta', 'Ann', 'Lee', 'Ann Lee',"
            " 'displayName', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
        )
    assert upgrade(engine) == ["directory-2-user-names"]
    records = Records(engine)
    old = records.get("User", "old")
    assert old is not None
    assert (old.given_name, old.family_name, old.formatted_name) == ("Ann", "Lee", "Ann Lee")
    assert old.unset_attributes == frozenset({"displayName"})
    assert (old.attributes, old.user_name, old.create_pending) == (None, None, False)
    records.save("User", "new", LocalFields(user_name="Taken"))
    with pytest.raises(AlreadyExists):  # the unique index exists after the upgrade
        records.save("User", "old", LocalFields(user_name="taken"))
