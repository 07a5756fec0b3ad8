"""``scim-bridge serve`` is the production server (issue 14 item 4): it becomes gunicorn with the
project's ``gunicorn.conf.py`` (JSON access log without query strings, the app loaded once), not
a development server; it refuses to start without Genesys credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scim_bridge.scim import TokenStore
from scim_bridge.store.engine import make_engine
from scim_bridge.store.migrate import upgrade
from tests.fixtures.sandbox import Sandbox
from tests.production.servers import ROOT, bridge_env, free_port, stop, wait_healthy

pytestmark = pytest.mark.slow


def test_serve_runs_gunicorn_with_the_projects_config(sandbox: Sandbox, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    token = TokenStore(engine).create("okta-test", idp="okta")
    engine.dispose()
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = bridge_env(
        sandbox,
        db_url,
        SCIM_BRIDGE_WORKERS="1",
        SCIM_BRIDGE_PUBLIC_URL="https://scim.example.com",
        LOG_LEVEL="INFO",
        TMPDIR=str(scratch),
    )
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scim_bridge",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=tmp_path,  # not the project directory: serve finds gunicorn.conf.py itself
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc)
        secret = "scim-filter-secret@example.com"
        response = requests.get(
            f"{base}/scim/v2/Users",
            params={"filter": f'userName eq "{secret}"'},
            headers={"Authorization": f"Bearer {token}", "Host": "evil.example"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        created = requests.get(
            f"{base}/scim/v2/ServiceProviderConfig",
            headers={"Authorization": f"Bearer {token}", "Host": "evil.example"},
            timeout=30,
        ).json()
        assert created["meta"]["location"].startswith("https://scim.example.com/scim/v2/")
    finally:
        assert stop(proc) == 0
    text = log.read_text(errors="replace")
    assert "Booting worker" in text  # gunicorn's own, not Werkzeug's development server
    assert "development server" not in text.lower()
    access = [json.loads(line) for line in text.splitlines() if '"gunicorn.access"' in line]
    assert any(entry["path"] == "/scim/v2/Users" for entry in access)
    assert secret not in text  # the query string (emails in filters) is not logged


def test_serve_refuses_to_start_without_credentials() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GENESYS_", "SCIM_", "DATABASE_URL"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "GENESYS_CLIENT_ID" in done.stderr
