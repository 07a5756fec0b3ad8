"""``scim-bridge demo``: the Genesys sandbox and the bridge together, seeded, on loopback.

A development server (threads, one process): for trying the bridge, not for production, which is
``scim-bridge serve`` (gunicorn).

The README's run command (``make demo``). Prints the SCIM base URL and a bearer token; point an
IdP (or curl) at it. The database is a fresh file in a temporary directory unless
``DATABASE_URL`` says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_bridge.config import Settings
    from scim_bridge.sandbox import SandboxConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="bridge port (default 8080)")
    parser.add_argument("--sandbox-port", type=int, default=0, help="sandbox port (default: any)")
    parser.add_argument("--users", type=int, default=50, help="users to seed (default 50)")
    parser.add_argument("--token", help="use this SCIM bearer token instead of a new one")


# SIGINT (Ctrl-C) and SIGTERM stop the demo. They are blocked in every thread from the start (a
# thread inherits its creator's mask) and taken synchronously by the main thread (``sigwait``),
# so the stop does not depend on which thread the kernel picks or on the interpreter turning a
# signal into KeyboardInterrupt: a clean-clone CI run saw a SIGINT left unhandled for 60 s while
# the main thread sat in the server's select loop beside the demo's other threads.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def run(args: argparse.Namespace) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # before any thread starts
    try:
        return _run(args)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _run(args: argparse.Namespace) -> int:
    from scim_bridge.app import create_app  # noqa: PLC0415
    from scim_bridge.config import ConfigError, Settings  # noqa: PLC0415
    from scim_bridge.console.operators import OperatorError, OperatorStore  # noqa: PLC0415
    from scim_bridge.sandbox import SandboxConfig  # noqa: PLC0415
    from scim_bridge.sandbox import create_app as create_sandbox  # noqa: PLC0415
    from scim_bridge.sandbox.server import ServerThread  # noqa: PLC0415
    from scim_bridge.scim.tokens import TokenError  # noqa: PLC0415

    out = sys.stdout
    try:
        settings = Settings.from_env()
    except ConfigError as e:
        sys.stderr.write(f"scim-bridge demo: {e}\n")
        return 2
    config = SandboxConfig(users=args.users)
    sandbox = ServerThread(create_sandbox(config), args.host, args.sandbox_port).start()
    settings = _demo_settings(settings, args, sandbox.url, config)
    admin_token = settings.admin_token
    app = create_app(settings)
    try:
        token = app.extensions["scim_bridge"].tokens.create("demo", args.token)
    except TokenError as e:
        sys.stderr.write(f"scim-bridge demo: {e}\n")
        sandbox.stop()
        return 1
    operators = OperatorStore(app.extensions["scim_bridge"].engine)
    operator_name = "demo-operator"
    try:
        operator = operators.create(operator_name)
    except OperatorError:  # a DATABASE_URL that a previous demo used
        operator_name = f"demo-operator-{secrets.token_hex(3)}"
        operator = operators.create(operator_name)
    bridge = ServerThread(app, args.host, args.port, access_log=True)
    base = f"{bridge.url}/scim/v2"
    out.write(
        f"Genesys sandbox  {sandbox.url}  ({config.users} users)\n"
        f"SCIM base URL    {base}\n"
        f"Bearer token     {token}\n"
        f"Admin token      {admin_token}  (GET {bridge.url}/admin/jobs, /admin/audit)\n"
        f"Console          {bridge.url}/admin/ui/  (sign in as {operator_name})\n"
        f"Operator token   {operator}\n"
        f"{_database_line(settings.database_url)}\n"
        f"Try:  curl -H 'Authorization: Bearer {token}' '{base}/Users?count=2'\n"
    )
    out.flush()
    try:
        bridge.start()
        signal.sigwait(STOP_SIGNALS)
    finally:
        bridge.stop()
        sandbox.stop()
        app.extensions["scim_bridge"].close()
    return 0


def _database_line(database_url: str) -> str:
    """Where the demo keeps its jobs, tokens and audit trail, and how a CLI command
    (``jobs list``, ``audit verify``, ``tokens create``) reaches it."""
    if "DATABASE_URL" in os.environ:
        import sqlalchemy as sa  # noqa: PLC0415

        shown = sa.make_url(database_url).render_as_string(hide_password=True)
        return f"Database         {shown}  (DATABASE_URL, as set)"
    return f"Database         {database_url}  (for the CLI: export DATABASE_URL='{database_url}')"


def _demo_settings(
    settings: Settings, args: argparse.Namespace, sandbox_url: str, config: SandboxConfig
) -> Settings:
    """The bridge's settings pointed at the sandbox: a fresh SQLite file unless ``DATABASE_URL``
    is set, and the admin API on."""
    database_url = settings.database_url
    if "DATABASE_URL" not in os.environ:
        database_url = (
            f"sqlite:///{Path(tempfile.mkdtemp(prefix='scim-bridge-demo-')) / 'bridge.db'}"
        )
    # The admin API (jobs, approvals, audit) is on in the demo: a fresh token unless one is set.
    admin_token = settings.admin_token or secrets.token_urlsafe(24)
    return dataclasses.replace(
        settings,
        admin_token=admin_token,
        genesys_api_host=sandbox_url,
        genesys_client_id=config.client_id,
        genesys_client_secret=config.client_secret,
        database_url=database_url,
        # meta.location and Location name where the demo listens (never the Host header).
        public_url=settings.public_url
        or (f"http://{args.host}:{args.port}" if args.port else None),
        # The sandbox's async details jobs take 3 s: poll them sooner than a real org's.
        history_job_poll_s=(
            settings.history_job_poll_s if "HISTORY_JOB_POLL" in os.environ else 2.0
        ),
        # and gather a batch's checks for as long as one such job takes
        history_batch_window_s=(
            settings.history_batch_window_s if "HISTORY_BATCH_WINDOW" in os.environ else 3.0
        ),
    )
