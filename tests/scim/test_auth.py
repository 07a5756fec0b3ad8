"""Bearer tokens per IdP (issue 5 item 6): both header forms, 401 as SCIM JSON, revocation, the
token's name as the audit actor, and the ``tokens`` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from scim_bridge.cli import main
from scim_bridge.scim.auth import presented_token
from scim_bridge.scim.tokens import VERIFIED_TTL_S, TokenError, TokenStore
from tests.fixtures.bridge import Bridge


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("abc", "abc"),  # Okta OIN "Header" mode (O-OIN)
        ("  Bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer a b", None),
        ("", None),
        (None, None),
    ],
)
def test_header_forms(header: str | None, expected: str | None) -> None:
    assert presented_token(header) == expected


def test_okta_header_mode_and_bearer_both_work(bridge: Bridge) -> None:
    assert bridge.get("/Users?count=1", auth=bridge.token).status_code == 200
    assert bridge.get("/Users?count=1", auth=f"Bearer {bridge.token}").status_code == 200


def test_revoked_token_is_refused_and_failures_are_audited(bridge: Bridge) -> None:
    store = TokenStore(bridge.engine)
    assert store.revoke("okta-test")
    response = bridge.get("/Users?count=1")
    assert response.status_code == 401
    assert response.get_json()["status"] == "401"
    assert bridge.entra.get("/Users?count=1").status_code == 200
    assert "scim:auth:failed" in bridge.tags()


def test_token_store_rules(bridge: Bridge) -> None:
    store = TokenStore(bridge.engine)
    with pytest.raises(TokenError):
        store.create("okta-test")  # exists
    with pytest.raises(TokenError):
        store.create("bad name")
    with pytest.raises(TokenError):
        store.create("short", "tooshort")
    imported = store.create("imported", "x" * 40)
    assert store.verify(imported) == "imported"
    assert store.verify("x" * 39) is None
    assert [t.name for t in store.list()] == ["entra-test", "imported", "okta-test"]


def test_tokens_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["tokens", "create", "--name", "okta-prod"]) == 0
    # (JSON log lines may share stdout when another test configured logging: the token is last)
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("scimb_")
    assert len(token) > 40
    assert main(["tokens", "create", "--name", "entra-prod", "--token", "y" * 32]) == 0
    assert "y" * 32 not in capsys.readouterr().out  # an imported secret is never echoed
    assert main(["tokens", "list"]) == 0
    listed = capsys.readouterr().out
    assert "okta-prod" in listed
    assert "entra-prod" in listed
    assert token not in listed
    assert main(["tokens", "revoke", "okta-prod"]) == 0
    assert main(["tokens", "revoke", "okta-prod"]) == 1
    assert main(["tokens", "create", "--name", "bad name"]) == 1
    db = (tmp_path / "cli.db").read_bytes()
    assert token.encode() not in db
    assert b"y" * 32 not in db


def test_a_verified_token_is_trusted_for_a_few_seconds_and_no_longer(bridge: Bridge) -> None:
    """Issue 15: the serving process does not read the tokens table for every request; a token
    revoked by another process (the ``tokens`` command) is refused within VERIFIED_TTL_S, one
    revoked through the serving process's own store at once."""
    serving = bridge.app.extensions["scim_bridge"].tokens
    elsewhere = TokenStore(bridge.engine)  # another process's store: shares only the database
    assert bridge.get("/Users?count=1").status_code == 200
    assert elsewhere.revoke("okta-test")
    assert bridge.get("/Users?count=1").status_code == 200  # still trusted, inside the TTL
    started = serving.clock
    serving.clock = lambda: started() + VERIFIED_TTL_S + 0.001
    assert bridge.get("/Users?count=1").status_code == 401
    # The entra token, revoked through the serving store itself: refused on the next request.
    assert bridge.entra.get("/Users?count=1").status_code == 200
    assert serving.revoke("entra-test")
    assert bridge.entra.get("/Users?count=1").status_code == 401
