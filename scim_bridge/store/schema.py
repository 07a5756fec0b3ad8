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
    # Text, not VARCHAR(n): an over-long id must not make PostgreSQL refuse an event that SQLite
    # would accept (redact caps every string at 1024 characters anyway).
    sa.Column("tag", sa.Text, nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("idp", sa.Text),
    sa.Column("correlation_id", sa.Text, index=True),
    sa.Column("scim_id", sa.Text, index=True),
    sa.Column("genesys_user_id", sa.Text, index=True),
    sa.Column("job_id", sa.Text, index=True),
    sa.Column("outcome", sa.Text, nullable=False),
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


# --- directory: what Genesys does not hold about a SCIM resource (directory/records.py) ---

# One row per SCIM User or Group the bridge has written: the IdP's externalId, the SCIM token
# (IdP) that owns it, the name parts Genesys keeps as one name, and the meta timestamps.
directory_resources = sa.Table(
    "directory_resources",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),  # User | Group
    sa.Column("genesys_id", sa.String(100), primary_key=True),
    sa.Column("external_id", sa.String(400)),
    sa.Column("owner", sa.String(200)),  # the SCIM token name (IdP) that created it
    sa.Column("given_name", sa.String(400)),
    sa.Column("family_name", sa.String(400)),
    sa.Column("formatted_name", sa.String(800)),
    # SCIM attributes the IdP left unset that Genesys must still hold (displayName, emails).
    sa.Column("unset_attributes", sa.String(200)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("last_modified_at", sa.String(32), nullable=False),
    # The SCIM userName as the IdP wrote it, and lower-cased: unique among the bridge's users
    # (RFC 7643 §4.1.1, caseExact false). NULL for users the bridge never wrote.
    sa.Column("user_name", sa.String(400)),
    sa.Column("user_name_key", sa.String(400)),
    # The SCIM attributes as the IdP last wrote them (JSON; never a password): what Genesys has
    # no field for is answered from here, the rest is checked against Genesys (directory/mapping).
    sa.Column("attributes", sa.Text),
    # True from the Genesys POST of a create until its last step: an IdP retry completes it.
    sa.Column("create_pending", sa.Boolean),
    sa.Index("ix_directory_resources_external_id", "resource_type", "external_id"),
    sa.Index("ux_directory_resources_user_name", "resource_type", "user_name_key", unique=True),
)


# --- scim: bearer tokens, one per IdP connection (scim/tokens.py) ---

# Only the SHA-256 of a token is kept; the token itself is printed once, at creation.
scim_tokens = sa.Table(
    "scim_tokens",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32)),
    # Issue 14: JSON list of "email:GLOB" / "division:ID" (NULL: the whole org), the IdP
    # (okta | entra | other), an expiry, and during a rotation the previous secret's hash with
    # the time it stops being accepted.
    sa.Column("scopes", sa.Text),
    sa.Column("idp", sa.String(16)),
    sa.Column("expires_at", sa.String(32)),
    sa.Column("previous_sha256", sa.String(64)),
    sa.Column("previous_valid_until", sa.String(32)),
)


# --- deprovision: durable jobs (deprovision/jobs.py, docs/deprovisioning.md) ---

# Times are epoch seconds (floats): due/lease/breaker arithmetic is exact on both databases.
# ``step`` is the next step to run; ``lease_token`` fences every write by the claimant.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", sa.Float, nullable=False, index=True),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("lease_token", sa.String(32)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("waiting_on", sa.String(64)),
    sa.Column("reason", sa.String(64)),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("idp", sa.String(200)),
    sa.Column("scim_id", sa.String(200)),
    sa.Column("from_policy", sa.Boolean, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("approved_by", sa.String(200)),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("guarded_for_delete", sa.Boolean, nullable=False),
    sa.Column("delete_counted_at", sa.Float, index=True),
    sa.Column("access_cut_at", sa.Float),
    sa.Column("waiting_since", sa.Float),
    sa.Column("data", sa.Text, nullable=False),  # JSON: snapshot, removed queues, evidence, plan
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

job_steps = sa.Table(
    "job_steps",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

# Who a deleted userId was (the answer to "who is this id in last year's reports").
tombstones = sa.Table(
    "tombstones",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("email", sa.String(300)),
    sa.Column("department", sa.String(300)),
    sa.Column("title", sa.String(300)),
    sa.Column("deleted_at", sa.String(32), nullable=False),
    sa.Column("job_id", sa.String(32), nullable=False),
    sa.Column("evidence_sha256", sa.String(64)),
    sa.Column("evidence_count", sa.Integer),
    sa.Column("detail", sa.Text, nullable=False),
)

worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    sa.Column("worker_id", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("jobs_finished", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
)

# The Genesys rate budget shared by every process and replica (store/rate_budget.py): a ring of
# ``per_minute`` slots per OAuth client; a slot may be taken again one window after it was.
rate_budget_slots = sa.Table(
    "rate_budget_slots",
    metadata,
    sa.Column("budget_key", sa.String(200), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("taken_at", sa.Float, nullable=False),  # seconds since the epoch
    # "The least recently taken free slot" is an index range scan, not a scan of the ring: a
    # budget of thousands a minute is thousands of rows.
    sa.Index("ix_rate_budget_slots_key_taken", "budget_key", "taken_at"),
)


# --- console: named operators and their signed-in sessions (console/operators.py) ---

# One row per person who may act on jobs (``scim-bridge operators create --name alice``). Only
# the SHA-256 of the personal token is kept, as for SCIM tokens; a revoked operator keeps the row
# (the name stays on the audit trail and is never handed to somebody else).
operators = sa.Table(
    "operators",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("revoked_at", sa.String(32)),
)

# A browser signed in to ``/admin/ui``: the cookie holds a random id, the row its SHA-256, the
# form token (CSRF) and when it expires. Rows are shared by every process and replica.
operator_sessions = sa.Table(
    "operator_sessions",
    metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("operator", sa.String(100), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

# The console's audit page and person lookup (migration step ``console-2-indexes``, which also
# made the first job-list indexes; ``console-3-job-keys`` replaced them with JOB_LIST_INDEXES).
CONSOLE_INDEXES = (
    sa.Index("ix_tombstones_email", tombstones.c.email),
    sa.Index("ix_audit_events_actor", audit_events.c.actor),
    sa.Index("ix_audit_events_tag_seq", audit_events.c.tag, audit_events.c.seq),
)

# The console's job list is filtered by state, action, IdP or user and ordered newest first,
# ``(created_at, id)`` descending, paged by that key (keyset: "older than this job"), never by
# OFFSET. With 100,000 jobs each page is then an index range scan of 51 rows whatever its depth.
JOB_LIST_INDEXES = (
    sa.Index("ix_jobs_created_id", jobs.c.created_at, jobs.c.id),
    sa.Index("ix_jobs_state_created_id", jobs.c.state, jobs.c.created_at, jobs.c.id),
    sa.Index("ix_jobs_action_created_id", jobs.c.action, jobs.c.created_at, jobs.c.id),
    sa.Index("ix_jobs_idp_created_id", jobs.c.idp, jobs.c.created_at, jobs.c.id),
    sa.Index("ix_jobs_user_created_id", jobs.c.user_id, jobs.c.created_at, jobs.c.id),
)
# What console-3 dropped: each a prefix of one above.
JOB_LIST_INDEXES_REPLACED = (
    "ix_jobs_state_created",
    "ix_jobs_action_created",
    "ix_jobs_idp_created",
    "ix_jobs_user_created",
)

# Failed console sign-ins, one row each, kept for the throttle's window (console/throttle.py):
# in the database so that every process and replica counts the same failures.
console_sign_in_failures = sa.Table(
    "console_sign_in_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Index("ix_console_sign_in_failures_address_at", "address", "at"),
    sa.Index("ix_console_sign_in_failures_at", "at"),
)


# --- deprovision: what the bridge has learned at run time and keeps across processes ---

# One row per name (deprovision/proof.py: how long Genesys's async details jobs have been taking,
# so that a fresh process polls its first job about when it will be done).
learned_values = sa.Table(
    "learned_values",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),  # seconds since the epoch
)
