"""Every table the bridge keeps, declared once (SQLAlchemy Core).

Each part owns its tables' meaning; the declarations live here so that one migration path
creates and upgrades them all.
"""

from __future__ import annotations

import sqlalchemy as sa

# Named constraints, so that a later migration step can alter one by name on both databases.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# --- store: which migration steps have run (store/migrate.py) ---

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("step", sa.String(100), primary_key=True),
    sa.Column("applied_at", sa.String(32), nullable=False),
)


# --- audit: the hash-chained trail (audit/chain.py, docs/audit.md) ---

# One row per event, never updated or deleted. ``at`` is the canonical UTC text
# (``2026-01-31T12:00:00.123456Z``: fixed width, so text order is time order) and ``detail`` the
# canonical JSON text, so that the stored values are exactly what was hashed.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(32), nullable=False, index=True),
    sa.Column("tag", sa.String(100), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("idp", sa.String(200)),
    sa.Column("correlation_id", sa.String(200), index=True),
    sa.Column("scim_id", sa.String(200), index=True),
    sa.Column("genesys_user_id", sa.String(200), index=True),
    sa.Column("job_id", sa.String(200), index=True),
    sa.Column("outcome", sa.String(100), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# Exactly one row (id = 1): the last event's seq and hash. Appends lock it (an UPDATE first), which
# serialises writers across processes into one linear chain; verify compares it with the last row,
# so that cutting events off the end is detectable too.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
