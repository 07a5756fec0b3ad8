"""Every row of shared/idp-behaviour.md section 4 (RFC 7644 error mapping), and the transport
rules of issue 5: media types, body size, unknown URLs and methods, no 500 for bad input."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.bridge import Bridge
from tests.scim.replay import create_user, unique_email

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    body: dict[str, Any] = response.get_json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)  # a string (RFC 7644 §3.12)
    assert body["detail"]
    if scim_type is not None:
        assert body["scimType"] == scim_type
    return body


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


def test_malformed_json_is_invalid_syntax(bridge: Bridge) -> None:
    """§3.12 Table 9."""
    headers = {"Content-Type": "application/scim+json"}
    _error(bridge.post("/Users", data=b'{"userName": ', headers=headers), 400, "invalidSyntax")
    _error(bridge.post("/Users", data=b"\xff\xfe", headers=headers), 400, "invalidSyntax")
    _error(bridge.post("/Users", data=b'{"a": NaN}', headers=headers), 400, "invalidSyntax")
    uid = create_user(bridge)["id"]
    _error(bridge.patch(f"/Users/{uid}", data=b"[", headers=headers), 400, "invalidSyntax")


def test_missing_user_name_is_invalid_value(bridge: Bridge) -> None:
    body = _error(
        bridge.post("/Users", json={"schemas": [USER], "displayName": "x"}), 400, "invalidValue"
    )
    assert "userName" in body["detail"]


def test_duplicate_user_name_is_uniqueness(bridge: Bridge) -> None:
    created = create_user(bridge)
    again = bridge.post("/Users", json={"schemas": [USER], "userName": created["userName"].upper()})
    _error(again, 409, "uniqueness")


@pytest.mark.parametrize(
    "expression",
    [
        'userName eq "unterminated',
        "userName eq",
        "(((",
        'userName zz "x"',
        'userName gt "a"',  # an operator Genesys search cannot answer
        'not (userName eq "a")',
        'nickName eq "x"',  # an attribute Genesys cannot answer
        'name.givenName eq "x"',
        'meta.lastModified gt "2011-05-13T04:42:34Z"',
        'urn:example:unknown:attr eq "x"',
        'active eq "maybe"',
    ],
)
def test_bad_or_unsupported_filters_are_invalid_filter(bridge: Bridge, expression: str) -> None:
    """§3.4.2.2: never a silent full scan."""
    _error(bridge.get("/Users", query_string={"filter": expression}), 400, "invalidFilter")


def test_group_filter_on_unsupported_attribute(bridge: Bridge) -> None:
    _error(bridge.get("/Groups", query_string={"filter": 'members eq "x"'}), 400, "invalidFilter")


def test_patch_remove_without_path_is_no_target(bridge: Bridge) -> None:
    """§3.5.2.2."""
    uid = create_user(bridge)["id"]
    _error(bridge.patch(f"/Users/{uid}", json=_patch({"op": "remove"})), 400, "noTarget")


def test_patch_replace_value_path_matching_nothing_is_no_target(bridge: Bridge) -> None:
    """§3.5.2.3."""
    uid = create_user(bridge)["id"]
    op = {"op": "replace", "path": 'phoneNumbers[type eq "home"].value', "value": "+1 555"}
    _error(bridge.patch(f"/Users/{uid}", json=_patch(op)), 400, "noTarget")


@pytest.mark.parametrize(
    "path", ["emails[type eq", "name..givenName", "1abc", "urn:unknown:schema:attr", ""]
)
def test_patch_malformed_path_is_invalid_path(bridge: Bridge, path: str) -> None:
    uid = create_user(bridge)["id"]
    op = {"op": "replace", "path": path, "value": "x"}
    _error(bridge.patch(f"/Users/{uid}", json=_patch(op)), 400, "invalidPath")


def test_patch_changing_id_or_meta_is_mutability(bridge: Bridge) -> None:
    uid = create_user(bridge)["id"]
    _error(
        bridge.patch(f"/Users/{uid}", json=_patch({"op": "replace", "path": "id", "value": "x"})),
        400,
        "mutability",
    )
    _error(
        bridge.patch(f"/Users/{uid}", json=_patch({"op": "replace", "value": {"id": "x"}})),
        400,
        "mutability",
    )
    _error(
        bridge.patch(
            f"/Users/{uid}", json=_patch({"op": "add", "path": "meta.created", "value": "x"})
        ),
        400,
        "mutability",
    )
    put = bridge.put(
        f"/Users/{uid}", json={"schemas": [USER], "id": "another", "userName": unique_email()}
    )
    _error(put, 400, "mutability")


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": [PATCH], "Operations": [{"op": "merge", "path": "title", "value": "x"}]},
        {"schemas": [PATCH]},
        {"schemas": [PATCH], "Operations": []},
        {"Operations": [{"op": "replace", "path": "title", "value": "x"}]},
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "title"}]},
        {"schemas": [PATCH], "Operations": ["replace"]},
        [],
    ],
)
def test_patch_without_operations_or_with_unknown_op_is_400(bridge: Bridge, body: Any) -> None:
    """§3.5.2 names no scimType here; invalidValue / invalidSyntax are the closest."""
    uid = create_user(bridge)["id"]
    error = _error(bridge.patch(f"/Users/{uid}", json=body), 400)
    assert error["scimType"] in ("invalidValue", "invalidSyntax")


def test_unknown_resource_schema_only_is_invalid_value(bridge: Bridge) -> None:
    body = {
        "schemas": ["urn:example:params:scim:schemas:core:2.0:Thing"],
        "userName": unique_email(),
    }
    _error(bridge.post("/Users", json=body), 400, "invalidValue")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_non_json_content_type_is_415(bridge: Bridge, content_type: str) -> None:
    """§3.8: JSON only."""
    response = bridge.post("/Users", data=b"<user/>", headers={"Content-Type": content_type})
    _error(response, 415)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "application/json; charset=UTF-8",
    ],
)
def test_both_json_media_types_are_accepted(bridge: Bridge, content_type: str) -> None:
    """O-SPEC create sends application/json; O-OLD and Entra application/scim+json; charset=utf-8."""
    body = b'{"schemas":["' + USER.encode() + b'"],"userName":"' + unique_email().encode() + b'"}'
    response = bridge.post("/Users", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"


def test_missing_or_invalid_credentials_are_401(bridge: Bridge) -> None:
    _error(bridge.get("/Users", auth=""), 401)
    _error(bridge.get("/Users", auth="Bearer not-a-token"), 401)
    _error(bridge.get("/Users", auth="Basic dXNlcjpwYXNz"), 401)
    _error(bridge.get("/ServiceProviderConfig", auth=""), 401)


def test_paging_out_of_range_is_not_an_error(bridge: Bridge) -> None:
    """§3.4.2.4: startIndex < 1 counts as 1, a negative count as 0."""
    r = bridge.get("/Users?startIndex=-5&count=2")
    assert r.status_code == 200
    assert r.get_json()["startIndex"] == 1
    assert len(r.get_json()["Resources"]) == 2
    r = bridge.get("/Users?count=-1")
    assert r.status_code == 200
    assert r.get_json()["Resources"] == []
    assert r.get_json()["totalResults"] > 0
    _error(bridge.get("/Users?count=ten"), 400, "invalidValue")


def test_body_over_one_mebibyte_is_413(bridge: Bridge) -> None:
    big = b'{"userName":"' + b"a" * (1024 * 1024 + 10) + b'"}'
    _error(bridge.post("/Users", data=big, headers={"Content-Type": "application/scim+json"}), 413)


def test_unknown_scim_urls_and_methods_answer_scim_json(bridge: Bridge) -> None:
    """Blueprint handlers never fire for unmatched URLs (STYLE.md 5): app-level ones do."""
    _error(bridge.get("/Nothing"), 404)
    _error(bridge.get("/scim/v1/Users"), 404)
    _error(bridge.get("/scim/v2"), 404)
    error = _error(bridge.delete("/ServiceProviderConfig"), 405)
    assert error["detail"]
    _error(bridge.request("PUT", "/Users"), 405)
    _error(bridge.get("/Users/no-such-id"), 404)
    healthz = bridge.get("/healthz", auth="")
    assert healthz.status_code == 200


def test_unexpected_failure_is_generic_500_with_correlation_id(bridge: Bridge) -> None:
    """Something the bridge did not expect (here: its own table is gone) -> 500, no traceback."""
    with bridge.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE directory_resources"))
    response = bridge.get("/Users?count=1", headers={"X-Request-Id": "corr-500-test"})
    body = _error(response, 500)
    assert "corr-500-test" in body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert "directory_resources" not in response.get_data(as_text=True)


def test_if_match_mismatch_is_412(bridge: Bridge) -> None:
    """RFC 7644 §3.14."""
    created = bridge.post("/Users", json={"schemas": [USER], "userName": unique_email()})
    uid, etag = created.get_json()["id"], created.headers["ETag"]
    assert etag == created.get_json()["meta"]["version"]
    assert etag.startswith('W/"')
    op = _patch({"op": "replace", "path": "title", "value": "A"})
    stale = 'W/"999"'
    _error(bridge.patch(f"/Users/{uid}", json=op, headers={"If-Match": stale}), 412)
    _error(bridge.delete(f"/Users/{uid}", headers={"If-Match": stale}), 412)
    _error(bridge.patch(f"/Users/{uid}", json=op, headers={"If-Match": "garbage"}), 412)
    ok = bridge.patch(f"/Users/{uid}", json=op, headers={"If-Match": etag})
    assert ok.status_code == 200
    assert ok.headers["ETag"] != etag


def test_genesys_rate_limit_is_429_for_okta_and_503_for_entra_with_retry_after(
    bridge: Bridge, sandbox: Any
) -> None:
    """Issue 10 item 6: Okta retries a 429 by its Retry-After (O-429; RFC 6585 §4); Entra's
    handling of 429 is UNCONFIRMED, so a token created with ``--idp entra`` gets 503. (This test
    asserted 503 for every token before.)"""
    uid = create_user(bridge)["id"]
    sandbox.control.fail_next("/api/v2/users", status=429, count=50, retry_after=120)
    response = bridge.get(f"/Users/{uid}")
    _error(response, 429)
    assert int(response.headers["Retry-After"]) >= 60
    response = bridge.entra.get(f"/Users/{uid}")
    _error(response, 503)
    assert int(response.headers["Retry-After"]) >= 60


def test_me_and_bulk_are_501_not_implemented(bridge: Bridge) -> None:
    """Okta bug 7: RFC 7644 §3.11 (/Me: 501 when unsupported) and §3.12 (501 for an operation
    the service provider does not support); any method, behind the same bearer auth."""
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        for path in ("/Me", "/Me/x", "/Bulk"):
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]}
            r = bridge.request(method, path, json=body if method != "GET" else None)
            assert r.status_code == 501, (method, path, r.get_data(as_text=True))
            assert r.mimetype == "application/scim+json"
            error = r.get_json()
            assert error["status"] == "501"
            assert error["detail"]
            assert bridge.request(method, path, auth="Bearer wrong").status_code == 401


def test_a_204_carries_no_content_type(bridge: Bridge) -> None:
    """Okta bug 11: a 204 has no body, so no Content-Type (RFC 9110 §8.3)."""
    uid = create_user(bridge)["id"]
    r = bridge.delete(f"/Users/{uid}")
    assert r.status_code == 204, r.get_data(as_text=True)
    assert "Content-Type" not in r.headers
    group = bridge.post(
        "/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": unique_email("g"),
        },
    )
    assert group.status_code == 201, group.get_data(as_text=True)
    r = bridge.delete(f"/Groups/{group.get_json()['id']}")
    assert r.status_code == 204
    assert "Content-Type" not in r.headers
