"""A scim2-client engine over urllib3 (a runtime dependency already), for real-HTTP checks.

scim2-client ships an httpx2 engine; this one avoids a second HTTP stack in the test set-up.
"""

from __future__ import annotations

import json as jsonlib
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from scim2_client import BaseSyncSCIMClient


class Response:
    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.status_code = raw.status
        self.headers = raw.headers
        self.content = raw.data
        self.text = raw.data.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.text)


class Urllib3SCIMClient(BaseSyncSCIMClient):
    def __init__(self, base_url: str, headers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.default_headers = headers
        self.pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=30))

    def _stays_under_base_url(self, endpoint: str) -> bool:
        if "://" in endpoint:
            return endpoint.startswith(self.base_url + "/")
        return ".." not in urlsplit(endpoint).path.split("/")

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> Response:
        full = url if "://" in url else self.base_url + "/" + url.lstrip("/")
        if params:
            full += ("&" if "?" in full else "?") + urlencode(params)
        sent = {**self.default_headers, **(headers or {})}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/scim+json")
        return Response(self.pool.request(method, full, body=body, headers=sent))
