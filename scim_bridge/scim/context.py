"""What the SCIM views need, built by ``create_app`` and kept on ``app.extensions``."""

from __future__ import annotations

import dataclasses
import logging

from flask import current_app, g, request

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision.api import Deprovisioning
from scim_bridge.directory.scoped import ScopedDirectory
from scim_bridge.directory.service import Directory
from scim_bridge.scim.auth import FailureThrottle
from scim_bridge.scim.errors import ServiceUnavailable
from scim_bridge.scim.tokens import TokenIdentity, TokenStore

log = logging.getLogger(__name__)

KEY = "scim"


@dataclasses.dataclass
class ScimContext:
    directory_service: Directory | None  # None when no Genesys org is configured
    tokens: TokenStore
    audit: AuditLog
    deprovisioning: Deprovisioning | None
    ack_mode: str = "success"  # SCIM_ACK: success | strict
    request_deadline_s: float = 30.0  # SCIM_REQUEST_DEADLINE
    max_genesys_calls: int = 30  # SCIM_MAX_GENESYS_CALLS
    public_url: str | None = None  # SCIM_BRIDGE_PUBLIC_URL (no trailing slash)
    throttle: FailureThrottle = dataclasses.field(default_factory=FailureThrottle)
    # Out-of-reach requests (scope, another token's resource): audited like failed logins.
    denials: FailureThrottle = dataclasses.field(default_factory=FailureThrottle)

    @property
    def directory(self) -> ScopedDirectory:
        """The directory as this request's token sees it (``directory/access.py``)."""
        if self.directory_service is None:
            raise ServiceUnavailable("No Genesys Cloud org is configured for this bridge.")
        scoped: ScopedDirectory | None = g.get("scim_directory")
        if scoped is None:
            scoped = ScopedDirectory(self.directory_service, identity().access, self.denied)
            g.scim_directory = scoped
        return scoped

    def denied(self, resource_type: str, resource_id: str, reason: str) -> None:
        """A resource out of this token's reach was asked for: logged every time, audited at
        most once per token and reason every 10 s (with how many it stands for)."""
        name = token_name()
        log.warning(
            "SCIM access denied",
            extra={"token": name, "reason": reason, "resource_type": resource_type},
        )
        suppressed = self.denials.admit(f"{name}:{reason}")
        if suppressed is None:
            return
        self.record(
            Tag.SCIM_ACCESS_DENIED,
            outcome="refused",
            detail={
                "resource_type": resource_type,
                "id": resource_id,
                "reason": reason,
                "method": request.method,
                "suppressed_since_last": suppressed,
            },
        )

    def record(
        self,
        tag: Tag,
        *,
        outcome: str = "ok",
        scim_id: str | None = None,
        job_id: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        """An audit event for this request: actor and IdP are the SCIM token's name."""
        actor = token_name()
        self.audit.record(
            tag,
            actor=actor,
            outcome=outcome,
            idp=actor,
            scim_id=scim_id,
            genesys_user_id=scim_id if tag.value.startswith("scim:user") else None,
            job_id=job_id,
            detail=detail,
            correlation_id=g.get("correlation_id"),
        )


def context() -> ScimContext:
    found: ScimContext = current_app.extensions["scim_bridge"].extra[KEY]
    return found


def token_name() -> str:
    return str(g.get("scim_token_name") or "anonymous")


def identity() -> TokenIdentity:
    """The request's token: name, scopes and IdP (set by ``auth.authenticate``)."""
    found: TokenIdentity | None = g.get("scim_identity")
    return found if found is not None else TokenIdentity(token_name())
