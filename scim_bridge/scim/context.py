"""What the SCIM views need, built by ``create_app`` and kept on ``app.extensions``."""

from __future__ import annotations

import dataclasses

from flask import current_app, g

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.deprovision.api import Deprovisioning
from scim_bridge.directory.service import Directory
from scim_bridge.scim.auth import FailureThrottle
from scim_bridge.scim.errors import ServiceUnavailable
from scim_bridge.scim.tokens import TokenStore

KEY = "scim"


@dataclasses.dataclass
class ScimContext:
    directory_service: Directory | None  # None when no Genesys org is configured
    tokens: TokenStore
    audit: AuditLog
    deprovisioning: Deprovisioning | None
    ack_mode: str = "success"  # SCIM_ACK: success | strict
    rehire: str = "restore"  # REHIRE: restore | refuse (issue 12)
    rehire_restore_footprint: bool = False  # REHIRE_RESTORE_FOOTPRINT
    throttle: FailureThrottle = dataclasses.field(default_factory=FailureThrottle)

    @property
    def directory(self) -> Directory:
        if self.directory_service is None:
            raise ServiceUnavailable("No Genesys Cloud org is configured for this bridge.")
        return self.directory_service

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
