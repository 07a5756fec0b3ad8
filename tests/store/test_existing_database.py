"""Commands that read or act on the bridge's state never create a database (B7): with a wrong or
missing ``DATABASE_URL`` they say so in one line and exit 3, rather than report an empty, intact
trail or no jobs from a database they just made. ``tokens create`` and ``operators create`` (the
README's first-run steps, before ``serve``) and the bridge's own start still create it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from scim_bridge.cli import main

READERS = [
    ["audit", "verify"],
    ["audit", "head"],
    ["audit", "export"],
    ["jobs", "list"],
    ["jobs", "show", "cecc02f2"],
    ["tokens", "list"],
    ["tokens", "revoke", "okta-prod"],
    ["operators", "list"],
]


@pytest.mark.parametrize("argv", READERS, ids=" ".join)
def test_a_missing_database_is_named_and_not_created(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "scim-bridge.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert main(argv) == 3
    captured = capsys.readouterr()
    assert "no scim-bridge database at sqlite:///" in captured.err
    assert str(path) in captured.err
    assert "ok:" not in captured.out
    assert not path.exists()


@pytest.mark.parametrize("argv", [["audit", "verify"], ["jobs", "list"]], ids=" ".join)
def test_an_unopenable_path_is_one_line_not_a_traceback(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////nonexistent-scim-bridge-dir/x.db")
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "no scim-bridge database at sqlite:////nonexistent-scim-bridge-dir/x.db" in err
    assert "Traceback" not in err


def test_an_empty_file_is_not_given_a_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    path.touch()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert main(["jobs", "list"]) == 3
    assert main(["audit", "verify"]) == 3
    with contextlib.closing(sqlite3.connect(path)) as db:  # (opening it may set WAL mode)
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)


def test_the_first_run_steps_create_it_and_the_readers_then_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bridge.db'}")
    assert main(["tokens", "create", "--name", "okta-prod"]) == 0
    assert main(["jobs", "list"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "ok: 1 events" in capsys.readouterr().out
