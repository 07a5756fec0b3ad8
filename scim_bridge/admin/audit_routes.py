"""``GET /admin/audit``: read the trail; ``GET /admin/audit/verify``: check its chain."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.log import parse_iso

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadQuery(ValueError):
    pass


def _int_arg(name: str, *, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name}: expected {low} to {high}")
    return value


def _query() -> dict[str, Any]:
    since = request.args.get("since") or None
    if since is not None:
        try:
            parse_iso(since)
        except ValueError:
            raise BadQuery(f"since: expected an ISO 8601 time, got {since!r}") from None
    tag = request.args.get("tag") or None
    if tag is not None and tag not in set(Tag):
        raise BadQuery(f"tag: unknown tag {tag!r}")
    limit = _int_arg("limit", low=1, high=MAX_LIMIT)
    return {
        "user": request.args.get("user") or None,
        "since": since,
        "tag": tag,
        "job_id": request.args.get("job") or request.args.get("job_id") or None,
        "limit": DEFAULT_LIMIT if limit is None else limit,
        "after_seq": _int_arg("after_seq", low=0, high=2**62),
    }


def blueprint(audit: AuditLog) -> Blueprint:
    bp = Blueprint("admin_audit", __name__)

    @bp.errorhandler(BadQuery)
    def _bad_query(error: BadQuery) -> tuple[Response, int]:
        return jsonify(error="bad_request", detail=str(error)), 400

    @bp.get("/audit")
    def list_events() -> Response:
        """Events oldest first. ``user`` is a SCIM id or a Genesys user id; page with
        ``after_seq`` = the previous page's ``next_after_seq``."""
        query = _query()
        events = audit.events(**query)
        full_page = len(events) == query["limit"]
        return jsonify(
            events=[event.to_dict() for event in events],
            count=len(events),
            next_after_seq=events[-1].seq if full_page else None,
        )

    @bp.get("/audit/verify")
    def verify() -> tuple[Response, int]:
        result = audit.verify()
        body = {
            "ok": result.ok,
            "count": result.count,
            "first_broken_seq": result.first_broken_seq,
            "reason": result.reason,
            "head_hash": result.head_hash,
        }
        return jsonify(body), 200 if result.ok else 409

    return bp
