"""``python -m scim_bridge sandbox`` serves the simulator and prints its URL and credentials."""

from __future__ import annotations

import json
import subprocess
import sys

import urllib3


def test_sandbox_command_serves_and_prints_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "sandbox", "--port", "0", "--users", "12",
         "--seed", "4", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        credentials = process.stdout.readline()
        url = first.split(" on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert "sandbox-client" in credentials
        assert "sandbox-secret" in credentials
        http = urllib3.PoolManager(retries=False, timeout=10.0)
        info = json.loads(http.request("GET", url + "/sandbox").data)
        assert info["users"] == 12
        assert info["seed"] == 4
        http.clear()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
