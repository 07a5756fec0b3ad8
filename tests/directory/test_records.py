"""The bridge's local record (directory_resources) on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from scim_bridge.directory.records import LocalFields, Records


def test_save_get_and_find_by_external_id(engine: sa.Engine) -> None:
    records = Records(engine)
    first = records.save("User", "u1", LocalFields(external_id="x1", given_name="A"), owner="okta")
    assert first.owner == "okta"
    assert first.created_at == first.last_modified_at
    again = records.save("User", "u1", LocalFields(external_id="x2"), owner="entra")
    assert again.owner == "okta"  # set only on creation
    assert again.given_name is None
    assert again.created_at == first.created_at
    assert again.last_modified_at >= first.last_modified_at
    records.save("Group", "u1", LocalFields(external_id="x2"))
    assert records.ids_by_external_id("User", ["x2"]) == ["u1"]
    assert records.ids_by_external_id("User", ["x1"]) == []
    assert set(records.get_many("User", ["u1", "nope"])) == {"u1"}
    records.delete("Group", "u1")
    assert records.get("Group", "u1") is None
