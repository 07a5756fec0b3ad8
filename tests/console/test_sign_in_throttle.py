"""Failed console sign-ins are throttled per client address and overall: over a limit the
token is not even checked (a right one is refused too), the answer is 429 with Retry-After and
says why and until when, and it is audited (the refusals throttled); another address still signs
in; a sign-in that works forgets its address's failures; the window passes."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from scim_bridge.audit import Tag
from scim_bridge.audit.throttle import FailureThrottle
from scim_bridge.console import web
from scim_bridge.console.throttle import SignInLimits, SignInThrottle
from tests.console.conftest import Console

UI = "/admin/ui"


def _attempt(client: FlaskClient, token: str, address: str) -> TestResponse:
    env = {"REMOTE_ADDR": address}
    page = client.get(f"{UI}/sign-in", environ_base=env).get_data(as_text=True)
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert nonce is not None
    return client.post(
        f"{UI}/sign-in",
        data={"token": token, "csrf_token": nonce.group(1)},
        environ_base=env,
    )


def _limit(console: Console, limits: SignInLimits) -> web.Console:
    """The app's console with tighter limits (and refusals audited once an hour per key)."""
    ctx: web.Console = console.bridge.app.extensions[web.EXTENSION]
    ctx.sign_ins = SignInThrottle(console.bridge.engine, limits)
    ctx.refusals = FailureThrottle(interval_s=3600)
    return ctx


def _events(console: Console, tag: Tag) -> list[dict[str, object]]:
    return [
        {**e, "detail": json.loads(str(e["detail"]))}
        for e in console.bridge.audit_events()
        if e["tag"] == tag
    ]


def test_one_address_is_paused_after_its_failures_and_others_are_not(console: Console) -> None:
    _limit(console, SignInLimits(per_address=3, overall=50, window_s=900))
    client = console.bridge.app.test_client()
    for _ in range(3):
        assert _attempt(client, "scimop_wrong", "10.0.0.1").status_code == 401
    paused = _attempt(client, console.alice, "10.0.0.1")  # the right token, not even checked
    assert paused.status_code == 429
    assert 1 <= int(paused.headers["Retry-After"]) <= 901
    text = paused.get_data(as_text=True)
    assert "Too many failed sign-ins from your address (3 in 15 minutes)" in text
    assert "your token was not checked" in text
    assert client.get(f"{UI}/").status_code == 302  # no session was opened
    assert _attempt(client, "scimop_wrong", "10.0.0.1").status_code == 429
    other = console.bridge.app.test_client()
    assert _attempt(other, console.alice, "10.0.0.2").status_code == 302
    assert other.get(f"{UI}/").status_code == 200

    failed = _events(console, Tag.CONSOLE_AUTH_FAILED)
    assert [e["detail"]["remote_addr"] for e in failed] == ["10.0.0.1"] * 3  # type: ignore[index]
    throttled = _events(console, Tag.CONSOLE_SIGN_IN_THROTTLED)
    assert len(throttled) == 1  # two refusals, one event (the throttle's interval is an hour)
    assert throttled[0]["detail"] == {
        "limit": "address",
        "failures_in_window": 3,
        "window_s": 900.0,
        "remote_addr": "10.0.0.1",
        "suppressed_since_last": 0,
    }
    assert throttled[0]["outcome"] == "refused"
    signed_in = _events(console, Tag.CONSOLE_SIGNED_IN)
    assert [e["actor"] for e in signed_in] == ["operator:alice"]


def test_failures_from_many_addresses_pause_every_sign_in(console: Console) -> None:
    _limit(console, SignInLimits(per_address=3, overall=5, window_s=900))
    client = console.bridge.app.test_client()
    for i in range(5):
        assert _attempt(client, "scimop_wrong", f"10.0.1.{i}").status_code == 401
    paused = _attempt(client, console.alice, "10.0.2.1")
    assert paused.status_code == 429
    assert "to this console from all addresses (5 in 15 minutes)" in paused.get_data(as_text=True)
    throttled = _events(console, Tag.CONSOLE_SIGN_IN_THROTTLED)
    assert [e["detail"]["limit"] for e in throttled] == ["overall"]  # type: ignore[index]


def test_a_sign_in_that_works_forgets_its_address_failures(console: Console) -> None:
    _limit(console, SignInLimits(per_address=3, overall=50, window_s=900))
    client = console.bridge.app.test_client()
    for _ in range(2):
        assert _attempt(client, "scimop_wrong", "10.0.0.7").status_code == 401
    assert _attempt(client, console.alice, "10.0.0.7").status_code == 302
    client = console.bridge.app.test_client()  # another browser at that address
    for _ in range(2):  # counted from zero again
        assert _attempt(client, "scimop_wrong", "10.0.0.7").status_code == 401
    assert _attempt(client, console.alice, "10.0.0.7").status_code == 302


def test_the_window_passes(engine: sa.Engine) -> None:
    throttle = SignInThrottle(engine, SignInLimits(per_address=2, overall=3, window_s=60))
    for at in (1000.0, 1010.0):
        assert throttle.refusal("a", now=at) is None
        throttle.failed("a", now=at)
    refusal = throttle.refusal("a", now=1020.0)
    assert refusal is not None
    assert (refusal.limit, refusal.failures, refusal.retry_at) == ("address", 2, 1060.0)
    assert refusal.retry_after_s(1020.0) == 41
    assert throttle.refusal("b", now=1020.0) is None
    throttle.failed("b", now=1020.0)
    overall = throttle.refusal("c", now=1030.0)
    assert overall is not None
    assert (overall.limit, overall.retry_at) == ("overall", 1060.0)
    assert throttle.refusal("a", now=1060.5) is None  # the first failure aged out
    assert throttle.refusal("c", now=1060.5) is None
    throttle.failed("c", now=1090.0)  # and the aged-out rows are deleted
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM console_sign_in_failures")).scalar()
    assert count == 1  # c at 1090 only
