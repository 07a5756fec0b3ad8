"""The console over HTTP (Flask's test client): operators, sign-in, CSRF, every page, an action
with its reason and confirmation. The same flows in a real browser: test_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskClient

from scim_bridge.audit import Tag
from scim_bridge.console.operators import SESSION_S, OperatorStore
from scim_bridge.deprovision import jobs
from tests.console.conftest import ADMIN_TOKEN, Console

UI = "/admin/ui"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: FlaskClient, token: str) -> str:
    """Sign in; returns the session's CSRF token."""
    page = client.get(f"{UI}/sign-in")
    signed = client.post(
        f"{UI}/sign-in", data={"token": token, "csrf_token": _csrf(page.get_data(as_text=True))}
    )
    assert signed.status_code == 302, signed.get_data(as_text=True)
    return _csrf(client.get(f"{UI}/").get_data(as_text=True))


def test_signed_out_requests_are_sent_to_the_sign_in_page(console: Console) -> None:
    client = console.bridge.app.test_client()
    for path in ("/", "/jobs", "/audit", "/people?q=x", "/jobs/nope"):
        r = client.get(UI + path)
        assert r.status_code == 302
        assert r.headers["Location"].startswith(f"{UI}/sign-in?next=")
    assert client.post(f"{UI}/jobs/x/act", data={"action": "approve"}).status_code == 302
    with client.get(f"{UI}/static/console.css") as css:
        assert css.status_code == 200


def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_sign_out_ends_it(
    console: Console,
) -> None:
    client = console.bridge.app.test_client()
    page = client.get(f"{UI}/sign-in").get_data(as_text=True)
    wrong = client.post(f"{UI}/sign-in", data={"token": "scimop_nope", "csrf_token": _csrf(page)})
    assert wrong.status_code == 401
    page = wrong.get_data(as_text=True)
    signed = client.post(
        f"{UI}/sign-in?next={UI}/jobs", data={"token": console.alice, "csrf_token": _csrf(page)}
    )
    assert signed.status_code == 302
    assert signed.headers["Location"] == f"{UI}/jobs"
    cookie = next(c for c in signed.headers.getlist("Set-Cookie") if c.startswith("scimb_console="))
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert f"Path={UI}" in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert SESSION_S - 60 < max_age <= SESSION_S
    assert "Secure" not in cookie  # plain http here; https: test below
    home = client.get(f"{UI}/")
    assert home.status_code == 200
    assert "Signed in as <b>alice</b>" in home.get_data(as_text=True)
    csrf = _csrf(home.get_data(as_text=True))
    assert client.post(f"{UI}/sign-out", data={"csrf_token": csrf}).status_code == 302
    assert client.get(f"{UI}/").status_code == 302
    tags = console.bridge.tags()
    assert Tag.CONSOLE_SIGNED_IN in tags
    assert Tag.CONSOLE_SIGNED_OUT in tags
    assert Tag.CONSOLE_AUTH_FAILED in tags


def test_the_cookie_is_secure_behind_https(console: Console) -> None:
    client = console.bridge.app.test_client()
    page = client.get(f"{UI}/sign-in", base_url="https://console.example")
    assert "Secure" in page.headers["Set-Cookie"]
    signed = client.post(
        f"{UI}/sign-in",
        base_url="https://console.example",
        data={"token": console.alice, "csrf_token": _csrf(page.get_data(as_text=True))},
    )
    cookie = next(c for c in signed.headers.getlist("Set-Cookie") if c.startswith("scimb_console="))
    assert "Secure" in cookie


def test_posts_without_the_form_token_are_refused(console: Console) -> None:
    job_id = console.held_job()
    client = console.bridge.app.test_client()
    csrf = sign_in(client, console.alice)
    data = {"action": "approve", "reason": "r", "confirmed": "yes"}
    assert client.post(f"{UI}/jobs/{job_id}/act", data=data).status_code == 403
    bad = {**data, "csrf_token": csrf[:-2] + "xx"}
    assert client.post(f"{UI}/jobs/{job_id}/act", data=bad).status_code == 403
    assert client.post(f"{UI}/sign-out").status_code == 403
    # the sign-in form has its own (double-submit) token
    fresh = console.bridge.app.test_client()
    assert fresh.post(f"{UI}/sign-in", data={"token": console.alice}).status_code == 403
    assert jobs.find(console.bridge.engine, job_id).state == "held"  # type: ignore[union-attr]


def test_approve_needs_a_reason_and_a_confirmation_and_is_audited_by_name(
    console: Console,
) -> None:
    job_id = console.held_job()
    client = console.bridge.app.test_client()
    csrf = sign_in(client, console.alice)
    page = client.get(f"{UI}/jobs/{job_id}").get_data(as_text=True)
    assert 'id="act-approve"' in page
    assert "breaker" in page
    url = f"{UI}/jobs/{job_id}/act"
    no_reason = client.post(url, data={"csrf_token": csrf, "action": "approve", "reason": " "})
    assert no_reason.status_code == 400
    assert "a reason is required" in no_reason.get_data(as_text=True)
    asked = client.post(url, data={"csrf_token": csrf, "action": "approve", "reason": "ticket 42"})
    assert asked.status_code == 200
    assert "Confirm: Approve" in asked.get_data(as_text=True)
    assert jobs.find(console.bridge.engine, job_id).state == "held"  # type: ignore[union-attr]
    done = client.post(
        url,
        data={"csrf_token": csrf, "action": "approve", "reason": "ticket 42", "confirmed": "yes"},
    )
    assert done.status_code == 303
    finished = console.wait_for_job(job_id, "done")
    assert finished.approved_by == "operator:alice"
    # The evidence says which API covered what, per side (issue 11).
    shown = client.get(f"{UI}/jobs/{job_id}").get_data(as_text=True)
    before, after = shown.split("After the delete")
    assert "<code>POST /api/v2/analytics/conversations/details/jobs</code>" in before
    assert "<code>POST /api/v2/analytics/conversations/details/query</code>" in before
    assert "<code>GET /api/v2/analytics/conversations/details</code>" in after
    events = [
        e
        for e in console.bridge.audit_events()
        if e["tag"] == Tag.DEPROVISION_JOB_APPROVED and e["job_id"] == job_id
    ]
    assert [(e["actor"], json.loads(e["detail"])["operator_reason"]) for e in events] == [
        ("operator:alice", "ticket 42")
    ]
    again = client.post(
        url, data={"csrf_token": csrf, "action": "approve", "reason": "x", "confirmed": "yes"}
    )
    assert again.status_code == 409


def test_every_page_renders(console: Console) -> None:
    job_id = console.held_job()
    job = jobs.find(console.bridge.engine, job_id)
    assert job is not None
    client = console.bridge.app.test_client()
    csrf = sign_in(client, console.alice)
    overview = client.get(f"{UI}/").get_data(as_text=True)
    assert job_id in overview  # held jobs first
    assert "Delete breaker" in overview
    assert "Tripped" in overview or "Closed" in overview
    for path in (
        "/jobs",
        "/jobs?state=held&action=delete&idp=okta-test&since=2000-01-01&until=2999-01-01",
        f"/jobs?user={job.user_id}",
        "/jobs?older=1700000000.5_abc123",
    ):
        r = client.get(UI + path)
        assert r.status_code == 200, path
    assert job_id in client.get(f"{UI}/jobs?state=held").get_data(as_text=True)
    assert job_id not in client.get(f"{UI}/jobs?state=done").get_data(as_text=True)
    person = client.get(f"{UI}/people?q={job.user_id}").get_data(as_text=True)
    assert job_id in person
    audit = client.get(f"{UI}/audit?tag=deprovision:job:held").get_data(as_text=True)
    assert job_id[:8] in audit
    export = client.get(f"{UI}/audit/export.jsonl?user={job.user_id}")
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].startswith("attachment")
    lines = export.get_data(as_text=True).splitlines()
    assert lines
    assert all(f'"genesys_user_id":"{job.user_id}"' in line for line in lines)
    verified = client.post(f"{UI}/audit/verify", data={"csrf_token": csrf})
    assert "Verified:" in verified.get_data(as_text=True)
    assert client.get(f"{UI}/audit?tag=nope").status_code == 400
    assert client.get(f"{UI}/jobs/nope").status_code == 404
    # what a link says was done is never echoed: only an action's own name is shown
    spoofed = client.get(f"{UI}/jobs/{job_id}?done=Deleted+by+security").get_data(as_text=True)
    assert "Deleted by security" not in spoofed
    assert "Done: approve." in client.get(f"{UI}/jobs/{job_id}?done=approve").get_data(as_text=True)


def test_the_shared_admin_token_still_drives_the_json_api(console: Console) -> None:
    job_id = console.held_job()
    client = console.bridge.app.test_client()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    r = client.post(f"/admin/jobs/{job_id}/approve", headers=auth, json={"by": "robot"})
    assert r.status_code == 200
    approved = [
        e for e in console.bridge.audit_events() if e["tag"] == Tag.DEPROVISION_JOB_APPROVED
    ]
    assert [e["actor"] for e in approved] == ["admin:robot"]
    # an operator token is not the admin token
    assert (
        client.get("/admin/jobs", headers={"Authorization": f"Bearer {console.alice}"}).status_code
        == 401
    )


def test_operators_command_creates_lists_and_revokes(console: Console, tmp_path: Path) -> None:
    env = {"DATABASE_URL": str(console.bridge.engine.url), "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scim_bridge", "operators", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    made = cli("create", "--name", "bob")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("scimop_")
    store = OperatorStore(console.bridge.engine)
    assert store.verify(token) == "bob"
    assert cli("create", "--name", "bob").returncode == 1
    listed = cli("list").stdout
    assert "alice\t" in listed
    assert "bob\t" in listed
    assert token not in listed
    client = console.bridge.app.test_client()
    sign_in(client, token)
    assert client.get(f"{UI}/").status_code == 200
    revoked = cli("revoke", "bob")
    assert revoked.returncode == 0, revoked.stderr
    assert client.get(f"{UI}/").status_code == 302  # the session ended with the operator
    assert store.verify(token) is None
    assert cli("revoke", "bob").returncode == 1
    assert cli("create", "--name", "bob").returncode == 1  # a revoked name is not reused
    assert "bob\tcreated" in cli("list").stdout
    tags = console.bridge.tags()
    assert Tag.OPERATOR_CREATED in tags
    assert Tag.OPERATOR_REVOKED in tags
