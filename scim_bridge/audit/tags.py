"""Audit event tags: ``source:subject:action`` (STYLE.md 8; pypi/warehouse ``events/tags.py``).

A tag names what happened, never how it turned out: the outcome is its own field.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    # What an IdP (or a person with curl) asked for, through which SCIM token.
    SCIM_USER_CREATED = "scim:user:created"
    SCIM_USER_UPDATED = "scim:user:updated"
    SCIM_USER_DEACTIVATE_REQUESTED = "scim:user:deactivate-requested"
    SCIM_USER_REACTIVATE_REQUESTED = "scim:user:reactivate-requested"
    SCIM_USER_DELETE_REQUESTED = "scim:user:delete-requested"
    SCIM_USER_REFUSED = "scim:user:refused"
    SCIM_USER_REHIRED = "scim:user:rehired"
    SCIM_GROUP_CREATED = "scim:group:created"
    SCIM_GROUP_UPDATED = "scim:group:updated"
    SCIM_GROUP_DELETED = "scim:group:deleted"
    SCIM_TOKEN_CREATED = "scim:token:created"  # noqa: S105 (a tag, not a secret)
    SCIM_TOKEN_REVOKED = "scim:token:revoked"  # noqa: S105
    SCIM_TOKEN_ROTATED = "scim:token:rotated"  # noqa: S105
    SCIM_TOKEN_TRANSFERRED = "scim:token:transferred"  # noqa: S105
    SCIM_AUTH_FAILED = "scim:auth:failed"
    # A token asked for a user or group outside its scope or owned by another token (404).
    SCIM_ACCESS_DENIED = "scim:access:denied"

    # What the deprovisioning engine did in Genesys, step by step.
    DEPROVISION_JOB_CREATED = "deprovision:job:created"
    DEPROVISION_JOB_JOINED = "deprovision:job:joined"
    DEPROVISION_JOB_HELD = "deprovision:job:held"
    DEPROVISION_JOB_APPROVED = "deprovision:job:approved"
    DEPROVISION_JOB_RETRIED = "deprovision:job:retried"
    DEPROVISION_JOB_DEFERRED = "deprovision:job:deferred"
    DEPROVISION_JOB_COMPLETED = "deprovision:job:completed"
    DEPROVISION_JOB_FAILED = "deprovision:job:failed"
    DEPROVISION_JOB_CANCELLED = "deprovision:job:cancelled"
    # A request's job for a user Genesys does not have, failed at its first read: not kept.
    DEPROVISION_JOB_DISCARDED = "deprovision:job:discarded"
    DEPROVISION_JOB_STEP = "deprovision:job:step"  # a step with no tag of its own (its calls)
    DEPROVISION_JOB_PLANNED = "deprovision:job:planned"  # DRY_RUN
    DEPROVISION_USER_SNAPSHOT = "deprovision:user:snapshot"
    DEPROVISION_USER_PROTECTED = "deprovision:user:protected"
    DEPROVISION_QUEUE_REMOVED = "deprovision:queue:removed"
    DEPROVISION_QUEUE_RESTORED = "deprovision:queue:restored"
    # The footprint (issue 12): each part restored on reactivation, a part Genesys refused for
    # good, and the check against the snapshot.
    DEPROVISION_DIVISION_RESTORED = "deprovision:division:restored"
    DEPROVISION_ROLES_RESTORED = "deprovision:roles:restored"
    DEPROVISION_SKILLS_RESTORED = "deprovision:skills:restored"
    DEPROVISION_LANGUAGES_RESTORED = "deprovision:languages:restored"
    DEPROVISION_RESTORE_FAILED = "deprovision:footprint:restore-failed"
    DEPROVISION_FOOTPRINT_VERIFIED = "deprovision:footprint:verified"
    DEPROVISION_FOOTPRINT_MISMATCH = "deprovision:footprint:mismatch"
    DEPROVISION_CONVERSATION_WAITING = "deprovision:conversation:waiting"
    # ACTIVE_CONVERSATION_WAIT ran out: access is cut anyway (issue 10).
    DEPROVISION_CONVERSATION_WAIT_EXPIRED = "deprovision:conversation:wait-expired"
    # Genesys answered without ``conversationSummary``: decided from what is known (issue 10).
    DEPROVISION_CONVERSATION_UNKNOWN = "deprovision:conversation:unknown"
    # An operator asked to cut access now (cut-access), with their reason.
    DEPROVISION_ACCESS_CUT_REQUESTED = "deprovision:access:cut-requested"
    # DELETE /api/v2/tokens/{userId}: every session of the user ended (with each deactivation).
    DEPROVISION_SESSIONS_REVOKED = "deprovision:sessions:revoked"
    # Queue memberships Genesys refused to remove (memberBy=group: 400); retried with backoff,
    # then given up on and left recorded on the job.
    DEPROVISION_QUEUE_REMOVE_FAILED = "deprovision:queue:remove-failed"
    DEPROVISION_QUEUE_DRAIN_INCOMPLETE = "deprovision:queue:drain-incomplete"
    DEPROVISION_USER_DEACTIVATED = "deprovision:user:deactivated"
    DEPROVISION_USER_REACTIVATED = "deprovision:user:reactivated"
    DEPROVISION_HISTORY_WAITING = "deprovision:history:waiting"  # on an async details job
    DEPROVISION_HISTORY_CAPTURED = "deprovision:history:captured"
    DEPROVISION_USER_DELETED = "deprovision:user:deleted"
    DEPROVISION_HISTORY_VERIFIED = "deprovision:history:verified"
    DEPROVISION_HISTORY_MISMATCH = "deprovision:history:mismatch"
    # An operator accepted named conversations as missing (who, why): the delete proceeds.
    DEPROVISION_HISTORY_ACCEPTED = "deprovision:history:accepted"
    DEPROVISION_USER_RESTORED = "deprovision:user:restored"
    DEPROVISION_TOMBSTONE_WRITTEN = "deprovision:tombstone:written"
    DEPROVISION_BREAKER_TRIPPED = "deprovision:breaker:tripped"

    # Operators.
    ADMIN_AUTH_FAILED = "admin:auth:failed"
    ADMIN_AUDIT_EXPORTED = "admin:audit:exported"
    OPERATOR_CREATED = "console:operator:created"
    OPERATOR_REVOKED = "console:operator:revoked"
    CONSOLE_SIGNED_IN = "console:session:signed-in"
    CONSOLE_SIGNED_OUT = "console:session:signed-out"
    CONSOLE_AUTH_FAILED = "console:auth:failed"
    CONSOLE_SIGN_IN_THROTTLED = "console:auth:throttled"
    CONSOLE_AUDIT_VERIFIED = "console:audit:verified"

    # The trail itself.
    AUDIT_CHAIN_KEYED = "audit:chain:keyed"  # AUDIT_HMAC_KEY set: the head is keyed from here
