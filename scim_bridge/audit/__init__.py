"""Append-only, hash-chained audit events; evidence receipts; export and verify (docs/audit.md)."""

from scim_bridge.audit.chain import GENESIS_HASH, AuditEvent, VerifyResult
from scim_bridge.audit.log import AuditLog, Recorder
from scim_bridge.audit.redact import redact
from scim_bridge.audit.tags import Tag

__all__ = ["GENESIS_HASH", "AuditEvent", "AuditLog", "Recorder", "Tag", "VerifyResult", "redact"]
