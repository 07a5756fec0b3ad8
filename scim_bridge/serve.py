"""``scim-bridge serve``: the bridge against the Genesys org the environment names.

``GENESYS_REGION`` or ``GENESYS_API_HOST``, ``GENESYS_CLIENT_ID``, ``GENESYS_CLIENT_SECRET``,
``DATABASE_URL``, ``SCIM_BRIDGE_ADMIN_TOKEN``. Refuses to start without Genesys credentials.
A threaded development server; production runs ``wsgi:app`` under gunicorn.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")


def run(args: argparse.Namespace) -> int:
    from scim_bridge.app import create_app  # noqa: PLC0415
    from scim_bridge.config import ConfigError, Settings  # noqa: PLC0415
    from scim_bridge.sandbox.server import ServerThread  # noqa: PLC0415

    try:
        settings = Settings.from_env()
        settings.require_genesys()
    except ConfigError as e:
        sys.stderr.write(f"scim-bridge serve: {e}\n")
        return 2
    app = create_app(settings)
    server = ServerThread(app, args.host, args.port, access_log=True)
    sys.stdout.write(f"SCIM base URL {server.url}/scim/v2 (Genesys {settings.genesys_api_host})\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.stop()
        app.extensions["scim_bridge"].close()
    return 0
