"""``scim-bridge sandbox``: serve the Genesys Cloud API simulator until interrupted."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9100, help="port (default 9100; 0 picks one)")
    parser.add_argument("--users", type=int, default=200, help="users to seed (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the org (default 1)")
    parser.add_argument(
        "--rate-limit", type=int, default=300, help="requests per minute per token (default 300)"
    )
    parser.add_argument(
        "--token-ttl", type=int, default=86400, help="token lifetime in seconds (default 86400)"
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=1095,
        help="days of seeded conversation history, sparse before the last 90 (default 1095)",
    )
    parser.add_argument(
        "--async-job-delay",
        type=float,
        default=3.0,
        help="seconds an async details job takes to be FULFILLED (default 3)",
    )
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--quiet", action="store_true", help="no access log line per request")
    parser.add_argument(
        "--no-group-queues",
        dest="group_queue_members",
        action="store_false",
        help="seed no memberBy=group queue memberships (seeded by default)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so that ``scim-bridge --help`` does not pay for Flask.
    from scim_bridge.sandbox import SandboxConfig, create_app
    from scim_bridge.sandbox.server import ServerThread

    config = SandboxConfig(
        users=args.users,
        seed=args.seed,
        rate_limit_per_minute=args.rate_limit,
        token_ttl_s=args.token_ttl,
        history_days=args.history_days,
        async_job_delay_s=args.async_job_delay,
        client_id=args.client_id,
        client_secret=args.client_secret,
        group_queue_members=args.group_queue_members,
    )
    server = ServerThread(create_app(config), args.host, args.port, access_log=not args.quiet)
    print(f"Genesys Cloud sandbox on {server.url}  (GENESYS_API_HOST={server.url})", flush=True)
    print(f"  client id {config.client_id}  secret {config.client_secret}", flush=True)
    print(f"  {config.users} users, seed {config.seed}, {config.rate_limit_per_minute} req/min per token;"
          f" control endpoints under {server.url}/sandbox", flush=True)  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0
