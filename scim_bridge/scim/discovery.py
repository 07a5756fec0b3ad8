"""Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas.

Okta's classic connector does not read them (O-FAQ); Entra reads ``/Schemas`` on save (E-TUT);
Okta's entitlement templates and scim2-tester read all three.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from scim_bridge.scim import definitions
from scim_bridge.scim.context import context
from scim_bridge.scim.errors import NotFound, scim_response

MAX_RESULTS = 100


def base_url() -> str:
    """The SCIM base URL for ``meta.location`` and ``Location``: ``SCIM_BRIDGE_PUBLIC_URL`` +
    ``/scim/v2``, never the request's ``Host`` header (a client could make the bridge hand out
    links to any host). Without a configured URL, a path relative to the bridge's root."""
    return (context().public_url or "") + "/scim/v2"


def service_provider_config() -> dict[str, Any]:
    return {
        "schemas": [definitions.SPC_SCHEMA],
        "documentationUri": "https://github.com/scim-bridge/scim-bridge/blob/main/docs/scim-mapping.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A token from `scim-bridge tokens create --name <idp>`, sent as "
                "'Authorization: Bearer <token>' (or, for Okta's header mode, 'Authorization: <token>').",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url()}/ServiceProviderConfig",
        },
    }


def _resource_type(name: str) -> dict[str, Any]:
    core, extensions = definitions.RESOURCE_SCHEMAS[name]
    out: dict[str, Any] = {
        "schemas": [definitions.RESOURCE_TYPE_SCHEMA],
        "id": name,
        "name": name,
        "endpoint": f"/{name}s",
        "description": core.description,
        "schema": core.id,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url()}/ResourceTypes/{name}"},
    }
    if extensions:
        # The bridge's own extension is published in /Schemas and appears on a User only
        # while a deprovisioning job is open. It is not declared here: a generic client (scim2-
        # tester) treats a declared extension as a writable object it may add and remove,
        # and every attribute of this one is read-only.
        out["schemaExtensions"] = [
            {"schema": e.id, "required": False}
            for e in extensions
            if e.id != definitions.BRIDGE_SCHEMA
        ]
    return out


def _schema(schema: definitions.Schema) -> dict[str, Any]:
    return {
        "schemas": [definitions.SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": [a.to_scim() for a in schema.attributes],
        "meta": {"resourceType": "Schema", "location": f"{base_url()}/Schemas/{schema.id}"},
    }


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [definitions.LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def register(bp: Blueprint) -> None:
    @bp.get("/ServiceProviderConfig")
    def get_service_provider_config() -> Response:
        return scim_response(service_provider_config())

    @bp.get("/ResourceTypes")
    def list_resource_types() -> Response:
        return scim_response(_list([_resource_type(n) for n in definitions.RESOURCE_SCHEMAS]))

    @bp.get("/ResourceTypes/<name>")
    def get_resource_type(name: str) -> Response:
        if name not in definitions.RESOURCE_SCHEMAS:
            raise NotFound(f"No resource type {name!r}.")
        return scim_response(_resource_type(name))

    @bp.get("/Schemas")
    def list_schemas() -> Response:
        return scim_response(_list([_schema(s) for s in definitions.SCHEMAS.values()]))

    @bp.get("/Schemas/<path:schema_id>")
    def get_schema(schema_id: str) -> Response:
        schema = definitions.SCHEMAS.get(definitions.find_schema_urn(schema_id) or "")
        if schema is None:
            raise NotFound(f"No schema {schema_id!r}.")
        return scim_response(_schema(schema))
