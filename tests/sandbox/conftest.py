"""A plain HTTP client for the sandbox's Genesys endpoints (the SDK has its own test)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest
import urllib3

from tests.fixtures.sandbox import Sandbox


@dataclass
class Reply:
    status: int
    body: Any
    headers: urllib3.HTTPHeaderDict

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Api:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = urllib3.PoolManager(retries=False, timeout=10.0)
        self.token = ""
        self.relogin()

    def relogin(self) -> None:
        """A fresh token for the default client (``reset`` forgets every token)."""
        self.token = self.login(self.sandbox.client_id, self.sandbox.client_secret).body[
            "access_token"
        ]

    def login(self, client_id: str, secret: str, grant_type: str = "client_credentials") -> Reply:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = self.http.request(
            "POST",
            self.sandbox.url + "/oauth/token",
            body=f"grant_type={grant_type}",
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        return self._reply(response)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        fields: Any = None,
    ) -> Reply:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        response = self.http.request(
            method, self.sandbox.url + path, body=data, headers=headers, fields=fields
        )
        return self._reply(response)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    @staticmethod
    def _reply(response: urllib3.BaseHTTPResponse) -> Reply:
        text = response.data.decode()
        return Reply(response.status, json.loads(text) if text else None, response.headers)

    # helpers -----------------------------------------------------------------------------

    def users(self, state: str = "active") -> list[dict[str, Any]]:
        return list(self.get(f"/api/v2/users?pageSize=500&state={state}").body["entities"])

    def a_user(self, state: str = "active") -> dict[str, Any]:
        return self.users(state)[0]


@pytest.fixture
def api(sandbox: Sandbox) -> Api:
    return Api(sandbox)
