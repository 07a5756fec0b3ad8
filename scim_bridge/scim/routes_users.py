"""``/Users`` (RFC 7644 §3): list and filter, GET, POST, PUT, PATCH, DELETE.

``active`` changes and DELETE go to the deprovisioning engine; the answer follows DESIGN.md
"What the IdP is told": success once access is cut or the job is durably queued; with
``SCIM_ACK=strict`` a 503 with ``Retry-After`` until access is cut; a SCIM error for what can never
succeed. A user with an unfinished DELETE job is gone as far as SCIM is concerned (404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response

from scim_bridge.audit import Tag
from scim_bridge.deprovision.api import (
    Action,
    OpenJob,
    Outcome,
    Refused,
    Requester,
    SnapshotRead,
    SnapshotReader,
)
from scim_bridge.directory import errors as directory_errors
from scim_bridge.directory import mapping
from scim_bridge.directory.rehire import Unrestorable
from scim_bridge.directory.service import UserView
from scim_bridge.scim import definitions, filters, http, quirks
from scim_bridge.scim.context import ScimContext, context, token_name
from scim_bridge.scim.discovery import base_url
from scim_bridge.scim.errors import (
    Forbidden,
    InvalidValue,
    Mutability,
    NotFound,
    PreconditionFailed,
    ScimError,
    ServiceUnavailable,
    rate_limited,
    scim_response,
)
from scim_bridge.scim.patch import Operation, apply_patch, parse_operations
from scim_bridge.scim.schemas import load_resource

Resource = dict[str, Any]


def render(view: UserView) -> Resource:
    base = base_url()
    return mapping.user_to_scim(
        view.user,
        view.local,
        location=f"{base}/Users/{view.user.id}",
        user_location=f"{base}/Users",
    )


def _with_job(resource: Resource, job: OpenJob | None) -> Resource:
    """The bridge's read-only extension, present while a deprovisioning job is open."""
    if job is not None:
        resource["schemas"].append(definitions.BRIDGE_SCHEMA)
        resource[definitions.BRIDGE_SCHEMA] = {
            "deprovisioning": {
                "jobId": job.job_id,
                "action": job.action,
                "state": job.state,
                "step": job.step,
                "created": job.created_at,
            }
        }
    return resource


def _open_job(ctx: ScimContext, user_id: str) -> OpenJob | None:
    return ctx.deprovisioning.open_job(user_id) if ctx.deprovisioning is not None else None


def _visible(ctx: ScimContext, user_id: str) -> OpenJob | None:
    """The user's open job; 404 when it is an unfinished DELETE (DESIGN.md), saying so only to a
    token that may reach the user (to any other it does not exist: trial-sec B3)."""
    job = _open_job(ctx, user_id)
    if job is not None and job.action == "delete":
        ctx.directory.check_user(user_id)
        raise NotFound(f"User {user_id} is being deleted.")
    return job


def _respond(resource: Resource, version: int, status: int = 200) -> Response:
    return http.respond(resource, etag=mapping.etag(version), status=status)


def _validated(resource: Resource) -> Resource:
    data = load_resource(resource, "User")
    active = data.get("active")
    if active is not None and not isinstance(active, bool):
        raise InvalidValue("'active' must be true or false.")
    return data


def _refused(error: Refused) -> ScimError:
    if error.reason == "not-found":
        return NotFound(error.detail)
    if error.reason in ("protected", "permission"):
        return Forbidden(error.detail)
    return InvalidValue(error.detail)


_REQUEST_TAGS: dict[str, Tag] = {
    "deactivate": Tag.SCIM_USER_DEACTIVATE_REQUESTED,
    "reactivate": Tag.SCIM_USER_REACTIVATE_REQUESTED,
    "delete": Tag.SCIM_USER_DELETE_REQUESTED,
}


# What the request's audit event says of the job's outcome.
_OUTCOME_SHOWN = ("access_cut", "final", "waiting_on", "joined_existing")


def request_job(
    ctx: ScimContext,
    action: Action,
    user_id: str,
    *,
    after_delete: bool = False,
    seen: SnapshotRead | None = None,
) -> Outcome:
    """Hand ``action`` to the engine and apply the acknowledgement policy. ``seen``: this
    request's read of the user, for a deactivation's snapshot (``SnapshotRead``)."""
    if ctx.deprovisioning is None:
        raise ServiceUnavailable("The deprovisioning engine is not running.")
    requester = Requester(actor=token_name(), idp=token_name(), scim_id=user_id)
    try:
        outcome = ctx.deprovisioning.request(
            action, user_id, requester=requester, after_delete=after_delete, seen=seen
        )
    except Refused as e:
        ctx.record(
            Tag.SCIM_USER_REFUSED,
            outcome=e.reason,
            scim_id=user_id,
            job_id=e.job_id,
            detail={"action": action, "reason": e.reason, "detail": e.detail},
        )
        raise _refused(e) from None
    ctx.record(
        _REQUEST_TAGS[action],
        outcome=outcome.state,
        scim_id=user_id,
        job_id=outcome.job_id,
        detail={k: getattr(outcome, k) for k in _OUTCOME_SHOWN},
    )
    if action != "reactivate" and ctx.ack_mode == "strict" and not outcome.access_cut:
        detail = (
            f"Deprovisioning job {outcome.job_id} is queued"
            + (f" ({outcome.waiting_on})" if outcome.waiting_on else "")
            + "; access is not cut yet."
        )
        if outcome.waiting_on == "rate-limit":
            raise rate_limited(detail, outcome.retry_after_s)
        raise ServiceUnavailable(detail, retry_after_s=outcome.retry_after_s)
    # Reactivated, with a part of the footprint not restored: the user can log in again, which is
    # what the IdP asked; the difference is on the job for an operator (issue 12).
    restored_in_part = outcome.state == "held" and outcome.reason == "restore-incomplete"
    if (
        action == "reactivate"
        and not outcome.final
        and outcome.state in ("held", "failed")
        and not restored_in_part
    ):
        raise ServiceUnavailable(
            f"Reactivation job {outcome.job_id} is {outcome.state}.",
            retry_after_s=outcome.retry_after_s,
        )
    return outcome


def _after_job(ctx: ScimContext, user_id: str, outcome: Outcome) -> UserView:
    """The user once the job changed its state (and version): Genesys's last answer to the job
    when the request ran it (the state PATCH's, or a read after the job's last change: issue 15),
    else a read of what Genesys holds now."""
    user = outcome.user
    if user is not None and user.id == user_id and user.state != "deleted":
        return ctx.directory.answered(user)
    return ctx.directory.get_user(user_id)


def _changed_names(before: Resource, after: Resource) -> list[str]:
    keys = {k for k in (*before, *after) if k not in ("id", "meta", "schemas", "password")}
    return sorted(k for k in keys if before.get(k) != after.get(k))


def _update(
    ctx: ScimContext,
    user_id: str,
    transform: Callable[[Resource], Resource],
    *,
    deactivating: bool = False,
    deactivation_only: bool = False,
) -> Response:
    """A PUT or PATCH. ``deactivating``: it asks for ``active`` false (no If-Match): its read,
    when it must read, is the job's snapshot read, which the job takes when nothing else was
    written. ``deactivation_only`` (implies ``deactivating``): a PATCH that does nothing else,
    answered 204 when its job was durably queued without running here."""
    expected = http.if_match()
    job = _visible(ctx, user_id)
    changed: list[str] = []

    def tracked(before: Resource) -> Resource:
        after = transform(before)
        changed[:] = _changed_names(before, after)
        return after

    # A PUT or PATCH that deactivates reads the user (when it must read) as the job's snapshot
    # will, and hands that read on when it wrote nothing else: one read, not two (issue 15).
    reader = None
    if deactivating and ctx.deprovisioning is not None:
        reader = SnapshotReader(ctx.deprovisioning.snapshot_read)
    result = ctx.directory.update_user(
        user_id, tracked, render=render, expected_version=expected, reader=reader
    )
    if result.changed:
        ctx.record(Tag.SCIM_USER_UPDATED, scim_id=user_id, detail={"attributes": changed})
    wanted = result.active_after
    view = result.view  # what Genesys answered the write (or the read, when nothing changed)
    if wanted is not None and (wanted != result.active_before or job is not None):
        # Only the read the decision was made on, unchanged since (nothing was written).
        last = reader.last if reader is not None else None
        fresh = last if last is not None and last.user is view.user and not wanted else None
        outcome = request_job(ctx, "reactivate" if wanted else "deactivate", user_id, seen=fresh)
        if wanted != result.active_before:
            # Stamped when the bridge accepts the change, even if the worker finishes the job.
            ctx.directory.touch_user(user_id)
        if deactivation_only and not wanted and not outcome.access_cut:
            # Durably queued, access not cut yet (the rate budget, another process, a live
            # conversation): 204, as when the user cannot be read at all (RFC 7644 §3.5.2
            # allows it). A 200 could only carry the user still active, contradicting the
            # change it confirms (DESIGN.md "What the IdP is told").
            return Response(status=204)
        view = _after_job(ctx, user_id, outcome)
        job = _visible(ctx, user_id)
    return _respond(_with_job(render(view), job), view.user.version)


def _deactivation_only(operations: list[Operation]) -> bool:
    """The PATCH sets ``active`` to false and nothing else (Okta's deactivate, Entra's disable,
    after the quirks have turned ``"False"`` into false)."""

    def is_active(name: object) -> bool:
        return isinstance(name, str) and name.lower() == "active"

    for op in operations:
        if op.op not in ("add", "replace"):
            return False
        if op.path is not None:
            plain = op.path.uri is None and op.path.sub is None and op.path.value_filter is None
            if not (plain and is_active(op.path.attr) and op.value is False):
                return False
        elif not (
            isinstance(op.value, dict)
            and len(op.value) == 1
            and all(is_active(k) and v is False for k, v in op.value.items())
        ):
            return False
    return bool(operations)


def _rehire(ctx: ScimContext, data: Resource, conflict: directory_errors.AlreadyExists) -> UserView:
    """``POST /Users`` whose userName Genesys holds for a deleted user: restore that user (same
    Genesys id) with the new attributes (REHIRE=restore, the default), or refuse with a 409 that
    says so (REHIRE=refuse). Re-raises the create's 409 when no deleted user holds the email."""
    holder = ctx.directory.deleted_holder(data)
    if holder is None:
        raise conflict
    user_id, found_by = holder
    if ctx.rehire != "restore":
        ctx.record(
            Tag.SCIM_USER_REFUSED,
            outcome="rehire-refused",
            scim_id=user_id,
            detail={"action": "rehire", "reason": "REHIRE=refuse", "found_by": found_by},
        )
        raise directory_errors.AlreadyExists(
            f"userName belongs to a deleted Genesys Cloud user ({user_id}); this bridge does not "
            "restore deleted users (REHIRE=refuse). Restore or purge it in Genesys Cloud first."
        )
    try:
        view = ctx.directory.rehire_user(user_id, data, owner=token_name())
    except Unrestorable as e:
        ctx.record(
            Tag.SCIM_USER_REFUSED,
            outcome="unrestorable",
            scim_id=user_id,
            detail={"action": "rehire", "reason": str(e), "found_by": found_by},
        )
        raise
    # REHIRE_RESTORE_FOOTPRINT: the roles, division, skills, languages and queues the user held
    # before it was deleted come back through a reactivation job (durable steps, checked against
    # the tombstone's snapshot). Off by default: a re-hire may be a different job, and the IdP's
    # group rules grant what it needs. A re-hire that arrives inactive restores nothing.
    restore = ctx.rehire_restore_footprint and view.user.state == "active"
    ctx.record(
        Tag.SCIM_USER_REHIRED,
        scim_id=user_id,
        detail={
            "found_by": found_by,
            "active": view.user.state == "active",
            "restore_footprint": restore,
        },
    )
    if restore:
        outcome = request_job(ctx, "reactivate", user_id, after_delete=True)
        view = _after_job(ctx, user_id, outcome)
    return view


def search(params: http.Query) -> Resource:
    """A ListResponse of Users (GET /Users, POST /Users/.search, part of POST /.search)."""
    ctx = context()
    query = filters.plan_user_query(params.filter)
    total, views = ctx.directory.list_users(
        query, start_index=params.start, count=params.count, render=render
    )
    resources: list[Resource] = []
    for view in views:
        job = _open_job(ctx, view.user.id)
        if job is not None and job.action == "delete":
            total -= 1
            continue
        resources.append(
            http.project(_with_job(render(view), job), params.attributes, params.excluded)
        )
    return http.list_response(resources, max(total, 0), params.start)


def list_users() -> Response:
    return scim_response(search(http.query_from_args()))


def search_users() -> Response:
    return scim_response(search(http.query_from_body()))


def get_user(user_id: str) -> Response:
    ctx = context()
    view = ctx.directory.get_user(user_id)
    job = _visible(ctx, user_id)
    return _respond(_with_job(render(view), job), view.user.version)


def create_user() -> Response:
    ctx = context()
    data = _validated(quirks.normalise_resource(http.json_body()))
    try:
        view = ctx.directory.create_user(data, owner=token_name())
    except directory_errors.AlreadyExists as conflict:
        view = _rehire(ctx, data, conflict)  # the email may be a deleted user's (issue 12)
        return _respond(_with_job(render(view), None), view.user.version, 201)
    ctx.record(
        Tag.SCIM_USER_CREATED,
        scim_id=view.user.id,
        detail={"active": view.user.state == "active"},
    )
    return _respond(_with_job(render(view), None), view.user.version, 201)


def replace_user(user_id: str) -> Response:
    ctx = context()
    data = quirks.normalise_resource(http.json_body(), resource_id=user_id)
    if isinstance(data, dict) and "id" in data:
        raise Mutability("'id' cannot be changed (RFC 7643 §3.1).")
    data = _validated(data)

    def replace(before: Resource) -> Resource:
        after = dict(data)
        after["id"] = before["id"]
        after["meta"] = before["meta"]
        return after

    # Okta's AIW apps deactivate with a PUT of the whole user, active false (idp-behaviour 1(d)).
    deactivating = data.get("active") is False and http.if_match() is None  # names canonical
    return _update(ctx, user_id, replace, deactivating=deactivating)


def patch_user(user_id: str) -> Response:
    ctx = context()
    operations = parse_operations(quirks.normalise_patch(http.json_body(), resource_id=user_id))
    job = _open_job(ctx, user_id)
    if job is not None and job.action == "delete" and _deactivation_only(operations):
        # Being deleted (GET answers 404), and inactive already or about to be (access first):
        # a deactivation joins the delete and is answered as one, never a 404 that would leave
        # the IdP unable to deactivate the user (issue 10).
        ctx.directory.check_user(user_id)
        request_job(ctx, "deactivate", user_id)
        return Response(status=204)

    def patch(before: Resource) -> Resource:
        return _validated(apply_patch(before, operations, "User"))

    deactivation = _deactivation_only(operations) and http.if_match() is None
    try:
        return _update(
            ctx, user_id, patch, deactivating=deactivation, deactivation_only=deactivation
        )
    except (directory_errors.Busy, directory_errors.Unavailable):
        # Genesys is rate limiting (the shared budget spent by a mass offboarding) or down,
        # so the user cannot be read now. A deactivation needs no read to be recorded: queue
        # it durably and answer 204, which both IdPs accept for PATCH, rather than a 503
        # that Entra counts towards quarantine (DESIGN.md "What the IdP is told").
        if not deactivation:
            raise
        # Ownership is the bridge's own record; a scoped token's scope needs the read that
        # just failed, so it re-raises: an unproven scope queues nothing.
        ctx.directory.check_user(user_id)
        request_job(ctx, "deactivate", user_id)
        return Response(status=204)


def delete_user(user_id: str) -> Response:
    ctx = context()
    # Out of this token's reach: 404 before a job exists (ownership from the bridge's record;
    # a scope needs one read of the user).
    ctx.directory.check_user(user_id)
    _visible(ctx, user_id)
    expected = http.if_match()
    if expected is not None:  # only a conditional DELETE needs the current version first
        view = ctx.directory.get_user(user_id)
        if expected != view.user.version:
            raise PreconditionFailed(
                f"If-Match names version {expected}; the current one is {view.user.version}."
            )
    # No Genesys read before the job is recorded: with the rate budget spent (a mass
    # offboarding on other replicas) a read could not finish within the request, and the IdP
    # must then hear "durably queued", not a 503 (DESIGN.md). The engine's own first read
    # tells an unknown user (Refused: 404) and one already deleted (404, RFC 7644 §3.6).
    # Every 404 says what a user out of the token's reach gets (``ScopedDirectory``): a token
    # cannot tell "not yours" from "not there" (trial-sec B3); the audit trail has the reason.
    try:
        outcome = request_job(ctx, "delete", user_id)
    except NotFound:
        raise directory_errors.not_found("User") from None
    if outcome.already_deleted:
        raise directory_errors.not_found("User")
    return Response(status=204)


def register(bp: Blueprint) -> None:
    bp.get("/Users")(list_users)
    bp.post("/Users/.search")(search_users)
    bp.get("/Users/<user_id>")(get_user)
    bp.post("/Users")(create_user)
    bp.put("/Users/<user_id>")(replace_user)
    bp.patch("/Users/<user_id>")(patch_user)
    bp.delete("/Users/<user_id>")(delete_user)
