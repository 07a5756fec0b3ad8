"""``scim-bridge audit verify | head | export``: check the chain, print its head, or write it out
as JSON Lines for a SIEM.

All read ``DATABASE_URL`` and ``AUDIT_HMAC_KEY`` (the bridge's own settings). ``verify`` exits 0
and prints the event count when the chain is intact, 1 and the first broken seq when it is not,
3 when there is no audit trail at that URL (2 is a usage error). ``verify --expect SEQ:HASH``
also fails when the trail no longer holds that head (a rewrite or a cut). ``head`` verifies, then
prints ``SEQ:HASH`` on its last line, to be kept somewhere the database's writers cannot reach. ``export`` writes one event per line to stdout
(docs/audit.md) and records an ``admin:audit:exported`` event saying what it exported; that
event's log line goes to stderr, so stdout stays pure JSON Lines.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from scim_bridge.logs import JsonFormatter

if TYPE_CHECKING:
    from scim_bridge.audit.log import AuditLog

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_USAGE = 2
EXIT_NO_TRAIL = 3


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = sub.add_parser(
        "verify",
        help="re-hash the whole chain; exit 0 when intact, 1 with the first broken seq",
        description="Re-hash every event and check the chain and its head (docs/audit.md).",
    )
    verify.add_argument(
        "--expect",
        metavar="SEQ:HASH",
        action="append",
        default=[],
        help="a head recorded earlier (`audit head`, the log); fail if the trail no longer "
        "holds it (repeatable)",
    )
    sub.add_parser(
        "head",
        help="verify, then print the head as SEQ:HASH on the last line",
        description="Verify the chain, then print its head as SEQ:HASH (keep it outside the "
        "database; check it later with `audit verify --expect SEQ:HASH`).",
    )
    export = sub.add_parser(
        "export",
        help="write events as JSON Lines to stdout (for SIEM import)",
        description="Write events, oldest first, one canonical JSON object per line.",
    )
    export.add_argument("--since", metavar="ISO", help="events at or after this time (ISO 8601)")
    export.add_argument("--user", metavar="ID", help="a SCIM id or Genesys user id")
    export.add_argument("--tag", help="one tag, e.g. deprovision:user:deleted")
    export.add_argument("--job", dest="job_id", metavar="ID", help="one deprovisioning job")
    export.add_argument(
        "--after-seq", type=int, metavar="N", help="events after seq N (incremental export)"
    )
    export.add_argument("--format", choices=["jsonl"], default="jsonl")


def run(args: argparse.Namespace) -> int:
    # Imported here so that ``scim-bridge --help`` does not pay for SQLAlchemy.
    import sqlalchemy as sa

    from scim_bridge.audit.chain import parse_head
    from scim_bridge.bootstrap import bootstrap
    from scim_bridge.config import ConfigError, Settings
    from scim_bridge.store.engine import NoDatabase
    from scim_bridge.store.schema import audit_events, audit_head

    try:
        settings = Settings.from_env()
        expected = [parse_head(text) for text in getattr(args, "expect", [])]
    except (ConfigError, ValueError) as e:
        print(f"scim-bridge audit: {e}", file=sys.stderr)
        return EXIT_USAGE
    with _stderr_logger() as logger:
        # migrate=False, existing=True: reading a database that has no trail must not create one.
        components = bootstrap(settings, migrate=False, existing=True, audit_logger=logger)
        try:
            try:
                inspector = sa.inspect(components.engine)
            except NoDatabase as e:
                print(f"no audit trail: {e}", file=sys.stderr)
                return EXIT_NO_TRAIL
            if not (
                inspector.has_table(audit_events.name) and inspector.has_table(audit_head.name)
            ):
                shown = sa.make_url(settings.database_url).render_as_string(hide_password=True)
                print(f"no audit trail at {shown}", file=sys.stderr)
                return EXIT_NO_TRAIL
            if args.audit_command == "verify":
                return _verify(components.audit, expected)
            if args.audit_command == "head":
                return _head(components.audit)
            return _export(components.audit, args)
        finally:
            components.close()


def _verify(log: AuditLog, expected: list[tuple[int, str]]) -> int:
    result = log.verify(expect=expected)
    if result.ok:
        keyed = "" if result.keyed_from is None else f", keyed from seq {result.keyed_from}"
        held = f", holds {len(expected)} expected head(s)" if expected else ""
        print(f"ok: {result.count} events, chain intact{keyed}{held} (head {result.head_hash})")
        return EXIT_OK
    print(
        f"BROKEN at seq {result.first_broken_seq}: {result.reason} "
        f"({result.count} events verified before it)"
    )
    return EXIT_BROKEN


def _head(log: AuditLog) -> int:
    from scim_bridge.audit.chain import format_head

    result = log.verify()
    if not result.ok:
        print(f"BROKEN at seq {result.first_broken_seq}: {result.reason}; no head printed")
        return EXIT_BROKEN
    seq, digest = log.head()
    print(f"ok: {result.count} events, chain intact; head (keep it outside the database):")
    print(format_head(seq, digest))
    return EXIT_OK


def _export(log: AuditLog, args: argparse.Namespace) -> int:
    from scim_bridge.audit.log import parse_iso
    from scim_bridge.audit.tags import Tag

    if args.since is not None:
        try:
            parse_iso(args.since)
        except ValueError:
            print(f"--since: expected an ISO 8601 time, got {args.since!r}", file=sys.stderr)
            return EXIT_USAGE
    if args.tag is not None and args.tag not in set(Tag):
        print(f"--tag: unknown tag {args.tag!r}", file=sys.stderr)
        return EXIT_USAGE
    log.check_can_append()  # it records itself: refuse before writing anything out
    filters = {
        "since": args.since,
        "user": args.user,
        "tag": args.tag,
        "job_id": args.job_id,
        "after_seq": args.after_seq,
    }
    exported = 0
    last_seq = None
    for event in log.iter_events(**filters):
        sys.stdout.write(event.to_json() + "\n")
        exported += 1
        last_seq = event.seq
    sys.stdout.flush()
    log.record(
        Tag.ADMIN_AUDIT_EXPORTED,
        actor="cli",
        detail={
            "via": "cli",
            "format": args.format,
            "filters": {k: v for k, v in filters.items() if v is not None},
            "count": exported,
            "last_seq": last_seq,
        },
    )
    return EXIT_OK


@contextlib.contextmanager
def _stderr_logger() -> Iterator[logging.Logger]:
    """The export event's log line goes to stderr: stdout is the export itself."""
    logger = logging.getLogger("scim_bridge.audit.cli")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
