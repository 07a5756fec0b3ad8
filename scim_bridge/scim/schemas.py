"""Request-body validation (marshmallow) for Users, Groups and PATCH results.

Bodies have been through ``quirks.normalise_resource`` first. Attributes the bridge does not map
(``locale``, ``roles``, ``addresses``, ...) are accepted and ignored (RFC 7644 §3.3 lets a service
provider ignore them; Entra's default mappings send several). What a mapped attribute holds is
checked: a wrong type is 400 ``invalidValue``, never a silent drop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from scim_bridge.scim import definitions
from scim_bridge.scim.errors import InvalidSyntax, InvalidValue


def _strict_bool() -> fields.Boolean:
    """A JSON boolean only (the IdPs' string booleans were converted by the quirks)."""
    return fields.Boolean(allow_none=True, truthy={True}, falsy={False})


class _Base(Schema):
    class Meta:
        unknown = INCLUDE


class NameSchema(_Base):
    formatted = fields.String(allow_none=True)
    givenName = fields.String(allow_none=True)  # noqa: N815 (SCIM attribute names)
    familyName = fields.String(allow_none=True)  # noqa: N815


class MultiValueSchema(_Base):
    value = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    primary = _strict_bool()
    display = fields.String(allow_none=True)


class ManagerSchema(_Base):
    value = fields.String(allow_none=True)
    ref = fields.String(data_key="$ref", allow_none=True)
    displayName = fields.String(allow_none=True)  # noqa: N815


class EnterpriseSchema(_Base):
    employeeNumber = fields.String(allow_none=True)  # noqa: N815
    department = fields.String(allow_none=True)
    manager = fields.Nested(ManagerSchema, allow_none=True)


class UserSchema(_Base):
    schemas = fields.List(fields.String())
    userName = fields.String(  # noqa: N815
        required=True,
        validate=validate.Length(min=1, max=320),
        error_messages={"required": "A required value was missing: userName."},
    )
    externalId = fields.String(allow_none=True)  # noqa: N815
    displayName = fields.String(allow_none=True)  # noqa: N815
    title = fields.String(allow_none=True)
    active = _strict_bool()
    name = fields.Nested(NameSchema, allow_none=True)
    emails = fields.List(fields.Nested(MultiValueSchema), allow_none=True)
    phoneNumbers = fields.List(fields.Nested(MultiValueSchema), allow_none=True)  # noqa: N815
    enterprise = fields.Nested(
        EnterpriseSchema, data_key=definitions.ENTERPRISE_SCHEMA, allow_none=True
    )


class MemberSchema(_Base):
    value = fields.String(required=True, validate=validate.Length(min=1, max=200))
    ref = fields.String(data_key="$ref", allow_none=True)
    type = fields.String(allow_none=True)
    display = fields.String(allow_none=True)


class GroupSchema(_Base):
    schemas = fields.List(fields.String())
    displayName = fields.String(  # noqa: N815
        required=True,
        validate=validate.Length(min=1, max=400),
        error_messages={"required": "A required value was missing: displayName."},
    )
    externalId = fields.String(allow_none=True)  # noqa: N815
    members = fields.List(fields.Nested(MemberSchema), allow_none=True)


_SCHEMAS = {"User": UserSchema(), "Group": GroupSchema()}
_CORE = {"User": definitions.USER_SCHEMA, "Group": definitions.GROUP_SCHEMA}
_KNOWN_KEYS = {
    "User": ("schemas", "id", "externalId", "meta", *(a.name for a in definitions.USER.attributes)),
    "Group": (
        "schemas",
        "id",
        "externalId",
        "meta",
        *(a.name for a in definitions.GROUP.attributes),
    ),
}


def canonical_keys(body: Mapping[str, Any], resource_type: str) -> dict[str, Any]:
    """Attribute names are case-insensitive (RFC 7643 §2.1): spell the known ones canonically."""
    known = {k.lower(): k for k in _KNOWN_KEYS[resource_type]}
    known.update({u.lower(): u for u in definitions.EXTENSION_SCHEMAS})
    return {known.get(k.lower(), k): v for k, v in body.items()}


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    if isinstance(messages, Mapping):
        out: list[str] = []
        for key, value in messages.items():
            out.extend(_flatten(value, f"{prefix}{key}." if not isinstance(key, int) else prefix))
        return out
    if isinstance(messages, list):
        return [
            f"{prefix.rstrip('.')}: {m}" if prefix else str(m)
            for m in messages
            if isinstance(m, str)
        ] + [line for m in messages if not isinstance(m, str) for line in _flatten(m, prefix)]
    return [f"{prefix.rstrip('.')}: {messages}"]


def validate_resource(body: Any, resource_type: str) -> dict[str, Any]:
    """The body, key-canonicalised, or 400. Checks the core schema URN is listed when
    ``schemas`` is given (other URNs, such as Entra's non-URN group schema, are tolerated)."""
    if not isinstance(body, Mapping):
        raise InvalidSyntax(f"A {resource_type} must be a JSON object.")
    data = canonical_keys(body, resource_type)
    schemas = data.get("schemas")
    if schemas is not None:
        if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
            raise InvalidValue("'schemas' must be a list of schema URNs.")
        if _CORE[resource_type].lower() not in {s.lower() for s in schemas}:
            raise InvalidValue(f"'schemas' must include {_CORE[resource_type]} (RFC 7643 §3).")
    errors = _SCHEMAS[resource_type].validate(data)
    if errors:
        lines = _flatten(errors)
        required = [line for line in lines if "A required value was missing" in line]
        detail = required[0].split(": ", 1)[-1] if required else "; ".join(lines[:5])
        raise InvalidValue(detail)
    return data


__all__ = ["ValidationError", "canonical_keys", "validate_resource"]
