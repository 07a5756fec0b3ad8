"""``scim-bridge doctor`` against the sandbox (issue 6 item 4; genesys-api.md 5.5): every check
passes for a fully permitted client, each missing permission is named with its fix, bad
credentials and an unreachable host are told apart, and nothing in the org changes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from scim_bridge import doctor
from scim_bridge.config import Settings
from scim_bridge.genesys.gateway import SdkGateway, connect

# Everything the bridge uses (genesys-api.md 5.5), one permission per need.
NEEDED = {
    "directory:user:view",
    "directory:user:add",
    "directory:user:edit",
    "directory:user:delete",
    "routing:queue:view",
    "routing:queueMember:manage",
    "analytics:conversationDetail:view",
    "directory:group:add",
    "directory:group:edit",
    "directory:group:delete",
    "oauth:token:delete",
    # The footprint (issue 12); routing:skill:assign also covers languages (PYDOCS).
    "authorization:grant:view",
    "authorization:grant:add",
    "routing:skill:assign",
}


def _settings(url: str, client_id: str, secret: str) -> Settings:
    return Settings.from_env(
        {"GENESYS_API_HOST": url, "GENESYS_CLIENT_ID": client_id, "GENESYS_CLIENT_SECRET": secret}
    )


@pytest.fixture
def made() -> Any:
    gateways: list[SdkGateway] = []

    def make(settings: Settings) -> SdkGateway:
        gateway = connect(settings)
        gateways.append(gateway)
        return gateway

    yield make
    for gateway in gateways:
        gateway.close()


def test_a_fully_permitted_client_passes_every_check_and_changes_nothing(
    sandbox: Any, made: Any
) -> None:
    checks = doctor.run_checks(
        _settings(sandbox.url, sandbox.client_id, sandbox.client_secret), made
    )
    assert all(c.ok for c in checks), doctor.render(checks)
    assert len(checks) >= 10
    # Reads, refused writes (404 on an id no org holds) and a 409 create: no write succeeded.
    succeeded_writes = {
        endpoint: statuses
        for endpoint, statuses in sandbox.control.stats()["endpoints"].items()
        if endpoint.split(" ", 1)[0] in ("PATCH", "PUT", "DELETE", "POST")
        and "search" not in endpoint
        and "query" not in endpoint
        and "oauth" not in endpoint
        and any(status.startswith("2") for status in statuses)
    }
    assert not succeeded_writes, succeeded_writes


# routing:skill:assign allows two needs (skills, and languages too): its own test below.
@pytest.mark.parametrize("missing", sorted(NEEDED - {"routing:skill:assign"}))
def test_each_missing_permission_is_named_with_its_fix(
    sandbox: Any, made: Any, missing: str
) -> None:
    sandbox.control.add_client("limited", "limited-secret", sorted(NEEDED - {missing}))
    checks = doctor.run_checks(_settings(sandbox.url, "limited", "limited-secret"), made)
    failed = [c for c in checks if not c.ok]
    # routing:queueMember:manage alone covers three needs (drain, add, join): each is named.
    assert len(failed) == (3 if missing == "routing:queueMember:manage" else 1), doctor.render(
        checks
    )
    for check in failed:
        assert missing in check.permissions
        assert "role" in (check.fix or "")
        assert "403" in check.detail


def test_queue_edit_without_join_fails_the_rejoin_check_genesys_api_3(
    sandbox: Any, made: Any
) -> None:
    """routing:queue:edit drains and adds members but cannot join them back (issue 10 item 8)."""
    granted = (NEEDED - {"routing:queueMember:manage"}) | {"routing:queue:edit"}
    sandbox.control.add_client("editor", "editor-secret", sorted(granted))
    checks = doctor.run_checks(_settings(sandbox.url, "editor", "editor-secret"), made)
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == ["join queues (reactivation re-joins queues)"]
    assert "routing:queue:join" in failed[0].permissions


def test_routing_skill_and_language_assign_are_each_checked(sandbox: Any, made: Any) -> None:
    """``routing:language:assign`` is enough for languages, not for skills; without
    ``routing:skill:assign`` (which allows both, PYDOCS) both checks fail and name it."""
    only_language = (NEEDED - {"routing:skill:assign"}) | {"routing:language:assign"}
    sandbox.control.add_client("lang", "lang-secret", sorted(only_language))
    checks = doctor.run_checks(_settings(sandbox.url, "lang", "lang-secret"), made)
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == [
        "assign routing skills (restore on reactivation and re-hire)"
    ]
    sandbox.control.add_client("none", "none-secret", sorted(NEEDED - {"routing:skill:assign"}))
    checks = doctor.run_checks(_settings(sandbox.url, "none", "none-secret"), made)
    failed = [c for c in checks if not c.ok]
    assert len(failed) == 2
    assert all("routing:skill:assign" in c.permissions for c in failed)
    assert "routing:language:assign" in failed[1].permissions


def test_bad_credentials_and_an_unreachable_host_get_different_fixes(
    sandbox: Any, made: Any
) -> None:
    bad_secret = doctor.run_checks(_settings(sandbox.url, sandbox.client_id, "wrong"), made)
    assert not bad_secret[-1].ok
    assert "GENESYS_CLIENT_SECRET" in (bad_secret[-1].fix or "")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    unreachable = doctor.run_checks(_settings(closed, "id", "secret"), made)
    assert not unreachable[-1].ok
    assert "GENESYS_REGION" in (unreachable[-1].fix or "")


def test_the_command_exits_non_zero_and_prints_the_checklist(sandbox: Any) -> None:
    sandbox.control.add_client("viewer", "viewer-secret", ["directory:user:view"])
    env = {
        **os.environ,
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": "viewer",
        "GENESYS_CLIENT_SECRET": "viewer-secret",
    }
    done = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "[ok] log in" in done.stdout
    assert "[FAIL] delete users" in done.stdout
    assert "directory:user:delete" in done.stdout
    assert "viewer-secret" not in done.stdout + done.stderr
