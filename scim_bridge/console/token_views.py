"""SCIM tokens on a page, and moving what one owns to another (an IdP migration), with the
signed-in operator's name and a reason on the audit trail (console/transfer.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from scim_bridge.console import transfer, web
from scim_bridge.scim.tokens import TokenError, TokenStore


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/tokens", "tokens", tokens)
    bp.add_url_rule("/tokens/transfer", "transfer", transfer_owned, methods=["POST"])


def _store() -> TokenStore:
    return TokenStore(web.console().parts.engine)


def tokens(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    store = _store()
    body = render_template(
        "tokens.html",
        tokens=store.list(),
        owned=store.owned(),
        error=error,
        form=request.form if error else {},
        moved=_recorded(request.args.get("event", "")),
    )
    return body, status


def _recorded(seq: str) -> dict[str, Any] | None:
    return transfer.recorded(web.console().parts.engine, int(seq)) if seq.isdigit() else None


def transfer_owned() -> BaseResponse | tuple[str, int]:
    """Reason required, then a confirmation page, then the move (audited in its transaction)."""
    form = request.form
    source, target = form.get("source", ""), form.get("target", "")
    reason = transfer.folded(form.get("reason"))
    if not reason:
        return tokens(error="Transfer: a reason is required.", status=400)
    if not source or not target or source == target:
        return tokens(error="Transfer: pick two different tokens.", status=400)
    if form.get("confirmed") != "yes":
        count = _store().owned().get(source, 0)
        body = render_template(
            "confirm_transfer.html", source=source, target=target, reason=reason, count=count
        )
        return body, 200
    try:
        moved = transfer.transfer(
            _store(),
            web.console().parts.audit,
            source=source,
            target=target,
            operator=web.session().operator,
            reason=reason,
            via="console",
        )
    except TokenError as e:
        return tokens(error=f"Transfer: {e}", status=409)
    return redirect(url_for("console.tokens", event=moved.seq), code=303)
