"""scim2-tester's compliance checks against the bridge over real HTTP (a live ServerThread).

One hint is given to the tester's client, not to the bridge: Genesys logins are email addresses,
so the client's copy of the User schema lists email-shaped example values for ``userName``
(RFC 7643 §4.1.1 leaves userName's format to the service provider; scim2-tester fills attributes
from ``canonicalValues`` when a schema has them, and with random UUIDs otherwise).
"""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any

from scim2_models import ResourceType, Schema, ScimProvider, ServiceProviderConfig
from scim2_tester import check_server
from scim2_tester.utils import Status

from tests.fixtures.bridge import Bridge
from tests.scim.scim_http import Urllib3SCIMClient

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _provider(client: Urllib3SCIMClient) -> ScimProvider:
    schemas: list[dict[str, Any]] = client.request("GET", "/Schemas").json()["Resources"]
    types = client.request("GET", "/ResourceTypes").json()["Resources"]
    config = client.request("GET", "/ServiceProviderConfig").json()
    hinted = copy.deepcopy(schemas)
    for schema in hinted:
        if schema["id"] == USER:
            for attribute in schema["attributes"]:
                if attribute["name"] == "userName":
                    attribute["canonicalValues"] = [
                        f"tester.{uuid.uuid4().hex[:12]}@example.com" for _ in range(100_000)
                    ]
    return ScimProvider.from_discovery(
        [Schema.model_validate(s) for s in hinted],
        [ResourceType.model_validate(t) for t in types],
        ServiceProviderConfig.model_validate(config),
    )


def test_scim2_tester_reports_no_failure(live_bridge: tuple[Bridge, str]) -> None:
    bridge, base = live_bridge
    headers = {"Authorization": f"Bearer {bridge.token}"}
    probe = Urllib3SCIMClient(base, headers)
    client = Urllib3SCIMClient(base, headers, provider=_provider(probe))
    random.seed(7643)  # the tester's draws among the hinted userNames: see the module docstring
    results = check_server(client)
    failures = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    for r in results:
        print(
            r.status.name,
            r.resource_type,
            r.title,
            (r.reason or "")[:600].replace("\n", " | "),
            r.data if r.status == Status.ERROR else "",
        )
    assert len(results) > 20
    assert not failures, "\n".join(f"{r.title}: {r.reason} {r.data}" for r in failures)
