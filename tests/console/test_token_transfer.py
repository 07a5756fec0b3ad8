"""Token transfer (issue 14's IdP migration) as an operator action: in the console and from the
shell, a reason is required and the move is audited with the operator's name; over HTTP, the old
token then gets 404 on what it owned and the new one sees it."""

from __future__ import annotations

import json
import subprocess
import sys

from scim_bridge.audit import Tag
from tests.console.conftest import Console
from tests.console.test_pages import sign_in
from tests.scim.replay import load, unique_email

UI = "/admin/ui"
COMMAND = (sys.executable, "-m", "scim_bridge", "tokens", "transfer")


def _user(console: Console) -> str:
    created = console.bridge.post(
        "/Users", json=load("okta-create-user.json", username=unique_email())
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return str(created.get_json()["id"])


def _transfers(console: Console) -> list[tuple[str, dict[str, object]]]:
    return [
        (str(e["actor"]), json.loads(str(e["detail"])))
        for e in console.bridge.audit_events()
        if e["tag"] == Tag.SCIM_TOKEN_TRANSFERRED
    ]


def test_an_operator_moves_what_a_token_owns_in_the_console(console: Console) -> None:
    bridge = console.bridge
    uid = _user(console)
    assert bridge.entra.get(f"/Users/{uid}").status_code == 404
    client = bridge.app.test_client()
    csrf = sign_in(client, console.alice)
    page = client.get(f"{UI}/tokens").get_data(as_text=True)
    assert "okta-test" in page
    assert "entra-test" in page
    url = f"{UI}/tokens/transfer"
    move = {"csrf_token": csrf, "source": "okta-test", "target": "entra-test"}
    assert client.post(url, data={**move, "csrf_token": ""}).status_code == 403
    no_reason = client.post(url, data={**move, "reason": "  "})
    assert no_reason.status_code == 400
    assert "a reason is required" in no_reason.get_data(as_text=True)
    asked = client.post(url, data={**move, "reason": "CHG-9 Okta to Entra"})
    assert asked.status_code == 200
    assert 'id="confirm-count">1 (now)' in asked.get_data(as_text=True)
    assert bridge.get(f"/Users/{uid}").status_code == 200  # nothing moved yet
    assert _transfers(console) == []
    done = client.post(url, data={**move, "reason": "CHG-9 Okta to Entra", "confirmed": "yes"})
    assert done.status_code == 303
    shown = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Moved 1 from okta-test to entra-test (audit event" in shown
    assert "operator:alice: CHG-9 Okta to Entra)" in shown
    assert 'id="moved"' not in client.get(f"{UI}/tokens?event=1").get_data(as_text=True)
    assert bridge.entra.get(f"/Users/{uid}").status_code == 200
    assert bridge.get(f"/Users/{uid}").status_code == 404
    assert _transfers(console) == [
        (
            "operator:alice",
            {
                "from": "okta-test",
                "to": "entra-test",
                "resources": 1,
                "operator_reason": "CHG-9 Okta to Entra",
                "via": "console",
            },
        )
    ]
    to_nobody = {**move, "target": "nobody", "reason": "x", "confirmed": "yes"}
    refused = client.post(url, data=to_nobody)
    assert refused.status_code == 409
    assert "no token named &#39;nobody&#39;" in refused.get_data(as_text=True)


def test_the_shell_command_needs_a_live_operator_and_a_reason(console: Console) -> None:
    bridge = console.bridge
    uid = _user(console)
    env = {"DATABASE_URL": str(bridge.engine.url), "PATH": "/usr/bin:/bin"}

    def transfer(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, "--from", "okta-test", "--to", "entra-test", *extra],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    assert transfer().returncode == 2  # --operator and --reason are required
    unknown = transfer("--operator", "mallory", "--reason", "x")
    assert unknown.returncode == 1
    assert "no live operator named 'mallory'" in unknown.stderr
    blank = transfer("--operator", "alice", "--reason", " ")
    assert blank.returncode == 1
    assert "a reason is required" in blank.stderr
    assert bridge.get(f"/Users/{uid}").status_code == 200  # nothing moved
    done = transfer("--operator", "alice", "--reason", "CHG-10 IdP migration")
    assert done.returncode == 0, done.stderr
    assert "1 resource(s) moved" in done.stderr
    assert bridge.entra.get(f"/Users/{uid}").status_code == 200
    assert _transfers(console) == [
        (
            "operator:alice",
            {
                "from": "okta-test",
                "to": "entra-test",
                "resources": 1,
                "operator_reason": "CHG-10 IdP migration",
                "via": "cli",
            },
        )
    ]
