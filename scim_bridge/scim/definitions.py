"""The SCIM schemas the bridge serves (RFC 7643 §4, §8.7.1), as data: the one source of truth.

Everything else is derived from this catalogue: discovery (``/Schemas``), the marshmallow schemas
that load request bodies and dump responses (``scim/schemas.py``: types, required, mutability,
``returned``, lengths, ``attributes``/``excludedAttributes``), PATCH (which attributes are
multi-valued or read-only) and filters. It lists exactly what a round trip keeps: every attribute
is held by Genesys (``docs/scim-mapping.md``) or by the bridge's own record, so what ``/Schemas``
promises is what the IdP reads back. An attribute that is not listed here is ignored on input and
never returned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BRIDGE_SCHEMA = "urn:ietf:params:scim:schemas:extension:scim-bridge:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

EXTENSION_SCHEMAS = (ENTERPRISE_SCHEMA, BRIDGE_SCHEMA)


@dataclasses.dataclass(frozen=True)
class Attribute:
    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    # Longest value accepted (characters): the storage that holds it (a column's length, or
    # DEFAULT_MAX_LENGTH for values kept in the bridge's JSON record or sent to Genesys).
    max_length: int | None = None
    # Whether a create must carry it. Defaults to ``required``; ``active`` is advertised as
    # required (a Genesys user always has a state) but a create without it makes an active user.
    required_on_input: bool | None = None

    @property
    def must_be_given(self) -> bool:
        return self.required if self.required_on_input is None else self.required_on_input

    @property
    def writable(self) -> bool:
        """The client may set it (RFC 7643 §7: readOnly values are ignored on input)."""
        return self.mutability != "readOnly"

    @property
    def returnable(self) -> bool:
        return self.returned != "never"

    def sub(self, name: str) -> Attribute | None:
        lowered = name.lower()
        return next((a for a in self.sub_attributes if a.name.lower() == lowered), None)

    def to_scim(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "mutability": self.mutability,
            "returned": self.returned,
        }
        if self.type in ("string", "reference", "binary"):
            out["caseExact"] = self.case_exact
        if self.type == "string":
            out["uniqueness"] = self.uniqueness
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        return out


@dataclasses.dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        lowered = name.lower()
        return next((a for a in self.attributes if a.name.lower() == lowered), None)


# Values the bridge keeps in its JSON record (or hands to Genesys) are bounded so that one
# attribute cannot fill a row; columns have their own (``store/schema.py``).
DEFAULT_MAX_LENGTH = 1024
USER_NAME_MAX_LENGTH = 400  # directory_resources.user_name
EXTERNAL_ID_MAX_LENGTH = 400  # directory_resources.external_id
GROUP_NAME_MAX_LENGTH = 400
MEMBER_ID_MAX_LENGTH = 200


def _text(name: str, description: str, **kw: Any) -> Attribute:
    """A string attribute of at most ``DEFAULT_MAX_LENGTH`` characters."""
    return dataclasses.replace(
        Attribute(name, description=description, max_length=DEFAULT_MAX_LENGTH), **kw
    )


def _multi(
    name: str, description: str, types: Sequence[str], *extra: Attribute, value: bool = True
) -> Attribute:
    """A multi-valued complex attribute with the RFC 7643 §2.4 sub-attributes."""
    subs = (
        *((_text("value", f"The {name} value."),) if value else ()),
        _text("display", "A human-readable name for the value."),
        _text("type", "The kind of value.", canonical_values=tuple(types)),
        Attribute("primary", type="boolean", description="The preferred value."),
        *extra,
    )
    return Attribute(
        name, type="complex", multi_valued=True, description=description, sub_attributes=subs
    )


COMMON_ID = Attribute(
    "id",
    case_exact=True,
    mutability="readOnly",
    returned="always",
    uniqueness="server",
    description="The Genesys Cloud id.",
)
EXTERNAL_ID = Attribute(
    "externalId",
    case_exact=True,
    max_length=EXTERNAL_ID_MAX_LENGTH,
    description="The identifier the provisioning client uses; kept by the bridge.",
)

USER = Schema(
    USER_SCHEMA,
    "User",
    "A Genesys Cloud user.",
    (
        Attribute(
            "userName",
            required=True,
            uniqueness="server",
            max_length=USER_NAME_MAX_LENGTH,
            description="Unique (case-insensitively) among the bridge's users. An email address "
            "is the Genesys Cloud login; any other value is kept by the bridge and the work (or "
            "primary) email becomes the login.",
        ),
        Attribute(
            "name",
            type="complex",
            description="The user's name. Genesys holds one name; the parts are kept by the "
            "bridge (for users it never wrote, derived from the Genesys name).",
            sub_attributes=(
                _text("formatted", "The full name."),
                _text("familyName", "The family name."),
                _text("givenName", "The given name."),
                _text("middleName", "The middle name(s)."),
                _text("honorificPrefix", "Title before the name (Ms.)."),
                _text("honorificSuffix", "Title after the name (III)."),
            ),
        ),
        _text("displayName", "The Genesys Cloud name."),
        _text("nickName", "The casual name; kept by the bridge."),
        _text(
            "profileUrl",
            "A profile URL; kept by the bridge.",
            type="reference",
            reference_types=("external",),
        ),
        _text("title", "The job title."),
        _text("userType", "The kind of user (Employee, Contractor, ...); kept by the bridge."),
        _text("preferredLanguage", "RFC 7231 language tag; kept by the bridge."),
        _text("locale", "Locale (en-US); kept by the bridge."),
        _text("timezone", "IANA time zone (Europe/Paris); kept by the bridge."),
        Attribute(
            "active",
            type="boolean",
            required=True,
            required_on_input=False,
            description="false: inactive in Genesys Cloud. A Genesys user always has a state, so "
            "active is always returned and cannot be removed; a create without it makes an active "
            "user. Changes go through the deprovisioning engine.",
        ),
        Attribute(
            "password",
            mutability="writeOnly",
            returned="never",
            description="Accepted and discarded: Genesys Cloud users sign in through SSO. Never "
            "stored.",
        ),
        _multi(
            "emails",
            "Email addresses. The work one (else the primary one) is the Genesys work email; all "
            "are kept as written.",
            ("work", "home", "other"),
        ),
        _multi(
            "phoneNumbers",
            "Phone numbers. Types work, work2-work4, home, mobile, other and main are Genesys "
            "phone contacts; all are kept as written.",
            ("work", "work2", "work3", "work4", "home", "mobile", "main", "fax", "pager", "other"),
        ),
        _multi(
            "addresses",
            "Postal addresses; kept by the bridge.",
            ("work", "home", "other"),
            _text("formatted", "The full address."),
            _text("streetAddress", "Street."),
            _text("locality", "City."),
            _text("region", "State or region."),
            _text("postalCode", "Postal code."),
            _text("country", "ISO 3166-1 alpha-2 country code."),
            value=False,
        ),
    ),
)

ENTERPRISE = Schema(
    ENTERPRISE_SCHEMA,
    "EnterpriseUser",
    "Enterprise User (RFC 7643 §4.3).",
    (
        _text("employeeNumber", "Genesys employerInfo.employeeId."),
        _text("costCenter", "Kept by the bridge."),
        _text("organization", "Kept by the bridge."),
        _text("division", "Kept by the bridge (not the Genesys division)."),
        _text("department", "The department."),
        Attribute(
            "manager",
            type="complex",
            description="The user's manager (a Genesys user id).",
            sub_attributes=(
                _text("value", "The manager's id.", case_exact=True),
                Attribute(
                    "$ref",
                    type="reference",
                    reference_types=("User",),
                    max_length=DEFAULT_MAX_LENGTH,
                    description="The manager's URI (answered from the value; the value wins).",
                ),
            ),
        ),
    ),
)

BRIDGE = Schema(
    BRIDGE_SCHEMA,
    "ScimBridgeUser",
    "Read-only: the user's open deprovisioning job in scim-bridge, if any.",
    (
        Attribute(
            "deprovisioning",
            type="complex",
            mutability="readOnly",
            description="The unfinished deprovisioning job for this user.",
            sub_attributes=(
                Attribute("jobId", mutability="readOnly", case_exact=True, description="Job id."),
                Attribute(
                    "action",
                    mutability="readOnly",
                    canonical_values=("deactivate", "reactivate", "delete"),
                    description="What was asked.",
                ),
                Attribute("state", mutability="readOnly", description="Job state."),
                Attribute("step", mutability="readOnly", description="Current step."),
                Attribute(
                    "created", type="dateTime", mutability="readOnly", description="When asked."
                ),
            ),
        ),
    ),
)

GROUP = Schema(
    GROUP_SCHEMA,
    "Group",
    "A Genesys Cloud group.",
    (
        Attribute(
            "displayName",
            required=True,
            uniqueness="server",
            max_length=GROUP_NAME_MAX_LENGTH,
            description="Group name.",
        ),
        Attribute(
            "members",
            type="complex",
            multi_valued=True,
            description="Users in the group.",
            sub_attributes=(
                Attribute(
                    "value",
                    case_exact=True,
                    mutability="immutable",
                    required_on_input=True,
                    max_length=MEMBER_ID_MAX_LENGTH,
                    description="A member's id.",
                ),
                Attribute(
                    "$ref",
                    type="reference",
                    mutability="immutable",
                    reference_types=("User",),
                    description="A member's URI.",
                ),
                Attribute(
                    "type",
                    mutability="immutable",
                    canonical_values=("User",),
                    description="Always User: nested groups are not provisioned.",
                ),
                Attribute("display", mutability="readOnly", description="A member's name."),
            ),
        ),
    ),
)

SCHEMAS: Mapping[str, Schema] = {s.id: s for s in (USER, ENTERPRISE, BRIDGE, GROUP)}
RESOURCE_SCHEMAS: Mapping[str, tuple[Schema, tuple[Schema, ...]]] = {
    "User": (USER, (ENTERPRISE, BRIDGE)),
    "Group": (GROUP, ()),
}
KNOWN_URNS = (USER_SCHEMA, ENTERPRISE_SCHEMA, BRIDGE_SCHEMA, GROUP_SCHEMA)
# The Python-side name of each extension (marshmallow field names cannot hold the URN's dots).
EXTENSION_FIELDS: Mapping[str, str] = {ENTERPRISE_SCHEMA: "enterprise", BRIDGE_SCHEMA: "scimBridge"}

# Attributes a client can never set (RFC 7643 §3.1 "id", "meta"; §4.1 "groups").
READ_ONLY = frozenset({"id", "meta", "groups"})


def find_schema_urn(text: str) -> str | None:
    """The known schema URN ``text`` is, ignoring case."""
    lowered = text.lower()
    return next((u for u in KNOWN_URNS if u.lower() == lowered), None)


def find_attribute(resource_type: str, uri: str | None, name: str) -> Attribute | None:
    core, extensions = RESOURCE_SCHEMAS[resource_type]
    schemas = (
        (core, *extensions) if uri is None else tuple(s for s in SCHEMAS.values() if s.id == uri)
    )
    for schema in schemas:
        found = schema.attribute(name)
        if found is not None:
            return found
    return (
        COMMON_ID if name.lower() == "id" else EXTERNAL_ID if name.lower() == "externalid" else None
    )
