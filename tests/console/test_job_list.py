"""The console's job list, paged by key (not OFFSET) over indexes, on SQLite and PostgreSQL: every
job exactly once walking down and back up, ties on the creation time included; each filter's
page read from its index with no sort; an older database's indexes replaced by the migration."""

from __future__ import annotations

import random
import uuid

import pytest
import sqlalchemy as sa

from scim_bridge.console import queries
from scim_bridge.console.queries import JobFilter, JobKey
from scim_bridge.deprovision import jobs
from scim_bridge.deprovision.record import Job
from scim_bridge.store import schema
from scim_bridge.store.engine import write_transaction
from scim_bridge.store.migrate import upgrade

T0 = 1_780_000_000.0


def _seed(engine: sa.Engine, n: int) -> list[Job]:
    rng = random.Random(16)
    made = []
    for i in range(n):
        created = T0 + (i // 4) * 60.0 + (0.25 if i % 13 == 0 else 0.0)  # four at a time: ties
        made.append(
            Job(
                id=uuid.UUID(int=rng.getrandbits(128)).hex,
                user_id=f"user-{i % 7}",
                action=("delete", "deactivate", "reactivate")[i % 3],  # type: ignore[arg-type]
                state=("done", "held", "failed")[i % 3 if i % 2 else 0],  # type: ignore[arg-type]
                step="done",
                requested_by="okta-test",
                created_at=created,
                updated_at=created,
                due_at=created,
                idp=("okta-test", "entra-test")[i % 2],
            )
        )
    with write_transaction(engine) as conn:
        conn.execute(schema.jobs.insert(), [jobs.to_row(j) for j in made])
    return made


def _expected(made: list[Job], where: JobFilter) -> list[str]:
    def keep(j: Job) -> bool:
        return all(
            want is None or got == want
            for got, want in (
                (j.state, where.state),
                (j.action, where.action),
                (j.user_id, where.user),
                (j.idp, where.idp),
            )
        ) and (where.since is None or j.created_at >= where.since)

    return [j.id for j in sorted(made, key=lambda j: (j.created_at, j.id), reverse=True) if keep(j)]


FILTERS = [
    JobFilter(),
    JobFilter(state="held"),
    JobFilter(action="delete", idp="entra-test"),
    JobFilter(user="user-3"),
    JobFilter(state="done", since=T0 + 600),
]


@pytest.mark.parametrize("where", FILTERS, ids=lambda w: repr(w)[9:])
def test_walking_down_and_back_up_shows_every_job_once(engine: sa.Engine, where: JobFilter) -> None:
    made = _seed(engine, 230)
    expected = _expected(made, where)
    pages = [queries.job_page(engine, where, size=7)]
    assert pages[0].newer is None  # the first page has nothing above it
    while pages[-1].older is not None:
        pages.append(queries.job_page(engine, where, older=pages[-1].older, size=7))
    assert [j.id for p in pages for j in p.rows] == expected
    assert all(len(p.rows) == 7 for p in pages[:-1])
    # and back up from the last page, by the "newer" links
    up = [pages[-1]]
    while up[-1].newer is not None:
        up.append(queries.job_page(engine, where, newer=up[-1].newer, size=7))
    assert [j.id for p in reversed(up) for j in p.rows] == expected
    assert up[-1].rows[0].id == expected[0]


def test_the_idp_choices_are_every_name_once(engine: sa.Engine) -> None:
    assert queries.idps(engine) == []
    _seed(engine, 30)
    with write_transaction(engine) as conn:
        conn.execute(schema.jobs.update().where(schema.jobs.c.user_id == "user-1").values(idp=None))
    assert queries.idps(engine) == ["entra-test", "okta-test"]


def test_a_key_survives_the_url_exactly_and_junk_is_refused() -> None:
    key = JobKey(T0 + 0.1 + 1e-9, "ab" * 16)
    assert JobKey.parse(str(key)) == key
    for junk in ("x_ab", "1.5_", "1.5_../x", "nan_ab", "inf_ab", "1.5"):
        with pytest.raises(ValueError, match="not a position"):
            JobKey.parse(junk)


def _plan(engine: sa.Engine, query: sa.Select[tuple[object, ...]]) -> str:
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            return "\n".join(str(r[-1]) for r in rows)
        # A small table is cheaper to scan; take that choice away to see what the indexes allow.
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        return "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {compiled}").all())


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (JobFilter(), "ix_jobs_created_id"),
        (JobFilter(state="held"), "ix_jobs_state_created_id"),
        (JobFilter(action="delete"), "ix_jobs_action_created_id"),
        (JobFilter(idp="okta-test"), "ix_jobs_idp_created_id"),
        (JobFilter(user="user-1"), "ix_jobs_user_created_id"),
    ],
)
def test_each_filter_reads_its_page_from_an_index_without_sorting(
    engine: sa.Engine, where: JobFilter, index: str
) -> None:
    _seed(engine, 40)
    older = JobKey(T0 + 300, "ff" * 16)
    plan = _plan(engine, queries.job_query(where, older=older, newer=None).limit(51))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # SQLite: a sort
    assert "Sort" not in plan, plan  # PostgreSQL
    assert "OFFSET" not in str(queries.job_query(where, older=older, newer=None))


def test_the_migration_replaces_the_first_job_list_indexes(engine: sa.Engine) -> None:
    """A database made before console-3 has (column, created_at) indexes; they go."""
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE INDEX ix_jobs_state_created ON jobs (state, created_at)")
        conn.exec_driver_sql("DROP INDEX ix_jobs_state_created_id")
        conn.execute(
            schema.schema_version.delete().where(
                schema.schema_version.c.step == "console-3-job-keys"
            )
        )
    assert upgrade(engine) == ["console-3-job-keys"]
    names = {i["name"] for i in sa.inspect(engine).get_indexes("jobs")}
    assert "ix_jobs_state_created" not in names
    assert {i.name for i in schema.JOB_LIST_INDEXES} <= names
