"""``scim-bridge audit verify`` and ``audit export`` (JSON Lines for SIEM import)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa

from scim_bridge.audit import AuditLog, Tag
from scim_bridge.audit.chain import verify_rows
from scim_bridge.cli import main

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def trail(engine: sa.Engine, db_url: str, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("DATABASE_URL", db_url)
    ticks = count()
    log = AuditLog(engine, clock=lambda: START + timedelta(hours=next(ticks)))
    for i in range(6):
        log.record(
            Tag.DEPROVISION_USER_DELETED if i == 5 else Tag.DEPROVISION_QUEUE_REMOVED,
            actor="worker",
            scim_id=f"u{i % 2}",
            genesys_user_id=f"g{i % 2}",
            job_id=f"j{i % 2}",
            detail={"step": i, "genesys_correlation_ids": [f"inin-{i}"]},
        )
    return log


def test_verify_exits_0_with_the_count(trail: AuditLog, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 6 events")


def test_verify_exits_1_with_the_first_broken_seq(
    trail: AuditLog, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sa.make_url(str(trail.engine.url)).database
    if trail.engine.dialect.name == "sqlite":
        assert path
        db = sqlite3.connect(path)
        with db:
            db.execute("UPDATE audit_events SET outcome = 'failed' WHERE seq = 4")
        db.close()
    else:
        with trail.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE audit_events SET outcome = 'failed' WHERE seq = 4")
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at seq 4" in capsys.readouterr().out


def test_verify_exits_3_without_a_trail(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    assert main(["audit", "verify"]) == 3
    assert "no audit trail" in capsys.readouterr().err


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["audit", "export", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines]


def test_export_is_json_lines_that_verify_on_their_own(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _export(capsys, "--format", "jsonl")
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["detail"] == {"genesys_correlation_ids": ["inin-0"], "step": 0}
    # An export file is enough to re-verify the chain (docs/audit.md).
    assert verify_rows(rows, head=None).ok
    # The export itself is on the record, and was not part of what it exported.
    (exported,) = trail.events(tag=Tag.ADMIN_AUDIT_EXPORTED)
    assert (exported.seq, exported.actor, exported.detail["count"]) == (7, "cli", 6)


def test_export_filters(trail: AuditLog, capsys: pytest.CaptureFixture[str]) -> None:
    def seqs(*args: str) -> list[object]:
        # Each export records an admin:audit:exported event (timed now, after START).
        rows = _export(capsys, *args)
        return [row["seq"] for row in rows if row["tag"] != Tag.ADMIN_AUDIT_EXPORTED]

    assert seqs("--user", "u1") == [2, 4, 6]
    assert seqs("--user", "g0") == [1, 3, 5]
    assert seqs("--since", "2026-05-01T11:00:00Z") == [4, 5, 6]
    assert seqs("--since", "2026-05-01T11:00:00+00:00", "--user", "u0") == [5]
    assert seqs("--tag", "deprovision:user:deleted") == [6]
    assert seqs("--job", "j0", "--after-seq", "1") == [3, 5]


def test_export_refuses_a_bad_since(trail: AuditLog, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--since", "last tuesday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_python_dash_m_scim_bridge_audit_verify(sqlite_url: str, tmp_path: Path) -> None:
    """The command as an operator runs it, in a fresh process."""
    env = {**os.environ, "DATABASE_URL": sqlite_url}
    root = Path(__file__).resolve().parents[2]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scim_bridge", "audit", *args],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert run("verify").returncode == 3
    from scim_bridge.store.engine import make_engine
    from scim_bridge.store.migrate import upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    AuditLog(engine).record(Tag.SCIM_USER_CREATED, actor="okta", scim_id="u1")
    engine.dispose()
    ok = run("verify")
    assert (ok.returncode, ok.stdout.split(":")[0]) == (0, "ok")
    exported = run("export", "--user", "u1")
    assert exported.returncode == 0
    assert [json.loads(line)["seq"] for line in exported.stdout.splitlines()] == [1]
    # The export's own event is logged to stderr, keeping stdout pure JSON Lines.
    assert json.loads(exported.stderr.splitlines()[-1])["audit"]["tag"] == "admin:audit:exported"


def _documented_script() -> str:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    block = doc.split("To verify independently", 1)[1].split("```python\n", 1)[1]
    return block.split("```", 1)[0]


def test_the_script_in_docs_verifies_an_export_independently(
    trail: AuditLog, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    export = tmp_path / "trail.jsonl"
    export.write_text("\n".join(json.dumps(row) for row in _export(capsys)) + "\n")
    script = tmp_path / "verify.py"
    script.write_text(_documented_script())
    assert len(script.read_text().strip().splitlines()) <= 12

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), str(export)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    ok = check()
    sixth = trail.events(limit=6)[-1]
    assert (ok.returncode, ok.stdout.strip()) == (0, f"ok: 6 events, head {sixth.hash}")
    lines = export.read_text().splitlines()
    lines[2] = lines[2].replace('"worker"', '"someone"')
    export.write_text("\n".join(lines) + "\n")
    broken = check()
    assert (broken.returncode, broken.stderr.strip()) == (1, "broken at seq 3")


def test_verify_names_a_row_whose_detail_is_not_json(
    trail: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    with trail.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET detail = 'not json' WHERE seq = 4"))
    assert main(["audit", "verify"]) == 1
    assert "BROKEN at seq 4: detail is not a JSON object" in capsys.readouterr().out
    # The export still runs; the row goes out as stored, and the file's own check fails on it.
    events = _export(capsys)
    assert events[3]["detail"] == "not json"
    assert not verify_rows(events, head=None).ok
