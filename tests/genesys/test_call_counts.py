"""How many Genesys calls the gateway makes, counted by the sandbox (``/sandbox/stats``).

Each saving is asserted beside the correctness it must not cost: a deleted user read in one
call, a deactivation PATCHed with the version its caller just read (and a stale one still
recovered), history pages stopped early only where genesys-api.md 4.1 allows it (history.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import urllib3

from scim_bridge.genesys import history
from scim_bridge.genesys.errors import NotFound
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import HistoryQuery
from tests.genesys.helpers import active_users, served

GET_USER = "GET /api/v2/users/<user_id>"
PATCH_USER = "PATCH /api/v2/users/<user_id>"
DETAILS = "POST /api/v2/analytics/conversations/details/query"


def _api_calls(sandbox: Any) -> int:
    """Calls to /api/... so far (the token request excluded)."""
    stats = sandbox.stats()
    return sum(
        sum(by_status.values())
        for endpoint, by_status in stats["endpoints"].items()
        if "/api/" in endpoint
    )


# --- users ------------------------------------------------------------------------------------


def test_expect_deleted_reads_a_deleted_user_in_one_call(gateway: SdkGateway, sandbox: Any) -> None:
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    sandbox_stats_before = served(sandbox.stats(), GET_USER)

    assert gateway.get_user(user.id, expect_deleted=True).state == "deleted"
    assert served(sandbox.stats(), GET_USER) - sandbox_stats_before == 1  # ?state=deleted, 200

    assert gateway.get_user(user.id, include_deleted=True).state == "deleted"
    assert served(sandbox.stats(), GET_USER) - sandbox_stats_before == 3  # a 404, then 200


def test_expect_deleted_still_finds_a_user_that_is_not_deleted(
    gateway: SdkGateway, sandbox: Any
) -> None:
    user = active_users(gateway)[0]
    assert gateway.get_user(user.id, expect_deleted=True) == user
    assert served(sandbox.stats(), GET_USER, 404) == 1  # ?state=deleted does not have it
    assert served(sandbox.stats(), GET_USER, 200) == 1
    with pytest.raises(NotFound):
        gateway.get_user("00000000-0000-0000-0000-000000000000", expect_deleted=True)


def test_delete_of_a_deleted_user_confirms_it_in_one_read(
    gateway: SdkGateway, sandbox: Any
) -> None:
    user = active_users(gateway)[0]
    gateway.delete_user(user.id)
    before = sandbox.stats()
    gateway.delete_user(user.id)  # a resumed step: DELETE 404, then ?state=deleted
    after = sandbox.stats()
    assert served(after, GET_USER) - served(before, GET_USER) == 1
    assert served(after, GET_USER, 404) == served(before, GET_USER, 404)


def test_set_state_with_the_callers_fresh_read_is_one_patch(
    gateway: SdkGateway, sandbox: Any
) -> None:
    user = active_users(gateway)[0]
    status = gateway.conversation_status(user.id)
    assert status.user is not None
    assert (status.user.id, status.user.version) == (user.id, user.version)
    calls = _api_calls(sandbox)

    done = gateway.set_state(user.id, "inactive", current=status.user)

    assert done.state == "inactive"
    assert _api_calls(sandbox) - calls == 1  # the PATCH alone, no GET
    assert sandbox.user(user.id)["state"] == "inactive"
    # Already inactive by the caller's read: nothing to send at all.
    calls = _api_calls(sandbox)
    assert gateway.set_state(user.id, "inactive", current=done).state == "inactive"
    assert _api_calls(sandbox) == calls


def test_set_state_with_a_stale_read_recovers_through_the_version_loop(
    gateway: SdkGateway, sandbox: Any
) -> None:
    user = active_users(gateway)[0]
    status = gateway.conversation_status(user.id)
    sandbox.bump_version(user.id)  # a concurrent editor after the caller's read
    before = sandbox.stats()

    done = gateway.set_state(user.id, "inactive", current=status.user)

    after = sandbox.stats()
    assert done.state == "inactive"
    assert sandbox.user(user.id)["state"] == "inactive"
    assert served(after, PATCH_USER, 409) - served(before, PATCH_USER, 409) == 1
    assert served(after, PATCH_USER, 200) - served(before, PATCH_USER, 200) == 1
    assert served(after, GET_USER) - served(before, GET_USER) == 1  # the re-read after 409


# --- history ------------------------------------------------------------------------------------


def _raw_history(sandbox: Any, interval: str, user_ids: list[str]) -> set[tuple[str, str]]:
    """Ground truth without the gateway: every page of one interval until ``conversations`` is
    omitted (a raw HTTP client, so nothing of the gateway's stopping rule is involved)."""
    http = urllib3.PoolManager()
    login = http.request(
        "POST",
        sandbox.url + "/oauth/token",
        body=b"grant_type=client_credentials",
        headers={
            **urllib3.make_headers(basic_auth=f"{sandbox.client_id}:{sandbox.client_secret}"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    token = json.loads(login.data)["access_token"]
    pairs: set[tuple[str, str]] = set()
    for page in range(1, 1000):
        body = history.query_body(interval, user_ids, page)
        response = http.request(
            "POST",
            sandbox.url + "/api/v2/analytics/conversations/details/query",
            body=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        data = json.loads(response.data)
        if "conversations" not in data:
            break
        for conversation in data["conversations"]:
            for participant in conversation["participants"]:
                if participant.get("userId") in user_ids:
                    pairs.add((participant["userId"], conversation["conversationId"]))
    http.clear()
    return pairs


def _with_history(gateway: SdkGateway, sandbox: Any, count: int) -> list[str]:
    found = []
    for user in gateway.list_users(page_size=100, state="active").items:
        if sandbox.user(user.id)["conversationCount"]:
            found.append(user.id)
        if len(found) == count:
            break
    return found


def test_a_closed_interval_stops_on_its_short_page(gateway: SdkGateway, sandbox: Any) -> None:
    """A window that ended days ago: one query per interval (no empty page), same evidence."""
    (uid,) = _with_history(gateway, sandbox, 1)
    until = datetime.now(UTC) - timedelta(days=3)
    since = until - timedelta(days=87)
    intervals = history.intervals(since, until)
    assert all(history.is_closed(i, datetime.now(UTC)) for i in intervals)
    truth = {cid for i in intervals for _, cid in _raw_history(sandbox, i, [uid])}
    assert truth, "the seeded user has conversations in the window"
    before = served(sandbox.stats(), DETAILS)

    result = gateway.conversation_history(HistoryQuery((uid,), since, until))

    assert result.conversations[uid] == truth
    assert served(sandbox.stats(), DETAILS) - before == len(intervals) == result.queries_made
    assert set().union(*result.by_interval[uid].values()) == truth


def test_the_live_interval_is_read_to_its_empty_page(gateway: SdkGateway, sandbox: Any) -> None:
    """A window ending now: its last interval touches today (live), so it is paged to the end;
    the closed ones before it are not."""
    users = _with_history(gateway, sandbox, 10)
    until = datetime.now(UTC)
    since = until - timedelta(days=90)
    intervals = history.intervals(since, until)
    live = [i for i in intervals if not history.is_closed(i, until)]
    assert live == intervals[-1:]
    before = served(sandbox.stats(), DETAILS)

    result = gateway.conversation_history(HistoryQuery(tuple(users), since, until))

    pages = served(sandbox.stats(), DETAILS) - before
    live_has_data = any(live[0] in per for per in result.by_interval.values())
    assert pages == len(intervals) + (1 if live_has_data else 0)
    for interval in intervals:
        truth = _raw_history(sandbox, interval, users)
        got = {(u, c) for u, per in result.by_interval.items() for c in per.get(interval, ())}
        assert got == truth


def test_settled_users_live_interval_stops_on_its_short_page(
    gateway: SdkGateway, sandbox: Any
) -> None:
    """Users whose access is cut and who have no live conversation (a delete's history checks):
    their live interval ends on a short page that covers totalHits, as a closed one does; the
    same evidence, one query fewer when it held something (issue 11)."""
    users = _with_history(gateway, sandbox, 10)
    until = datetime.now(UTC)
    since = until - timedelta(days=20)
    (interval,) = history.intervals(since, until)
    assert not history.is_closed(interval, until)
    truth = _raw_history(sandbox, interval, users)
    assert truth, "the seeded users have conversations in the last 20 days"
    assert len({c for _, c in truth}) < history.PAGE_SIZE  # one short page
    before = served(sandbox.stats(), DETAILS)

    result = gateway.conversation_history(HistoryQuery(tuple(users), since, until, settled=True))

    assert {(u, c) for u, ids in result.conversations.items() for c in ids} == truth
    assert served(sandbox.stats(), DETAILS) - before == result.queries_made == 1
    # Not settled (anyone may still start one): read to the empty page.
    unsettled = gateway.conversation_history(HistoryQuery(tuple(users), since, until))
    assert unsettled.conversations == result.conversations
    assert unsettled.queries_made == 2


def test_a_closed_interval_with_more_than_a_page_is_read_in_full(
    gateway: SdkGateway, sandbox: Any
) -> None:
    """Full pages never end an interval: only a short one that covers totalHits does."""
    sandbox.reset(users=150, seed=1)
    users = [u.id for u in gateway.list_users(page_size=100, state="active").items]
    until = datetime.now(UTC) - timedelta(days=3)
    since = until - timedelta(days=30)
    (interval,) = history.intervals(since, until)
    truth = _raw_history(sandbox, interval, users)
    assert len({c for _, c in truth}) > history.PAGE_SIZE  # more than one page
    before = served(sandbox.stats(), DETAILS)

    result = gateway.conversation_history(HistoryQuery(tuple(users), since, until))

    got = {(u, c) for u, ids in result.conversations.items() for c in ids}
    assert got == truth
    pages = -(-len({c for _, c in truth}) // history.PAGE_SIZE)
    assert served(sandbox.stats(), DETAILS) - before == result.queries_made == pages


def test_last_page_rule() -> None:
    # the documented end
    assert history.last_page(closed=False, rows=0, seen=0, total_hits=0)
    # a short page of a closed interval covering totalHits
    assert history.last_page(closed=True, rows=7, seen=7, total_hits=7)
    # live, a full page, fewer ids than totalHits (a capped or thinned page), or no totalHits
    assert not history.last_page(closed=False, rows=7, seen=7, total_hits=7)
    assert not history.last_page(closed=True, rows=100, seen=100, total_hits=100)
    assert not history.last_page(closed=True, rows=50, seen=50, total_hits=120)
    assert not history.last_page(closed=True, rows=7, seen=7, total_hits=None)


def test_expected_history_reads_only_what_confirms_it(gateway: SdkGateway, sandbox: Any) -> None:
    """The check after a delete: only intervals with ids found before, each until they are back
    (the live one included), and the same evidence."""
    users = _with_history(gateway, sandbox, 3)
    until = datetime.now(UTC)
    since = until - timedelta(days=90)
    before = gateway.conversation_history(HistoryQuery(tuple(users), since, until))
    for uid in users:
        gateway.delete_user(uid)
    calls = served(sandbox.stats(), DETAILS)

    after = gateway.conversation_history(
        HistoryQuery(tuple(users), since, until, expected=before.by_interval)
    )

    assert after.conversations == before.conversations
    with_data = {i for per in before.by_interval.values() for i in per}
    assert served(sandbox.stats(), DETAILS) - calls == after.queries_made == len(with_data)


def test_expected_history_with_nothing_before_makes_no_query(
    gateway: SdkGateway, sandbox: Any
) -> None:
    uid = "00000000-0000-0000-0000-000000000000"
    until = datetime.now(UTC)
    calls = served(sandbox.stats(), DETAILS)
    result = gateway.conversation_history(
        HistoryQuery((uid,), until - timedelta(days=90), until, expected={uid: {}})
    )
    assert result.conversations == {uid: frozenset()}
    assert served(sandbox.stats(), DETAILS) - calls == result.queries_made == 0


def test_expected_history_that_went_missing_is_read_to_the_end(
    gateway: SdkGateway, sandbox: Any
) -> None:
    """A purged history (the sandbox's fault) is reported missing only after the empty page."""
    (uid,) = _with_history(gateway, sandbox, 1)
    until = datetime.now(UTC)
    since = until - timedelta(days=90)
    before = gateway.conversation_history(HistoryQuery((uid,), since, until))
    sandbox.faults(purge_history_on_delete=True)
    gateway.delete_user(uid)
    calls = served(sandbox.stats(), DETAILS)

    after = gateway.conversation_history(
        HistoryQuery((uid,), since, until, expected=before.by_interval)
    )

    assert after.conversations[uid] == frozenset()
    # each interval that had ids: its first page, now empty, is the documented end
    assert served(sandbox.stats(), DETAILS) - calls == len(before.by_interval[uid])


def test_expected_history_for_part_of_a_batch_reads_the_window_in_full(
    gateway: SdkGateway, sandbox: Any
) -> None:
    a, b = _with_history(gateway, sandbox, 2)
    until = datetime.now(UTC)
    since = until - timedelta(days=90)
    full = gateway.conversation_history(HistoryQuery((a, b), since, until))
    calls = served(sandbox.stats(), DETAILS)
    mixed = gateway.conversation_history(
        HistoryQuery((a, b), since, until, expected={a: full.by_interval[a]})
    )
    assert mixed.conversations == full.conversations
    assert served(sandbox.stats(), DETAILS) - calls == full.queries_made
