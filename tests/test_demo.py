"""The README's run command: ``python -m scim_bridge demo`` starts the sandbox and the bridge,
prints a SCIM base URL, a SCIM bearer token, an admin token and the console's URL with an
operator token that work, and stops on SIGINT (Ctrl-C) or SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_serves_scim_and_admin_with_the_printed_tokens(
    tmp_path: Path, stop: signal.Signals
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYS_", "DATABASE_URL"))}
    env.pop("SCIM_BRIDGE_ADMIN_TOKEN", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout's code
    env["PYTHONFAULTHANDLER"] = "1"  # a stop that hangs dumps every thread's stack (SIGABRT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "demo", "--port", str(_free_port()), "--users", "12"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        labels = (
            "SCIM base URL",
            "Bearer token",
            "Admin token",
            "Console",
            "Operator token",
            "Database",
        )
        while len(printed) < len(labels) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            for label in labels:
                if line.startswith(label):
                    printed[label] = line[len(label) :].split()[0]
        assert len(printed) == len(labels), printed
        http = urllib3.PoolManager()
        base = printed["SCIM base URL"]
        users = http.request(
            "GET",
            f"{base}/Users?count=2",
            headers={"Authorization": f"Bearer {printed['Bearer token']}"},
        )
        assert users.status == 200
        body = json.loads(users.data)
        assert body["totalResults"] >= 2
        assert len(body["Resources"]) == 2
        refused = http.request("GET", f"{base}/Users", headers={"Authorization": "Bearer nope"})
        assert refused.status == 401
        root = base.removesuffix("/scim/v2")
        jobs = http.request(
            "GET",
            f"{root}/admin/jobs",
            headers={"Authorization": f"Bearer {printed['Admin token']}"},
        )
        assert jobs.status == 200
        _sign_in_to_the_console(http, printed["Console"], printed["Operator token"])
        # B8: the CLI reaches the demo's database with the printed DATABASE_URL.
        listed = subprocess.run(
            [sys.executable, "-m", "scim_bridge", "tokens", "list"],
            env={**env, "DATABASE_URL": printed["Database"]},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "demo" in listed.stdout
    finally:
        proc.send_signal(stop)
        _stopped(proc)
    assert proc.returncode == 0  # a clean stop (demo.STOP_SIGNALS), not KeyboardInterrupt's 130


# The demo's stop joins its parts one after another, each bounded (the in-process worker 10 s,
# the rate budget's prefetch 5 s, each server thread 5 s): on a loaded machine that can pass 20 s
# without anything being stuck. Past this, something is: its threads' stacks are the failure.
STOP_WAIT_S = 60


def _stopped(proc: subprocess.Popen[str]) -> None:
    try:
        proc.communicate(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints the stacks to stderr
        try:
            _, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        raise AssertionError(f"the demo did not stop:\n{stderr[-8000:]}") from None


def _sign_in_to_the_console(http: urllib3.PoolManager, console: str, token: str) -> None:
    page = http.request("GET", f"{console}sign-in")
    assert page.status == 200
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', page.data.decode())
    assert nonce is not None
    cookie = page.headers["Set-Cookie"].split(";")[0]
    signed = http.request(
        "POST",
        f"{console}sign-in",
        fields={"token": token, "csrf_token": nonce.group(1)},
        encode_multipart=False,
        headers={"Cookie": cookie},
        redirect=False,
    )
    assert signed.status == 302
    session = signed.headers["Set-Cookie"].split(";")[0]
    assert session.startswith("scimb_console=")
    overview = http.request("GET", console, headers={"Cookie": session}, redirect=False)
    assert overview.status == 200
    assert "Signed in as <b>demo-operator</b>" in overview.data.decode()
