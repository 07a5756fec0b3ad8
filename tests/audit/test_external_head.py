"""The trail checked against copies kept outside the database (issue 14 item 3): ``audit head``,
``audit verify --expect SEQ:HASH``, the head in the log at a fixed interval, and the optional
keyed chain (``AUDIT_HMAC_KEY``). Each attack below is one the plain chain does not catch:
someone with write access edits a row and recomputes every hash after it, or cuts events off
the end and rewrites the head row."""

from __future__ import annotations

import json
import logging
import time

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.beacon import HeadBeacon
from scim_bridge.audit.chain import GENESIS_HASH, HASHED_KEYS, event_hash, parse_head
from scim_bridge.cli import main
from scim_bridge.store.schema import audit_events, audit_head

KEY = b"k" * 40


def _fill(log: AuditLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.record(Tag.DEPROVISION_USER_DELETED, actor="worker", scim_id=f"u{i}", detail={"i": i})


def _rows(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_events).order_by(audit_events.c.seq)).mappings()
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]


def _rechain(engine: sa.Engine, rows: list[dict[str, object]], key: bytes | None = None) -> None:
    """What an attacker with write access does: rewrite every row and the head so that the
    chain is consistent again (without the HMAC key unless they have it)."""
    prev = GENESIS_HASH
    with engine.begin() as conn:
        conn.execute(audit_events.delete())
        for row in rows:
            fields = {name: row[name] for name in HASHED_KEYS}
            fields["prev_hash"] = prev
            digest = event_hash(fields, key)
            conn.execute(
                audit_events.insert().values(
                    **{**fields, "detail": json.dumps(fields["detail"], sort_keys=True)},
                    hash=digest,
                )
            )
            prev = digest
        conn.execute(audit_head.update().values(seq=len(rows), hash=prev))


def _head(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["audit", "head"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    parse_head(last)
    return last


@pytest.fixture
def trail(engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("AUDIT_HMAC_KEY", raising=False)
    log = AuditLog(engine)
    _fill(log, 5)
    return log


def test_head_prints_seq_colon_hash_on_its_last_line(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    seq, digest = trail.head()
    assert _head(capsys) == f"{seq}:{digest}"
    assert seq == 5


def test_a_recomputed_rewrite_passes_plain_verify_but_not_the_expected_head(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = _head(capsys)
    _fill(trail, 2, start=5)  # the trail goes on growing: an old head must still be held
    rows = _rows(trail.engine)
    rows[2]["outcome"] = "failed"  # the edit
    _rechain(trail.engine, rows)
    assert main(["audit", "verify"]) == 0  # the chain alone cannot tell
    capsys.readouterr()
    assert main(["audit", "verify", "--expect", recorded]) == 1
    out = capsys.readouterr().out
    assert "BROKEN at seq 5" in out
    assert "rewritten" in out


def test_a_cut_with_a_rewritten_head_fails_the_expected_head(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = _head(capsys)
    _rechain(trail.engine, _rows(trail.engine)[:3])  # events 4 and 5 gone, head row rewritten
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--expect", recorded]) == 1
    assert "events cut" in capsys.readouterr().out


def test_an_untouched_trail_holds_every_recorded_head(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _head(capsys)
    _fill(trail, 3, start=5)
    second = _head(capsys)
    assert main(["audit", "verify", "--expect", first, "--expect", second]) == 0
    assert "holds 2 expected head(s)" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["5", "x:abc", "5:" + "g" * 64, "5:" + "a" * 63])
def test_a_malformed_expected_head_is_a_usage_error(trail: AuditLog, bad: str) -> None:
    assert main(["audit", "verify", "--expect", bad]) == 2


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(
    engine: sa.Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    _fill(AuditLog(engine), 2)  # written before the key was configured: unkeyed
    keyed = AuditLog(engine, key=KEY)
    keyed.ensure_keyed_head(actor="bridge")  # what create_app does at start
    _fill(keyed, 3, start=2)
    monkeypatch.setenv("AUDIT_HMAC_KEY", KEY.decode())
    assert main(["audit", "verify"]) == 0
    assert "keyed from seq 3" in capsys.readouterr().out
    # Without the key a verifier cannot check keyed events, and says why.
    monkeypatch.delenv("AUDIT_HMAC_KEY")
    assert main(["audit", "verify"]) == 1
    assert "AUDIT_HMAC_KEY" in capsys.readouterr().out
    # The attacker edits and recomputes without the key: the verifier holding it refuses.
    monkeypatch.setenv("AUDIT_HMAC_KEY", KEY.decode())
    rows = _rows(engine)
    rows[3]["actor"] = "someone-else"
    _rechain(engine, rows)
    assert main(["audit", "verify"]) == 1
    assert "the last event is not keyed" in capsys.readouterr().out
    # A wrong key is no better than none.
    _rechain(engine, rows, key=b"w" * 40)
    assert main(["audit", "verify"]) == 1


def test_with_a_key_the_head_must_be_keyed(
    engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting the whole trail unkeyed (a downgrade) leaves an unkeyed head: refused."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    _fill(AuditLog(engine), 3)
    assert not AuditLog(engine, key=KEY).verify().ok
    AuditLog(engine, key=KEY).ensure_keyed_head(actor="bridge")
    assert AuditLog(engine, key=KEY).verify().ok
    assert AuditLog(engine, key=KEY).head_is_keyed()


def test_the_head_is_logged_at_a_fixed_interval(
    trail: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scim_bridge.audit.head")
    beacon = HeadBeacon(trail, 0.05)
    beacon.start()
    try:
        for _ in range(100):
            if len([r for r in caplog.records if r.name == "scim_bridge.audit.head"]) >= 2:
                break
            time.sleep(0.05)
    finally:
        beacon.stop()
    seq, digest = trail.head()
    lines = [r for r in caplog.records if r.name == "scim_bridge.audit.head"]
    assert len(lines) >= 3  # two ticks and the last one at stop
    assert {r.audit_head for r in lines} == {f"{seq}:{digest}"}
