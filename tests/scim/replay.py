"""Payload files named after their source (tests/scim/payloads/), with placeholders filled."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.fixtures.bridge import Client

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str, **values: str) -> Any:
    """``payloads/<name>`` with each ``__KEY__`` replaced by ``values["key"]``."""
    text = (PAYLOADS / name).read_text()
    for key, value in values.items():
        text = text.replace(f"__{key.upper()}__", value)
    return json.loads(text)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def create_user(
    client: Client, payload: str = "okta-create-user.json", **values: str
) -> dict[str, Any]:
    values.setdefault("username", unique_email())
    response = client.post("/Users", json=load(payload, **values))
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body
