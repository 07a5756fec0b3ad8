"""The SCIM schemas the bridge serves (RFC 7643 §4, §8.7.1), as data.

One catalogue read by discovery (``/Schemas``), by PATCH (which attributes are multi-valued or
read-only) and by filters (which comparisons are case-exact). It lists only what the bridge maps
onto Genesys, so that what ``/Schemas`` promises is what a round trip keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

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


def _multi(name: str, description: str, types: Sequence[str]) -> Attribute:
    return Attribute(
        name,
        type="complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            Attribute("value", description=f"The {name} value."),
            Attribute("type", canonical_values=tuple(types), description="The kind of value."),
        ),
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
            description="The Genesys Cloud login email; matched case-insensitively.",
        ),
        Attribute(
            "name",
            type="complex",
            description="The user's name. Genesys holds one name; the parts are kept by the bridge.",
            sub_attributes=(
                Attribute("formatted", description="The full name."),
                Attribute("familyName", description="The family name."),
                Attribute("givenName", description="The given name."),
            ),
        ),
        Attribute("displayName", description="The Genesys Cloud name."),
        Attribute("title", description="The job title."),
        Attribute(
            "active",
            type="boolean",
            required=True,
            description="false: inactive in Genesys Cloud. A Genesys user always has a state, so "
            "active is always returned and cannot be removed; a create without it makes an active "
            "user. Changes go through the deprovisioning engine.",
        ),
        Attribute(
            "password",
            mutability="writeOnly",
            returned="never",
            description="Accepted and discarded: Genesys Cloud users sign in through SSO.",
        ),
        _multi("emails", "The work email.", ("work",)),
        _multi(
            "phoneNumbers",
            "Phone numbers by type.",
            ("work", "work2", "work3", "work4", "home", "mobile", "other"),
        ),
    ),
)

ENTERPRISE = Schema(
    ENTERPRISE_SCHEMA,
    "EnterpriseUser",
    "Enterprise User (RFC 7643 §4.3).",
    (
        Attribute("employeeNumber", description="Genesys employerInfo.employeeId."),
        Attribute("department", description="The department."),
        Attribute(
            "manager",
            type="complex",
            description="The user's manager (a Genesys user id).",
            sub_attributes=(
                Attribute("value", description="The manager's id."),
                Attribute(
                    "$ref",
                    type="reference",
                    reference_types=("User",),
                    description="The manager's URI.",
                ),
                Attribute("displayName", mutability="readOnly", description="The manager's name."),
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
        Attribute("displayName", required=True, uniqueness="server", description="Group name."),
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
