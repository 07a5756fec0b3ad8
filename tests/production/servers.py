"""Real server processes for the production tests: ``gunicorn -c gunicorn.conf.py wsgi:app`` and
``python -m scim_bridge worker``, each in a session of its own so that stopping it reaches every
process it forked, and a recorder of what reaches the sandbox.

Every process started here must be stopped in a ``finally`` (:func:`stop`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from scim_bridge.audit import Tag

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")

# Each audit tag a completed delete job records exactly once: the check for "no job run twice".
ONCE_PER_DELETE = (
    Tag.DEPROVISION_JOB_CREATED,
    Tag.DEPROVISION_USER_SNAPSHOT,
    Tag.DEPROVISION_USER_DEACTIVATED,
    Tag.DEPROVISION_HISTORY_CAPTURED,
    Tag.DEPROVISION_USER_DELETED,
    Tag.DEPROVISION_HISTORY_VERIFIED,
    Tag.DEPROVISION_TOMBSTONE_WRITTEN,
    Tag.DEPROVISION_JOB_COMPLETED,
)

# Settings a test must not inherit from the shell that runs it.
_OWN_PREFIXES = ("GENESYS_", "SCIM_BRIDGE_", "SCIM_", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bridge_env(sandbox: Any, database_url: str | None, **extra: str | None) -> dict[str, str]:
    """The environment of a bridge process on ``sandbox``'s org (``None`` values left out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    values: dict[str, str | None] = {
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": sandbox.client_id,
        "GENESYS_CLIENT_SECRET": sandbox.client_secret,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "HISTORY_JOB_POLL": "0.1",  # the test sandboxes' async details jobs take 50 ms
        **extra,
    }
    env.update({k: v for k, v in values.items() if v is not None})
    return env


def start_gunicorn(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``gunicorn -c gunicorn.conf.py wsgi:app`` from the repository root, output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_worker(env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m scim_bridge worker ARGS``, output to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scim_bridge", "worker", *args],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes], *, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before it was healthy")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{base_url}/healthz not answering after {timeout_s}s")


def stop(proc: subprocess.Popen[bytes], *, timeout_s: float = 30) -> int | None:
    """SIGTERM, wait; then SIGKILL to the whole session if it is still there. Its exit code
    after the SIGTERM, or None when it had to be killed."""
    return stop_all([proc], timeout_s=timeout_s)[0]


def stop_all(
    procs: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 30
) -> list[int | None]:
    """Stop several at once: one SIGTERM to each (a second one could reach a Python process in
    its interpreter shutdown, where the default action applies again), then wait for each."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    end = time.monotonic() + timeout_s
    for p in procs:
        try:
            codes.append(p.wait(max(end - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            codes.append(None)
        # Whatever the leader left behind in its session (a worker of a master that died).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        if p.poll() is None:
            p.wait(10)
    return codes


class ArrivalRecorder:
    """WSGI middleware for the sandbox app: when each ``/api/`` request arrived, and its answer.

    Installed with ``app.wsgi_app = ArrivalRecorder(app.wsgi_app)`` before the server starts.
    """

    def __init__(self, wrapped: Callable[..., Any]) -> None:
        self._wrapped = wrapped
        self._lock = threading.Lock()
        self.calls: list[tuple[float, str, str, int]] = []  # (time, method, path, status)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith("/api/"):
            return self._wrapped(environ, start_response)
        arrived = time.time()
        method = str(environ.get("REQUEST_METHOD"))

        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            with self._lock:
                self.calls.append((arrived, method, path, int(status.split(maxsplit=1)[0])))
            return start_response(status, headers, *args)

        return self._wrapped(environ, recording_start_response)

    def times(self) -> list[float]:
        with self._lock:
            return sorted(c[0] for c in self.calls)


def max_in_window(times: list[float], window_s: float) -> int:
    """The most events in any half-open interval of ``window_s`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """A list to put started processes in; every one still running is stopped on the way out."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        stop_all(started)
