"""A process without ``AUDIT_HMAC_KEY`` never appends to a keyed chain (docs/audit.md "Keyed
chain"): an unkeyed event after keyed ones would make every later verify report a downgrade.

The key is normally mounted into the bridge's processes only, so an operator's shell without it
is the ordinary case: its commands refuse, naming the variable, and leave the chain as it was.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from scim_bridge.app import create_app
from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.chain import AuditKeyRequired
from scim_bridge.cli import main
from scim_bridge.config import Settings
from scim_bridge.scim.tokens import TokenStore

KEY = b"k" * 40


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.record(Tag.DEPROVISION_USER_DELETED, actor="worker", scim_id=f"u{i}", detail={"i": i})


@pytest.fixture
def keyed(engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    """Two unkeyed events, then the key: the chain is keyed from seq 3 on."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("AUDIT_HMAC_KEY", raising=False)
    _fill(AuditLog(engine), 2)
    log = AuditLog(engine, key=KEY)
    log.ensure_keyed_head(actor="bridge")
    _fill(log, 2)
    return log


def test_a_log_without_the_key_refuses_to_append_to_a_keyed_chain(keyed: AuditLog) -> None:
    before = keyed.head()
    with pytest.raises(AuditKeyRequired, match="AUDIT_HMAC_KEY"):
        AuditLog(keyed.engine).record(Tag.ADMIN_AUDIT_EXPORTED, actor="cli")
    assert keyed.head() == before
    assert keyed.verify().ok


def test_a_log_without_the_key_still_appends_to_an_unkeyed_chain(
    engine: sa.Engine, db_url: str
) -> None:
    one, other = AuditLog(engine), AuditLog(engine)
    _fill(one, 2)
    _fill(other, 1)  # the previous event is another log's: checked, found unkeyed
    _fill(one, 1)
    assert AuditLog(engine).verify().count == 4


def test_audit_export_without_the_key_refuses_and_writes_nothing(
    keyed: AuditLog, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = keyed.head()
    assert main(["audit", "export"]) != 0
    captured = capsys.readouterr()
    assert "AUDIT_HMAC_KEY" in captured.err
    assert captured.out == ""  # refused before the export, not half-way through it
    assert keyed.head() == before
    monkeypatch.setenv("AUDIT_HMAC_KEY", KEY.decode())
    assert main(["audit", "verify"]) == 0


def test_verify_still_works_without_the_key(
    keyed: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read-only: it appends nothing, so it is not refused (it says it cannot check keyed
    events, as before)."""
    assert main(["audit", "verify"]) == 1
    assert "AUDIT_HMAC_KEY" in capsys.readouterr().out


def test_tokens_create_without_the_key_refuses_before_creating_the_token(
    keyed: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    before = keyed.head()
    assert main(["tokens", "create", "--name", "okta-prod", "--idp", "okta"]) != 0
    assert "AUDIT_HMAC_KEY" in capsys.readouterr().err
    assert TokenStore(keyed.engine).get("okta-prod") is None
    assert keyed.head() == before


def test_the_worker_does_not_start_without_the_key_over_a_keyed_chain(
    keyed: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "--once"]) != 0
    assert "AUDIT_HMAC_KEY" in capsys.readouterr().err
    assert keyed.verify().ok


def test_the_bridge_does_not_start_without_the_key_over_a_keyed_chain(
    keyed: AuditLog, db_url: str
) -> None:
    before = keyed.head()
    with pytest.raises(AuditKeyRequired, match="AUDIT_HMAC_KEY"):
        create_app(Settings(database_url=db_url))
    assert keyed.head() == before
