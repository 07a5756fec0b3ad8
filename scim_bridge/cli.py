"""The ``scim-bridge`` command (also ``python -m scim_bridge``).

Each sub-command lives with the part it drives, in a module exposing ``configure(parser)`` and
``run(args) -> int``; this file only routes. Modules are imported lazily so that ``--help`` and
``sandbox`` do not pay for the Genesys SDK import (about 2 s).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scim_bridge import __version__
from scim_bridge.config import ConfigError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("scim_bridge.sandbox.cli", "run the Genesys Cloud API simulator"),
    "worker": ("scim_bridge.deprovision.cli", "finish deprovisioning jobs until SIGTERM"),
    "jobs": (
        "scim_bridge.deprovision.jobs_cli",
        "list, show, approve or retry deprovisioning jobs",
    ),
    "audit": ("scim_bridge.audit.cli", "verify the audit trail's hash chain, or export it"),
    "demo": ("scim_bridge.demo", "run the sandbox and the bridge together (the README's demo)"),
    "serve": (
        "scim_bridge.serve",
        "serve the bridge (gunicorn with gunicorn.conf.py) against the org the environment names",
    ),
    "tokens": ("scim_bridge.scim.cli_tokens", "create, list or revoke SCIM bearer tokens"),
    "operators": (
        "scim_bridge.console.cli",
        "create, list or revoke named operators (the console's sign-in)",
    ),
    "doctor": (
        "scim_bridge.doctor",
        "check a Genesys org's credentials and permissions before go-live",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scim-bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scim-bridge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except ConfigError as e:  # e.g. AUDIT_HMAC_KEY missing for a keyed chain: one line, no trace
        print(f"scim-bridge {args.command}: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 2))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 1
