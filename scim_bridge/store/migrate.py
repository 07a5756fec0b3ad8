"""The bridge creates and upgrades its own schema: ``upgrade(engine)`` at start-up.

``STEPS`` is an ordered list of named steps; ``schema_version`` records which ones have run.
A part that adds a table declares it in ``store/schema.py`` and appends a step here::

    Step("jobs-1-tables", create_tables("jobs")),

and a later change to an existing table is a further step (``add_column("jobs", "priority")``,
or a function of its own taking the connection). Steps are named, not numbered, so two parts can
append theirs at the same time; never rename or reorder a step that has shipped. The helpers are
idempotent (they look before they create), so a step is also safe on a database where a later
declaration already made the table whole.

Several processes may start at once (gunicorn workers, the worker, replicas): the steps run
in one transaction under a lock (PostgreSQL: an advisory transaction lock; SQLite: ``BEGIN
IMMEDIATE``), and DDL is transactional on both, so a step either ran entirely or not at all and
no two processes run it.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

import sqlalchemy as sa

from scim_bridge.store import schema
from scim_bridge.store.engine import is_sqlite, write_transaction
from scim_bridge.timestamps import iso

# pg_advisory_xact_lock key: any constant 64-bit number the bridge uses for nothing else.
_ADVISORY_KEY = zlib.crc32(b"scim_bridge.store.migrate")

# The audit chain's first ``prev_hash`` (audit/chain.py GENESIS_HASH; store must not import audit).
_GENESIS_HASH = "0" * 64


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    apply: Callable[[sa.Connection], None]


def create_tables(*names: str) -> Callable[[sa.Connection], None]:
    """A step body creating the named tables (and their indexes) as declared in schema.py."""

    def apply(conn: sa.Connection) -> None:
        schema.metadata.create_all(
            conn, tables=[schema.metadata.tables[name] for name in names], checkfirst=True
        )

    return apply


def add_column(table_name: str, column_name: str) -> Callable[[sa.Connection], None]:
    """A step body adding a column declared in schema.py to an existing table, if it is missing.

    The column must be nullable or have a ``server_default`` (existing rows need a value).
    """

    def apply(conn: sa.Connection) -> None:
        existing = {c["name"] for c in sa.inspect(conn).get_columns(table_name)}
        if column_name in existing:
            return
        column = schema.metadata.tables[table_name].c[column_name]
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {ddl}")

    return apply


def _create_indexes(conn: sa.Connection, indexes: tuple[sa.Index, ...]) -> None:
    for index in indexes:
        index.create(conn, checkfirst=True)


def _audit_tables(conn: sa.Connection) -> None:
    create_tables("audit_events", "audit_head")(conn)
    if conn.execute(sa.select(schema.audit_head.c.id)).first() is None:
        conn.execute(schema.audit_head.insert().values(id=1, seq=0, hash=_GENESIS_HASH))


def _directory_user_names(conn: sa.Connection) -> None:
    """directory-2: userName kept by the bridge (unique, case-insensitively), the IdP's SCIM
    attributes, and the pending-create mark (issue 13)."""
    for column in ("user_name", "user_name_key", "attributes", "create_pending"):
        add_column("directory_resources", column)(conn)
    index = next(
        i
        for i in schema.directory_resources.indexes
        if i.name == "ux_directory_resources_user_name"
    )
    index.create(conn, checkfirst=True)


def _token_scopes(conn: sa.Connection) -> None:
    for column in ("scopes", "idp", "expires_at", "previous_sha256", "previous_valid_until"):
        add_column("scim_tokens", column)(conn)


def _console_job_keys(conn: sa.Connection) -> None:
    """The job list's keyset indexes; the console-2 ones they extend are dropped (a database
    made before this change has them; a newer one never had them)."""
    _create_indexes(conn, schema.JOB_LIST_INDEXES)
    for name in schema.JOB_LIST_INDEXES_REPLACED:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


# Append only (see the module docstring).
STEPS: list[Step] = [
    Step("audit-1-tables", _audit_tables),
    Step("directory-1-tables", create_tables("directory_resources", "scim_tokens")),
    Step(
        "deprovision-1-tables",
        create_tables("jobs", "job_steps", "tombstones", "worker_heartbeats"),
    ),
    Step("rate-budget-1-tables", create_tables("rate_budget_slots")),
    Step("directory-2-user-names", _directory_user_names),
    Step("scim-tokens-2-scopes", _token_scopes),
    Step("console-1-operators", create_tables("operators", "operator_sessions")),
    Step("console-2-indexes", lambda conn: _create_indexes(conn, schema.CONSOLE_INDEXES)),
    Step("console-3-job-keys", _console_job_keys),
    Step("console-4-sign-in-failures", create_tables("console_sign_in_failures")),
    Step("deprovision-2-learned-values", create_tables("learned_values")),
]


def applied_steps(conn: sa.Connection) -> set[str]:
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return set()
    return set(conn.execute(sa.select(schema.schema_version.c.step)).scalars())


def pending_steps(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        done = applied_steps(conn)
    return [step.name for step in STEPS if step.name not in done]


def upgrade(engine: sa.Engine, steps: list[Step] | None = None) -> list[str]:
    """Run the steps this database has not run yet; return their names (empty when up to date)."""
    steps = STEPS if steps is None else steps
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise MigrationError(f"duplicate migration step names in {names}")
    # Fast path: most starts find nothing to do and take no lock.
    with engine.connect() as conn:
        if not set(names) - applied_steps(conn):
            _check_declared_tables(conn)
            return []
    ran: list[str] = []
    with write_transaction(engine) as conn:
        if not is_sqlite(conn):
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))
        schema.schema_version.create(conn, checkfirst=True)
        done = applied_steps(conn)
        for step in steps:
            if step.name in done:
                continue
            step.apply(conn)
            conn.execute(schema.schema_version.insert().values(step=step.name, applied_at=iso()))
            ran.append(step.name)
        _check_declared_tables(conn)
    return ran


def _check_declared_tables(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    missing = [name for name in schema.metadata.tables if not inspector.has_table(name)]
    if missing:
        raise MigrationError(
            f"tables declared in store/schema.py but created by no migration step: {missing}; "
            'append Step("<part>-<n>-<what>", create_tables(...)) to STEPS in store/migrate.py'
        )
