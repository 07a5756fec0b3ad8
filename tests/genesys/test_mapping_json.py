"""One user mapping for both forms of Genesys's answer: the JSON the SCIM reads take
(``SdkClients.call_json``, no model built) and the SDK ``User`` model the writes get back. The same
answer maps to the same ``GenesysUser`` either way (docs/genesys-calls.md "Read overhead")."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from PureCloudPlatformClientV2 import UsersApi

from scim_bridge.genesys import mapping
from scim_bridge.genesys.gateway import SdkGateway
from scim_bridge.genesys.types import ContactInfo, Criterion, UserFields
from tests.genesys.helpers import active_users


class _Answer:
    """What ``ApiClient.deserialize`` reads from a response: its body and content type."""

    def __init__(self, body: Any) -> None:
        self.data = json.dumps(body)

    def getheader(self, name: str) -> str | None:
        return "application/json" if name.lower() == "content-type" else None


def _model(gateway: SdkGateway, body: Any, kind: str = "User") -> Any:
    return gateway._sdk.api_client.deserialize(_Answer(body), kind)


def test_a_sandbox_user_maps_alike_from_json_and_from_the_model(gateway: SdkGateway) -> None:
    boss, user = active_users(gateway, 2)
    gateway.update_user(
        user.id,
        UserFields(
            manager_id=boss.id,
            preferred_name="Al",
            employee_id="E-7",
            date_hire="2024-02-29",
            department="Sales",
            title="Rep",
            addresses=(
                ContactInfo(address="+15551234567", media_type="PHONE", type="WORK"),
                ContactInfo(address="al@example.com", media_type="EMAIL", type="HOME"),
            ),
        ),
    )
    gateway.ensure_token()
    sdk = gateway._sdk
    answer = sdk.call_json("GET", "/api/v2/users/{userId}", path_params={"userId": user.id})
    from_json = mapping.user(answer)
    from_model = mapping.user(sdk.users.get_user(user.id))
    assert from_json == from_model == mapping.user(_model(gateway, answer))
    assert (from_json.manager_id, from_json.employee_id, from_json.preferred_name) == (
        boss.id,
        "E-7",
        "Al",
    )
    assert len(from_json.addresses) == 2
    assert gateway.get_user(user.id) == from_json


def test_search_and_listing_answers_map_alike(gateway: SdkGateway) -> None:
    user = active_users(gateway)[0]
    gateway.ensure_token()
    sdk = gateway._sdk
    body = {"query": [{"type": "EXACT", "fields": ["email"], "value": user.email}]}
    raw = sdk.call_json("POST", "/api/v2/users/search", body=body)
    model = sdk.users.post_users_search(body)
    assert mapping.users(mapping.listing_items(raw, "results")) == mapping.users(
        mapping.listing_items(model, "results")
    )
    assert mapping.listing_total(raw, -1) == mapping.listing_total(model, -2) == 1
    listing = sdk.call_json("GET", "/api/v2/users", query={"pageSize": 5, "pageNumber": 1})
    assert mapping.listing_page_count(listing) == mapping.listing_page_count(
        sdk.users.get_users(page_size=5, page_number=1)
    )
    criteria = (Criterion(type="EXACT", fields=("email",), value=user.email or ""),)
    assert gateway.search_users(criteria).items == (gateway.get_user(user.id),)


def test_values_the_sdk_does_not_know_read_the_same_from_json() -> None:
    """genesys-api.md 1.5: an enum value newer than the SDK is ``outdated_sdk_version`` in a
    model; the JSON mapping reads it the same way, so a SCIM answer does not depend on the form."""
    from scim_bridge.genesys.gateway import SdkGateway as Gateway

    gateway = Gateway("http://127.0.0.1:9", "id", "secret")
    try:
        answer = {
            "id": "u1",
            "name": "Ann",
            "state": "Suspended",
            "version": 3,
            "primaryContactInfo": [
                {"address": "a@x", "mediaType": "EMAIL", "type": "FAX"},
                {"address": "+1", "mediaType": "PAGER", "type": "WORK"},
                {"address": "b@x", "mediaType": "email", "type": "work"},
            ],
            "employerInfo": {"employeeId": "E1"},
            "manager": {"id": "m1", "selfUri": "/api/v2/users/m1"},
        }
        from_json = mapping.user(answer)
        assert from_json == mapping.user(_model(gateway, answer))
        assert from_json.state == "inactive"
        assert [c.type for c in from_json.primary_contact_info] == ["outdated_sdk_version"]
        assert (from_json.employee_id, from_json.manager_id) == ("E1", "m1")
    finally:
        gateway.close()


def _generated(method: Any) -> tuple[str, frozenset[str]]:
    """The path and query names a generated API method sends (its ``resource_path`` and the keys
    of its ``query_params``), read from the SDK's own source."""
    source = inspect.getsource(method)
    path = re.search(r"resource_path = '([^']+)'", source)
    assert path is not None, method
    return path.group(1), frozenset(re.findall(r"query_params\['([^']+)'\]", source))


def test_call_json_spells_paths_and_query_names_as_the_sdk_does(
    gateway: SdkGateway, monkeypatch: Any
) -> None:
    """``call_json`` is given the API's path and query names by hand (issue 15's fragile point):
    every call the gateway's JSON reads make must use a path and names the generated method of
    the same read sends, so that an SDK upgrade renaming one fails here, not against Genesys."""
    sent: list[tuple[str, str, frozenset[str]]] = []
    real = type(gateway._sdk).call_json

    def recording(self: Any, method: str, path: str, **kw: Any) -> Any:
        sent.append((method, path, frozenset((kw.get("query") or {}).keys())))
        return real(self, method, path, **kw)

    monkeypatch.setattr(type(gateway._sdk), "call_json", recording)
    (user,) = active_users(gateway, 1)
    gateway.get_user(user.id)
    gateway.get_user(user.id, expect_deleted=True)
    gateway.get_users([user.id])
    gateway.list_users(page_size=5)
    gateway.search_users([Criterion(type="EXACT", fields=("email",), value=user.email or "")])

    generated = {
        ("GET", "/api/v2/users/{userId}"): _generated(UsersApi.get_user),
        ("GET", "/api/v2/users"): _generated(UsersApi.get_users),
        ("POST", "/api/v2/users/search"): _generated(UsersApi.post_users_search),
    }
    for method, path, names in sent:
        assert (method, path) in generated, (method, path)
        sdk_path, sdk_names = generated[(method, path)]
        assert path == sdk_path
        assert names <= sdk_names, (path, names - sdk_names)
    assert {(m, p) for m, p, _ in sent} == set(generated)
