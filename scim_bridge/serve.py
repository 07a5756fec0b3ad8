"""``scim-bridge serve``: the production server, gunicorn with the project's ``gunicorn.conf.py``
serving ``wsgi:app``, so that there is one way to serve (issue 14 item 4).

``GENESYS_REGION`` or ``GENESYS_API_HOST``, ``GENESYS_CLIENT_ID``, ``GENESYS_CLIENT_SECRET``,
``DATABASE_URL``, ``SCIM_BRIDGE_ADMIN_TOKEN``, ``SCIM_BRIDGE_PUBLIC_URL``; the gunicorn settings
are ``gunicorn.conf.py``'s (``SCIM_BRIDGE_WORKERS`` ...). Refuses to start without Genesys
credentials (checked here first, then again by ``wsgi.py``). The process becomes gunicorn
(``exec``), so signals reach its master directly. ``--host``/``--port`` set ``SCIM_BRIDGE_BIND``.
The development server is ``scim-bridge demo`` only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CONFIG = "gunicorn.conf.py"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to bind (default: SCIM_BRIDGE_BIND or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: SCIM_BRIDGE_BIND or 8080)")


def project_dir() -> Path | None:
    """Where ``gunicorn.conf.py`` and ``wsgi.py`` are: the working directory (the container's
    ``/app``) or the checkout the package runs from."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (candidate / CONFIG).is_file() and (candidate / "wsgi.py").is_file():
            return candidate
    return None


def command(directory: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(directory / CONFIG),
        "--chdir",
        str(directory),
        "wsgi:app",
    ]


def run(args: argparse.Namespace) -> int:
    from scim_bridge.config import ConfigError, Settings  # noqa: PLC0415

    try:
        Settings.from_env().require_genesys()
    except ConfigError as e:
        sys.stderr.write(f"scim-bridge serve: {e}\n")
        return 2
    directory = project_dir()
    if directory is None:
        sys.stderr.write(
            f"scim-bridge serve: no {CONFIG} and wsgi.py here or next to the package; run it "
            "from the project directory (the container's /app)\n"
        )
        return 2
    if args.host is not None or args.port is not None:
        host, _, port = os.environ.get("SCIM_BRIDGE_BIND", "0.0.0.0:8080").rpartition(":")
        os.environ["SCIM_BRIDGE_BIND"] = (
            f"{args.host if args.host is not None else host}:"
            f"{args.port if args.port is not None else port}"
        )
    argv = command(directory)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # noqa: S606 (our own interpreter and arguments, no shell)
    return 0  # not reached: exec replaced the process
