"""SCIM errors: one hierarchy, mapped to HTTP in one place (STYLE.md 5).

Every failure under ``/scim/`` answers an RFC 7644 §3.12 error body::

    {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
     "status": "400", "scimType": "invalidFilter", "detail": "..."}

``status`` is a JSON string (§3.12; Okta's SPEC test checks it). ``register(app, blueprint)`` is
called once, by ``create_app``: the blueprint handler covers what the SCIM views raise, the
app-level 404/405 handlers cover URLs under ``/scim/`` that matched no route (blueprint handlers
never fire for those, Flask ``docs/blueprints.rst``). Anything unexpected becomes a generic 500
carrying only the correlation id; the exception type goes to the log, never a traceback.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from scim_bridge.directory import errors as directory_errors

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"
SCIM_PATH_PREFIX = "/scim/"

log = logging.getLogger(__name__)


class ScimError(Exception):
    """A failure the client is told about. Subclasses fix ``status`` and ``scim_type``."""

    status: int = 400
    scim_type: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if scim_type is not None:
            self.scim_type = scim_type
        self.headers = dict(headers or {})


# RFC 7644 §3.12 Table 9 scimType values (all 400 but uniqueness 409 and sensitive 403).
class InvalidFilter(ScimError):
    scim_type = "invalidFilter"


class TooMany(ScimError):
    scim_type = "tooMany"


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    scim_type = "mutability"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    scim_type = "invalidPath"


class NoTarget(ScimError):
    scim_type = "noTarget"


class InvalidValue(ScimError):
    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"


class Sensitive(ScimError):
    status = 403
    scim_type = "sensitive"


# Statuses without a scimType.
class Unauthorized(ScimError):
    """401 with ``WWW-Authenticate: Bearer`` (RFC 6750 §3; RFC 7235 §4.1 requires the header)."""

    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="scim-bridge"'})


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class Conflict(ScimError):
    status = 409


class NotImplementedHere(ScimError):
    """An endpoint or operation the bridge does not support (RFC 7644 §3.11, §3.12)."""

    status = 501


class PreconditionFailed(ScimError):
    """``If-Match`` did not match the resource's current version (RFC 7644 §3.14)."""

    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class ServiceUnavailable(ScimError):
    """Genesys is rate limiting or down, or ``SCIM_ACK=strict`` while access is not cut yet."""

    status = 503

    def __init__(self, detail: str, *, retry_after_s: float | None = None) -> None:
        seconds = max(1, int(retry_after_s + 0.999)) if retry_after_s is not None else 30
        super().__init__(detail, headers={"Retry-After": str(seconds)})


class TooManyRequests(ScimError):
    status = 429

    def __init__(self, detail: str, *, retry_after_s: float | None = None) -> None:
        seconds = max(1, int(retry_after_s + 0.999)) if retry_after_s is not None else 30
        super().__init__(detail, headers={"Retry-After": str(seconds)})


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def scim_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A SCIM JSON response (``application/scim+json``)."""
    response = Response(
        json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        status=status,
        mimetype=SCIM_MEDIA_TYPE,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: ScimError) -> Response:
    return scim_response(
        error_body(error.status, error.detail, error.scim_type), error.status, error.headers
    )


_HTTP_DETAIL = {
    400: "The request could not be understood.",
    404: "No such resource or endpoint.",
    405: "This method is not allowed on this endpoint.",
    413: "The request body is larger than the 1 MiB the service accepts.",
    415: "Send application/scim+json or application/json.",
}


def _from_http_exception(exc: HTTPException) -> ScimError:
    status = exc.code or 500
    scim_type = "invalidSyntax" if status == 400 else None
    headers: dict[str, str] = {}
    if status == 405:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return ScimError(
        _HTTP_DETAIL.get(status, exc.name), status=status, scim_type=scim_type, headers=headers
    )


def internal_error_response(exc: BaseException) -> Response:
    cid = g.get("correlation_id") or "unknown"
    log.error(
        "unexpected error while serving a SCIM request",
        extra={"error_type": type(exc).__name__, "path": request.path},
    )
    return error_response(
        ScimError(
            f"Internal error; quote correlation id {cid} to the operator.",
            status=500,
        )
    )


def rate_limited(detail: str, retry_after_s: float | None) -> ScimError:
    """Blocked by the Genesys rate budget: 429 with ``Retry-After`` (Okta retries by it, O-429;
    RFC 6585 §4), except for a token marked as Entra's (``tokens create --idp entra``): 503 with
    ``Retry-After``, since Entra's handling of 429 is UNCONFIRMED (idp-behaviour.md 2)."""
    identity = g.get("scim_identity")
    if identity is not None and getattr(identity, "idp", None) == "entra":
        return ServiceUnavailable(detail, retry_after_s=retry_after_s)
    return TooManyRequests(detail, retry_after_s=retry_after_s)


# The directory's failures that map to one SCIM error each, whatever they carry.
_BY_DIRECTORY_ERROR: tuple[tuple[type[directory_errors.DirectoryError], type[ScimError]], ...] = (
    (directory_errors.NotFound, NotFound),
    (directory_errors.AlreadyExists, Uniqueness),
    (directory_errors.VersionMismatch, PreconditionFailed),
    (directory_errors.Rejected, InvalidValue),
    (directory_errors.NotPermitted, Forbidden),
    (directory_errors.OutOfScope, Forbidden),
    (directory_errors.TooMany, TooMany),
)


def from_directory(exc: directory_errors.DirectoryError) -> ScimError:
    """The directory's failures as SCIM errors: the rate budget is ``rate_limited`` (429, or 503
    for Entra), an outage 503 with Retry-After."""
    for kind, error in _BY_DIRECTORY_ERROR:
        if isinstance(exc, kind):
            return error(exc.detail)
    if isinstance(exc, directory_errors.RateLimited):
        return rate_limited(exc.detail, exc.retry_after_s)
    return ServiceUnavailable(exc.detail, retry_after_s=exc.retry_after_s)


def _handle_blueprint_error(exc: Exception) -> Response:
    if isinstance(exc, ScimError):
        return error_response(exc)
    if isinstance(exc, directory_errors.DirectoryError):
        return error_response(from_directory(exc))
    if isinstance(exc, HTTPException):
        return error_response(_from_http_exception(exc))
    return internal_error_response(exc)


def unmatched(exc: HTTPException) -> Response | HTTPException:
    """Routing failures (404, 405) under /scim/ as SCIM JSON; any other path's is returned as it
    is, for the app-wide handler to answer (``app.py`` registers one per code for every part)."""
    if request.path.startswith(SCIM_PATH_PREFIX) or request.path == SCIM_PATH_PREFIX[:-1]:
        return error_response(_from_http_exception(exc))
    return exc


def register(app: Flask, blueprint: Blueprint) -> None:
    """Install the SCIM error handlers. Called once, by ``create_app``, before registering
    ``blueprint`` on ``app``."""
    blueprint.register_error_handler(Exception, _handle_blueprint_error)
    app.register_error_handler(404, unmatched)
    app.register_error_handler(405, unmatched)
