"""The audit part's secret test (tests/audit/test_secrets.py), extended to the SCIM HTTP paths.

A distinctive placeholder password and distinctive bearer tokens (a valid one, an invalid one,
in both header forms) go through every SCIM path, over real HTTP and through the test client,
with logging at DEBUG; then the SQLite file and its WAL, and every captured log line, are
searched for them.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
import urllib3

from scim_bridge.logs import JsonFormatter
from scim_bridge.sandbox.server import ServerThread
from scim_bridge.scim.tokens import TokenStore
from tests.fixtures.bridge import Bridge
from tests.scim.replay import load, unique_email

PASSWORD = "Okta-Placeholder-Pw-8c1e5a"
BEARER = "scim-bearer-distinct-4e7b22aa91"
WRONG = "scim-bearer-wrong-6d0c55bb13"
SECRETS = [PASSWORD, BEARER, WRONG]
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _every_path(bridge: Bridge, call: Any) -> None:
    login = unique_email("secret")
    body = load("okta-create-user.json", username=login)
    body["password"] = PASSWORD
    created = call("POST", "/Users", body)
    uid = created["id"]
    put = load("okta-put-user-echo.json", id=uid, username=login)
    put["password"] = PASSWORD
    call("PUT", f"/Users/{uid}", put)
    call(
        "PATCH",
        f"/Users/{uid}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": "password", "value": PASSWORD}]},
    )
    call(
        "PATCH",
        f"/Users/{uid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Replace", "value": {"password": PASSWORD, "title": "T"}}],
        },
    )
    call(
        "PATCH",
        f"/Users/{uid}",
        {"schemas": [PATCH], "Operations": [{"op": "bogus", "value": PASSWORD}]},
    )
    call("POST", "/Users", {"userName": PASSWORD, "password": PASSWORD})  # invalid: not an email
    call(
        "POST",
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": unique_email("g"),
            "password": PASSWORD,
        },
    )
    call("GET", f'/Users?filter=userName eq "{login}"', None)
    call("PATCH", f"/Users/{uid}", load("okta-patch-deactivate.json"))
    call("DELETE", f"/Users/{uid}", None)


def test_no_password_or_token_reaches_the_database_or_the_logs(
    bridge: Bridge, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        TokenStore(bridge.engine).create("secret-idp", BEARER)

        def via_client(method: str, path: str, body: Any) -> Any:
            response = bridge.request(method, path, json=body, auth=f"Bearer {BEARER}")
            bridge.request(method, path, json=body, auth=BEARER)  # Okta header mode
            bridge.request(method, path, json=body, auth=f"Bearer {WRONG}")
            bridge.request(method, path, json=body, auth=WRONG)
            return response.get_json()

        _every_path(bridge, via_client)

        with ServerThread(bridge.app, access_log=True) as server:
            http = urllib3.PoolManager(retries=False)
            base = server.url + "/scim/v2"

            def via_http(method: str, path: str, body: Any) -> Any:
                import json

                data = json.dumps(body).encode() if body is not None else None
                headers = {"Content-Type": "application/scim+json"}
                result = None
                for auth in (f"Bearer {BEARER}", BEARER, f"Bearer {WRONG}", WRONG):
                    response = http.request(
                        method,
                        base + path.replace(" ", "%20").replace('"', "%22"),
                        body=data,
                        headers={**headers, "Authorization": auth},
                    )
                    if result is None and response.data:
                        result = json.loads(response.data)
                return result

            _every_path(bridge, via_http)
    finally:
        root.removeHandler(handler)

    captured = capsys.readouterr()
    texts = {
        "caplog": caplog.text,
        "json log": stream.getvalue(),
        "stdout": captured.out,
        "stderr": captured.err,
    }
    db_files = [
        p for p in Path(bridge.db_path).parent.iterdir() if p.name.startswith(bridge.db_path.name)
    ]
    assert db_files
    for secret in SECRETS:
        for where, text in texts.items():
            assert secret not in text, f"{secret} in {where}"
        for path in db_files:
            assert secret.encode() not in path.read_bytes(), f"{secret} in {path.name}"
    assert "scim:user:created" in stream.getvalue()  # the logs did capture the traffic
