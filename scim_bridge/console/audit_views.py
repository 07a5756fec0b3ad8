"""The audit trail: filtered, paged newest first, and exported as JSON Lines."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request

from scim_bridge.audit import Tag
from scim_bridge.console import queries, web
from scim_bridge.console.operators import actor


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/audit", "audit", audit)
    bp.add_url_rule("/audit/export.jsonl", "audit_export", audit_export)


def audit_filter() -> queries.AuditFilter:
    args = request.args
    tag = args.get("tag") or None
    if tag is not None and tag not in set(Tag):
        abort(400, f"unknown tag {tag!r}")
    return queries.AuditFilter(
        tag=tag,
        user=(args.get("user") or "").strip() or None,
        actor=(args.get("actor") or "").strip() or None,
        since=web.moment(args.get("since")),
        until=web.moment(args.get("until")),
    )


def audit() -> str:
    where = audit_filter()
    before = request.args.get("before")
    events, next_before = queries.audit_page(
        web.console().parts.engine,
        where,
        before_seq=int(before) if before and before.isdigit() else None,
    )
    query = {k: v for k, v in request.args.items() if k != "before" and v}
    return render_template(
        "audit.html", events=events, next_before=next_before, query=query, tags=list(Tag)
    )


def audit_export() -> Response:
    where, parts = audit_filter(), web.console().parts
    parts.audit.record(
        Tag.ADMIN_AUDIT_EXPORTED,
        actor=actor(web.session().operator),
        detail={"filters": {k: v for k, v in request.args.items() if v}, "via": "console"},
    )
    response = Response(queries.audit_export(parts.engine, where), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.jsonl"'
    return response
