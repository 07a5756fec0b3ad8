"""The hot path's prepared reads (store/prepared.py) answer what the SQLAlchemy queries they stand
in for answer, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from scim_bridge.deprovision import jobs
from scim_bridge.directory.records import LocalFields, Records
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.prepared import Prepared
from scim_bridge.store.schema import directory_resources, tombstones
from scim_bridge.store.schema import jobs as jobs_table


def test_a_record_read_alone_equals_the_same_record_read_in_a_list(engine: sa.Engine) -> None:
    records = Records(engine)
    kept = {"name": {"givenName": "Ann", "familyName": "L\u00e9e"}, "emails": [{"value": "a@x"}]}
    records.save(
        "User",
        "u1",
        LocalFields(external_id="e1", user_name="Ann@X", attributes=kept, create_pending=True),
        owner="okta",
    )
    records.save("User", "u2", LocalFields(user_name="b@x"), owner="entra")
    alone = records.get("User", "u1")  # prepared (one id)
    listed = records.get_many("User", ["u1", "u2"])  # SQLAlchemy (an IN list)
    assert alone is not None
    assert alone == listed["u1"]
    assert (alone.create_pending, alone.attributes, alone.owner) == (True, kept, "okta")
    assert records.get("User", "u2") == listed["u2"]
    assert records.get("User", "nope") is None
    assert records.get("Group", "u1") is None


def test_user_names_owners_and_tombstones_by_one_key(engine: sa.Engine) -> None:
    records = Records(engine)
    records.save("User", "u1", LocalFields(user_name="Ann@X"), owner="okta")
    records.save("User", "u2", LocalFields(user_name="b@x"))
    assert records.ids_by_user_name("User", ["ANN@x"]) == ["u1"]
    assert records.ids_by_user_name("User", ["ann@x", "B@X"]) == ["u1", "u2"]
    assert records.ids_by_user_name("Group", ["ann@x"]) == []
    assert records.owners("User") == {"okta", None}
    with write_transaction(engine) as conn:
        conn.execute(
            tombstones.insert().values(
                user_id="u1", deleted_at="2026-11-30T00:00:00Z", job_id="j1", detail="{}"
            )
        )
    assert records.tombstoned(["u1"]) == {"u1"}
    assert records.tombstoned(["u2"]) == set()
    assert records.tombstoned(["u1", "u2"]) == {"u1"}


def test_open_jobs_read_alone_equal_the_transactional_read(engine: sa.Engine) -> None:
    with write_transaction(engine) as conn:
        first = jobs.insert(conn, user_id="u1", action="deactivate", requested_by="okta", now=1.5)
        jobs.insert(conn, user_id="u1", action="delete", requested_by="okta", now=2.5)
        jobs.insert(conn, user_id="u2", action="delete", requested_by="okta", now=3.5)
        conn.execute(sa.update(jobs_table).where(jobs_table.c.id == first.id).values(state="done"))
    with engine.connect() as conn:
        expected = jobs.open_for_user(conn, "u1")
    assert [j.action for j in expected] == ["delete"]
    assert jobs.open_for_user_read(engine, "u1") == expected
    assert jobs.open_for_user_read(engine, "nobody") == []


def test_a_prepared_statement_takes_scalar_parameters_only(engine: sa.Engine) -> None:
    listed = Prepared(
        sa.select(directory_resources.c.genesys_id).where(
            directory_resources.c.genesys_id.in_(["a", "b"])
        )
    )
    with pytest.raises(ValueError, match="scalar"):
        listed.rows(engine)
