"""The pages that only read: the overview (and its on-demand chain check), the job list and the
person lookup."""

from __future__ import annotations

import time

from flask import Blueprint, abort, render_template, request

from scim_bridge.audit import Tag
from scim_bridge.console import queries, web
from scim_bridge.console.operators import actor


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", overview)
    bp.add_url_rule("/audit/verify", "verify", verify, methods=["POST"])
    bp.add_url_rule("/jobs", "job_list", job_list)
    bp.add_url_rule("/people", "person", person)


def overview() -> str:
    parts, now = web.console().parts, time.time()
    seq, _ = parts.audit.head()
    shown = queries.overview(
        parts.engine,
        now=now,
        breaker=parts.settings.delete_breaker,
        budget_per_minute=parts.settings.rate_limit_per_minute,
        audit_head_seq=seq,
    )
    try:
        genesys = (True, parts.genesys_ready())
    except Exception as e:  # any failure is "not ready", shown as it is
        genesys = (False, str(e) or type(e).__name__)
    return render_template(
        "overview.html", o=shown, now=now, genesys=genesys, verified=None, tripped=tripped
    )


def tripped(o: queries.Overview) -> bool:
    return o.breaker is not None and o.deletes_in_window >= o.breaker.limit


def verify() -> str:
    parts = web.console().parts
    result = parts.audit.verify()
    parts.audit.record(
        Tag.CONSOLE_AUDIT_VERIFIED,
        actor=actor(web.session().operator),
        outcome="ok" if result.ok else "broken",
        detail={"count": result.count, "first_broken_seq": result.first_broken_seq},
    )
    return render_template("verified.html", result=result)


def job_list() -> str:
    """Newest first, 50 a page, paged by the last row's key (``older``/``newer``), not OFFSET."""
    args = request.args
    where = queries.JobFilter(
        state=args.get("state") or None,
        action=args.get("action") or None,
        user=(args.get("user") or "").strip() or None,
        idp=args.get("idp") or None,
        since=web.epoch(args.get("since")),
        until=web.epoch(args.get("until"), end=True),
    )
    try:
        older = queries.JobKey.parse(args.get("older"))
        newer = queries.JobKey.parse(args.get("newer"))
    except ValueError as e:
        abort(400, str(e))
    engine = web.console().parts.engine
    page = queries.job_page(engine, where, older=older, newer=newer)
    query = {k: v for k, v in args.items() if k not in ("older", "newer") and v}
    return render_template("jobs.html", page=page, query=query, idps=queries.idps(engine))


def person() -> str:
    lookup = (request.args.get("q") or "").strip()
    found = queries.person(web.console().parts.engine, lookup) if lookup else None
    return render_template("person.html", q=lookup, p=found)
