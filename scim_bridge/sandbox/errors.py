"""Genesys ``ErrorBody`` errors (genesys-api.md 5.3, codes from 5.4)."""

from __future__ import annotations

from typing import Any

# The code a status gets when the raise site does not name one (genesys-api.md 5.4).
DEFAULT_CODES: dict[int, str] = {
    400: "bad.request",
    401: "authentication.required",
    403: "missing.any.permissions",
    404: "not.found",
    405: "method.not.allowed",  # UNCONFIRMED: no source names the 405 code
    408: "client.timeout",
    409: "general.conflict",
    413: "request.entity.too.large",
    415: "unsupported.media.type",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "request.timeout",
}

# Codes this sandbox chose where the real one is UNCONFIRMED (docs/sandbox.md lists them).
VERSION_MISMATCH = "version.mismatch"
ACTIVE_CONVERSATION = "user.active.conversation"


class ApiError(Exception):
    """An error answered as an ``ErrorBody``; raised anywhere below a view."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        message_with_params: str | None = None,
        message_params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        entity_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or DEFAULT_CODES.get(status, "bad.request")
        self.message = message
        self.message_with_params = message_with_params or message
        self.message_params = message_params or {}
        self.headers = headers or {}
        self.entity_id = entity_id
        self.extra = extra or {}

    @classmethod
    def bad_request(cls, message: str, code: str = "bad.request") -> ApiError:
        return cls(400, message, code)

    @classmethod
    def not_found(cls, what: str = "resource", entity_id: str | None = None) -> ApiError:
        return cls(404, f"The requested {what} was not found.", "not.found", entity_id=entity_id)

    def body(self, context_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": self.message,
            "code": self.code,
            "status": self.status,
            "contextId": context_id,
            "messageWithParams": self.message_with_params,
            "messageParams": self.message_params,
            "details": [],
            "errors": [],
        }
        if self.entity_id is not None:
            body["entityId"] = self.entity_id
        body.update(self.extra)
        return body
