"""The console's People page over HTTP: the state shown is what the bridge last did
(docs/console.md), a re-hire included (README "Re-hire": a bridge action with its own event)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.console.operators import OperatorStore
from tests.console.conftest import ADMIN_TOKEN
from tests.console.test_pages import UI, sign_in
from tests.fixtures.bridge import Bridge, close_bridge, make_bridge
from tests.scim.replay import load, unique_email
from tests.scim.test_rehire import _deleted_through_the_bridge


@pytest.fixture
def console_bridge(sandbox: Any, tmp_path: Path) -> Iterator[Bridge]:
    made = make_bridge(sandbox, tmp_path, admin_token=ADMIN_TOKEN)
    yield made
    close_bridge(made)


def test_a_rehired_user_shows_as_active_not_deleted(console_bridge: Bridge, sandbox: Any) -> None:
    # Okta trial bug 5: the tombstone made the page say "deleted" after the re-hire.
    client = console_bridge.app.test_client()
    sign_in(client, OperatorStore(console_bridge.engine).create("alice"))
    login = unique_email("rehire")
    uid = _deleted_through_the_bridge(console_bridge, sandbox, login)
    page = client.get(f"{UI}/people?q={uid}").get_data(as_text=True)
    assert '<dd id="person-state">deleted (tombstone kept)</dd>' in page

    rehired = console_bridge.post("/Users", json=load("okta-create-user.json", username=login))
    assert rehired.status_code == 201, rehired.get_data(as_text=True)
    assert rehired.get_json()["id"] == uid
    page = client.get(f"{UI}/people?q={uid}").get_data(as_text=True)
    assert '<dd id="person-state">active (re-hired)</dd>' in page
    assert 'id="person-rehired"' in page
