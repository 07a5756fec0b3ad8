"""The image's ``HEALTHCHECK``: ask the running gunicorn for ``/healthz`` where it actually listens.

The address is worked out the way gunicorn works out its own: gunicorn's configuration machinery
reads the command PID 1 runs (``/proc/1/cmdline``: the image's ``CMD`` or whatever replaced it),
its ``--config`` file (``gunicorn.conf.py``: ``SCIM_BRIDGE_BIND``) and ``GUNICORN_CMD_ARGS``. So a
container started with another bind (a port, an address, ``[::]:8080``, ``unix:/path``) is probed
there. ``SCRIPT_NAME`` (which gunicorn honours as the mount point) prefixes the path.

The probe goes straight to the socket (``http.client``): urllib would send it through an
``HTTP_PROXY`` set in the container's environment. Standard library and ``gunicorn`` only: it runs
every interval and must not import the app.

Exit status 0 when ``/healthz`` answers 200, 1 otherwise (with the reason on stdout).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import sys
from pathlib import Path

DEFAULT_COMMAND = ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]  # the Dockerfile's CMD
TIMEOUT_S = 4.0


def server_command(proc: Path = Path("/proc/1/cmdline")) -> list[str]:
    """The command line of the server to probe: PID 1's when it is gunicorn, else the default."""
    try:
        argv = [a.decode() for a in proc.read_bytes().split(b"\0") if a]
    except OSError:
        return DEFAULT_COMMAND
    # exec form: ["gunicorn", ...]; or ["/path/python", "/path/gunicorn", ...]
    for i, arg in enumerate(argv[:2]):
        if os.path.basename(arg) == "gunicorn":
            return ["gunicorn", *argv[i + 1 :]]
    raise SystemExit(f"PID 1 is not gunicorn ({' '.join(argv[:3])}): no HTTP server to probe")


def listen_addresses(command: list[str]) -> list[str | tuple[str, int]]:
    """What gunicorn would bind for ``command`` in this environment (gunicorn's own parsing)."""
    from gunicorn.app.base import Application  # noqa: PLC0415 (cheap; keeps the module stdlib)

    class _Probe(Application):  # type: ignore[misc]
        def init(self, parser: object, opts: object, args: object) -> None:
            return None

        def load(self) -> None:
            return None

    saved = sys.argv
    sys.argv = command
    try:
        app = _Probe()
    finally:
        sys.argv = saved
    return list(app.cfg.address)


def probe_target(address: str | tuple[str, int]) -> tuple[str, int | None]:
    """(host or unix socket path, port or None) to connect to for a listen address."""
    if isinstance(address, str):
        return address, None
    host, port = address
    if host in ("", "0.0.0.0"):  # noqa: S104 (a listen address, mapped to loopback)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def check(address: str | tuple[str, int], script_name: str = "") -> str | None:
    """None when ``/healthz`` answers 200 at ``address``, else why not."""
    host, port = probe_target(address)
    conn: http.client.HTTPConnection
    if port is None:
        conn = _UnixConnection(host, TIMEOUT_S)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
    path = script_name.rstrip("/") + "/healthz"
    try:
        conn.request("GET", path, headers={"User-Agent": "scim-bridge-healthcheck"})
        status = conn.getresponse().status
    except OSError as e:
        return f"{host}:{port} {path}: {e}"
    finally:
        conn.close()
    return None if status == 200 else f"{host}:{port} {path}: HTTP {status}"


def main() -> int:
    # A relative --config names a file in PID 1's working directory (WORKDIR /app).
    with contextlib.suppress(OSError):
        os.chdir(os.readlink("/proc/1/cwd"))
    problems = []
    for address in listen_addresses(server_command()):
        problem = check(address, os.environ.get("SCRIPT_NAME", ""))
        if problem:
            problems.append(problem)
    for p in problems:
        sys.stdout.write(p + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
