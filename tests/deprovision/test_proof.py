"""The history proof over the whole window (deprovision/proof.py): an async details job for what
the data lake holds, the synchronous query for the tail (genesys-api.md 4.1, 4.3), against the
sandbox over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_bridge.deprovision.evidence import Window
from scim_bridge.deprovision.proof import (
    BY_ID_API,
    JOB_API,
    QUERY_API,
    TAIL_OVERLAP,
    Answer,
    Before,
    Lost,
    Proven,
    Prover,
    Request,
    Waiting,
)
from scim_bridge.deprovision.runner import AsyncJobRunTime
from scim_bridge.genesys.gateway import SdkGateway

DEEP = 1095
STATUS = "GET /api/v2/analytics/conversations/details/jobs/<job_id>"
BY_ID = "/api/v2/analytics/conversations/details"
LAG_DAYS = 20


@pytest.fixture
def deep(sandbox: Any) -> Any:
    sandbox.reset(history_days=DEEP)
    sandbox.faults(async_job_delay_s=0.1, data_availability_lag_s=LAG_DAYS * 86400)
    return sandbox


def _window() -> Window:
    until = datetime.now(UTC).replace(second=0, microsecond=0)
    return Window(until - timedelta(days=5 * 365 + 1), until)


def _prove(prover: Prover, requests: list[Request], rounds: int = 20) -> dict[Any, Answer]:
    """Run until no request waits, passing each pending job back as the engine would."""
    answers: dict[Any, Answer] = {}
    todo = list(requests)
    for _ in range(rounds):
        got = prover.run(todo, deadline=time.monotonic() + 30)
        answers.update(got)
        waiting = [r for r in todo if isinstance(got[r.key], Waiting)]
        if not waiting:
            return answers
        time.sleep(max(0.0, max(got[r.key].poll_at for r in waiting) - time.time()))  # type: ignore[union-attr]
        todo = [
            Request(r.key, r.user_id, r.window, pending=got[r.key].pending, before=r.before)  # type: ignore[union-attr]
            for r in waiting
        ]
    raise AssertionError("still waiting")


def _users(gateway: SdkGateway, sandbox: Any) -> dict[str, dict[str, Any]]:
    users = []
    for page in (1, 2):
        users += gateway.list_users(page_number=page, page_size=100, state="any").items
    return {u.id: sandbox.user(u.id) for u in users}


def test_a_check_covers_the_whole_window_in_two_parts(gateway: SdkGateway, deep: Any) -> None:
    records = _users(gateway, deep)
    user = max(records, key=lambda u: records[u]["conversationCount"])
    prover = Prover(gateway, poll_s=0.05)
    window = _window()
    first = prover.run([Request("j", user, window)], deadline=time.monotonic() + 30)["j"]
    assert isinstance(first, Waiting)
    assert first.pending.user_ids == (user,)
    answer = _prove(prover, [Request("j", user, window, pending=first.pending)])["j"]
    assert isinstance(answer, Proven)
    lake, tail = answer.parts
    assert (lake.api, tail.api) == (JOB_API, QUERY_API)
    assert (lake.since, lake.until, lake.job_id) == (
        window.since,
        window.until,
        first.pending.job_id,
    )
    assert lake.data_availability is not None
    expected_lake = datetime.now(UTC) - timedelta(days=LAG_DAYS)
    assert abs(lake.data_availability - expected_lake) < timedelta(seconds=10)
    assert (tail.since, tail.until) == (lake.data_availability - TAIL_OVERLAP, window.until)
    assert answer.ids == frozenset(lake.ids | tail.ids)
    assert len(answer.ids) == records[user]["conversationCount"]
    assert tail.ids - lake.ids  # the last days are not in the lake: only the tail has them
    assert lake.calls >= 3  # submit, status, results


def test_one_job_per_hundred_users_and_one_tail_query_per_batch(
    gateway: SdkGateway, deep: Any
) -> None:
    deep.reset(users=150, history_days=DEEP)
    deep.faults(async_job_delay_s=0.1, data_availability_lag_s=LAG_DAYS * 86400)
    records = _users(gateway, deep)
    window = _window()
    requests = [Request(uid, uid, window) for uid in records]
    answers = _prove(Prover(gateway, poll_s=0.05), requests)
    jobs = deep.async_jobs()
    assert sorted(len(j["userIds"]) for j in jobs) == [50, 100]
    for uid, answer in answers.items():
        assert isinstance(answer, Proven)
        assert len(answer.ids) == records[str(uid)]["conversationCount"]
        assert answer.parts[0].users in (50, 100)


def test_a_lost_job_is_submitted_again_then_given_up_with_the_reason(
    gateway: SdkGateway, deep: Any
) -> None:
    user = gateway.list_users(page_size=1).items[0].id
    deep.faults(async_job_outcomes=["FAILED", "EXPIRED", "FAILED"])
    answer = _prove(Prover(gateway, poll_s=0.05, max_resubmits=2), [Request("j", user, _window())])
    assert isinstance(answer["j"], Lost)
    assert answer["j"].pending.resubmits == 2
    assert "FAILED" in answer["j"].reason
    assert len(deep.async_jobs()) == 3

    deep.faults(async_job_outcomes=["EXPIRED"])
    answer = _prove(Prover(gateway, poll_s=0.05, max_resubmits=2), [Request("k", user, _window())])
    assert isinstance(answer["k"], Proven)
    states = [j["state"] for j in deep.async_jobs()[3:]]
    assert states == ["EXPIRED", "FULFILLED"]


def test_a_new_process_resumes_polling_the_same_job(gateway: SdkGateway, deep: Any) -> None:
    user = gateway.list_users(page_size=1).items[0].id
    deep.faults(async_job_delay_s=0.5)
    window = _window()
    first = Prover(gateway).run([Request("j", user, window)], deadline=time.monotonic() + 30)
    pending = first["j"].pending  # type: ignore[union-attr]
    # The process dies; another one, with the pending job from the record, carries on.
    answer = _prove(Prover(gateway, poll_s=0.1), [Request("j", user, window, pending=pending)])
    assert isinstance(answer["j"], Proven)
    assert answer["j"].parts[0].job_id == pending.job_id
    assert len(deep.async_jobs()) == 1


def _before_memo(before: Proven) -> Before:
    lake, tail = before.parts
    return Before(
        job_ids=lake.ids,
        job_window=Window(lake.since, lake.until),
        tail_window=Window(tail.since, tail.until),
        tail_intervals=tail.by_interval,
    )


def _long_serving(gateway: SdkGateway, deep: Any, days: int = 120) -> str:
    records = _users(gateway, deep)
    cutoff = datetime.now(UTC) - timedelta(days=days)
    return next(
        u
        for u, r in records.items()
        if r["state"] == "active"
        and r["oldestConversationAt"]
        and datetime.fromisoformat(r["oldestConversationAt"].replace("Z", "+00:00")) < cutoff
    )


def _proven_before(gateway: SdkGateway, deep: Any) -> tuple[str, Window, Prover, Proven]:
    """A user with history older than 120 days, and the check before a delete over the window."""
    user = _long_serving(gateway, deep)
    window = _window()
    prover = Prover(gateway, poll_s=0.05)
    before = _prove(prover, [Request("b", user, window)])["b"]
    assert isinstance(before, Proven)
    return user, window, prover, before


@pytest.mark.parametrize("by_id_refused", [False, True], ids=["by-id", "job-when-by-id-refused"])
def test_the_check_after_finds_old_conversations_purged(
    gateway: SdkGateway, deep: Any, by_id_refused: bool
) -> None:
    """With purge_history_older_than_days=120 only the old part loses the user's id. The check
    after reads what was found before by id and sees ids missing; a missing id is confirmed
    through the path that found it (the async job and the tail) before it is called lost. When
    Genesys refuses the read by id (its id limit is UNCONFIRMED), that path alone."""
    user, window, prover, before = _proven_before(gateway, deep)
    lake = before.parts[0]
    deep.faults(purge_history_on_delete=True, purge_history_older_than_days=120)
    gateway.delete_user(user)
    jobs_before = len(deep.async_jobs())
    if by_id_refused:
        deep.fail_next(BY_ID, method="GET", status=400, count=1)
    by_id_before = deep.stats()["endpoints"].get(BY_ID_API, {})
    after = _prove(prover, [Request("a", user, window, before=_before_memo(before))])["a"]
    assert isinstance(after, Proven)
    missing = before.ids - after.ids
    assert missing
    assert missing <= lake.ids
    assert after.ids == before.ids - missing
    # Confirmed by the async job and the tail, after the read by id (answered or refused).
    assert [p.api for p in after.parts] == [JOB_API, QUERY_API]
    assert len(deep.async_jobs()) == jobs_before + 1
    by_id_after = deep.stats()["endpoints"][BY_ID_API]
    status = "400" if by_id_refused else "200"
    assert by_id_after[status] - by_id_before.get(status, 0) == 1


def test_the_check_after_by_id_alone_proves_what_came_back(gateway: SdkGateway, deep: Any) -> None:
    """Nothing lost: every id found before comes back by id, which is the whole proof (one part
    over the window the check before covered, one call per 100 ids, no async job)."""
    user, window, prover, before = _proven_before(gateway, deep)
    lake = before.parts[0]
    jobs_before = len(deep.async_jobs())
    after = _prove(prover, [Request("a", user, window, before=_before_memo(before))])["a"]
    assert isinstance(after, Proven)
    assert after.ids == before.ids
    (part,) = after.parts
    assert part.api == BY_ID_API
    assert (part.since, part.until) == (lake.since, window.until)
    assert part.calls == -(-len(before.ids) // 100)
    assert len(deep.async_jobs()) == jobs_before  # no job, no wait on the lake


def test_the_check_after_by_id_costs_a_call_per_hundred_found_before(
    gateway: SdkGateway, deep: Any
) -> None:
    """Issue 11: the check after a delete asks only about what was found before, by id, for
    several users at once; nothing lost, every id back, one read per 100 ids."""
    deep.reset(users=40, history_days=DEEP)
    deep.faults(async_job_delay_s=0.1, data_availability_lag_s=LAG_DAYS * 86400)
    records = _users(gateway, deep)
    busy = [u for u in records if records[u]["conversationCount"]]
    window = _window()
    prover = Prover(gateway, poll_s=0.05)
    befores = _prove(prover, [Request(u, u, window) for u in busy])
    memos = {u: _before_memo(befores[u]) for u in busy}  # type: ignore[arg-type]
    total = len(frozenset().union(*(m.ids for m in memos.values())))
    assert total > 100
    served_before = deep.stats()["endpoints"].get(BY_ID_API, {}).get("200", 0)
    jobs_before = len(deep.async_jobs())
    afters = prover.run(
        [Request(("a", u), u, window, before=memos[u]) for u in busy],
        deadline=time.monotonic() + 30,
    )
    for u in busy:
        answer = afters[("a", u)]
        assert isinstance(answer, Proven)
        assert answer.ids == befores[u].ids  # type: ignore[union-attr]
        (part,) = answer.parts
        assert (part.api, part.calls, part.users) == (BY_ID_API, -(-total // 100), len(busy))
    assert len(deep.async_jobs()) == jobs_before
    assert deep.stats()["endpoints"][BY_ID_API]["200"] - served_before == -(-total // 100)


def test_the_check_after_makes_no_call_when_nothing_was_found_before(
    gateway: SdkGateway, deep: Any
) -> None:
    user = gateway.list_users(page_size=1).items[0].id
    window = _window()
    memo = Before(
        job_ids=frozenset(),
        job_window=window,
        tail_window=Window(window.until - timedelta(days=10), window.until),
        tail_intervals={},
    )
    calls = sum(sum(v.values()) for v in deep.stats()["endpoints"].values())
    answer = Prover(gateway).run(
        [Request("a", user, window, before=memo)], deadline=time.monotonic() + 30
    )
    assert isinstance(answer["a"], Proven)
    assert [(p.api, p.calls, p.ids) for p in answer["a"].parts] == [(BY_ID_API, 0, frozenset())]
    assert deep.async_jobs() == []
    assert sum(sum(v.values()) for v in deep.stats()["endpoints"].values()) == calls


def test_a_fresh_process_polls_first_when_the_last_job_took(
    gateway: SdkGateway, deep: Any, engine: Any
) -> None:
    """How long async jobs take is kept in the database (issue 11): a new process (a new
    ``Prover`` on the same database) schedules its first status read after that, not after
    ``poll_s``, so that one read usually finds the job fulfilled; the backoff after it stays."""
    user = gateway.list_users(page_size=1).items[0].id
    deep.faults(async_job_delay_s=1.0)
    memory = AsyncJobRunTime(engine, time.time)
    assert memory.recall() is None
    first = Prover(gateway, poll_s=0.2, memory=memory)
    _prove(first, [Request("j", user, _window())])
    took = memory.recall()
    assert took is not None
    assert 0.9 <= took < 5

    # Before it was learned: the first read came after poll_s. Now, about as long as a job takes.
    fresh = Prover(gateway, poll_s=0.2, memory=AsyncJobRunTime(engine, time.time))
    before = deep.stats()["endpoints"].get(STATUS, {}).get("200", 0)
    started = time.time()
    waiting = fresh.run([Request("k", user, _window())], deadline=time.monotonic() + 30)["k"]
    assert isinstance(waiting, Waiting)
    assert waiting.poll_at - started >= took
    time.sleep(max(0.0, waiting.poll_at - time.time()))
    answer = _prove(fresh, [Request("k", user, _window(), pending=waiting.pending)])
    assert isinstance(answer["k"], Proven)
    assert deep.stats()["endpoints"][STATUS]["200"] - before == 1
