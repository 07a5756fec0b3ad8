"""``bootstrap(settings)``: one way to build the parts, used by the app and every command."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scim_bridge.app import create_app
from scim_bridge.bootstrap import Components, bootstrap
from scim_bridge.config import ConfigError, Settings
from scim_bridge.store.engine import make_engine
from tests.fixtures.bridge import bridge_settings

PACKAGE = Path(__file__).resolve().parents[1] / "scim_bridge"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_part_imports_the_app_module() -> None:
    """The wiring sits on top: parts and commands build through ``bootstrap``, not ``app``."""
    importers = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "app.py" and "scim_bridge.app" in _imported_modules(path)
    ]
    # demo runs the HTTP app itself: it is an entry point, as wsgi.py is. (serve did too until
    # issue 14: it now execs gunicorn on wsgi.py.)
    assert importers == ["demo.py"]


def _disposals(engine: sa.Engine) -> list[object]:
    seen: list[object] = []
    sa.event.listen(engine, "engine_disposed", seen.append)
    return seen


def test_without_genesys_there_is_no_gateway_and_the_database_parts_still_work(
    db_url: str,
) -> None:
    components = bootstrap(Settings(database_url=db_url))
    try:
        assert components.gateway is None
        assert components.deprovisioner is None
        assert components.directory is None
        with pytest.raises(ConfigError, match="GENESYS_CLIENT_ID"):
            components.require_gateway()
        assert components.audit.engine is components.engine
        token = components.tokens.create("okta-test")
        assert components.tokens.verify(token) == "okta-test"
        assert components.engine is components.engine  # built once
        disposed = _disposals(components.engine)
    finally:
        components.close()
    assert len(disposed) == 1  # what bootstrap built, it closes


def test_nothing_is_built_before_it_is_used(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    components = bootstrap(Settings(database_url=f"sqlite:///{database}"))
    components.close()
    assert not database.exists()


def test_a_handed_in_engine_is_used_migrated_and_left_open(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    disposed = _disposals(engine)
    try:
        app = create_app(Settings(database_url=sqlite_url), engine=engine)
        components = app.extensions["scim_bridge"]
        assert isinstance(components, Components)
        assert components.engine is engine
        assert components.audit.engine is engine
        assert sa.inspect(engine).has_table("audit_events")  # migrated
        components.close()
        assert disposed == []  # the caller made it, the caller disposes of it
    finally:
        engine.dispose()


def test_with_genesys_the_gateway_and_services_share_one_engine_and_budget(
    sandbox: Any, tmp_path: Path
) -> None:
    settings = bridge_settings(sandbox, tmp_path / "bridge.db")
    components = bootstrap(settings)
    try:
        gateway = components.require_gateway()
        assert components.gateway is gateway
        deprovisioner = components.deprovisioner
        assert deprovisioner is not None
        assert components.directory is not None
        # The budget is shared through the database: the gateway's calls take slots of the ring
        # every process and replica of this OAuth client sees.
        taken = "SELECT count(*) FROM rate_budget_slots WHERE taken_at > 0"
        gateway.list_users(page_size=1, state="active", deadline=time.monotonic() + 30)
        with components.engine.connect() as conn:
            assert conn.execute(sa.text(taken)).scalar() == 1
    finally:
        components.close()


def test_commands_that_need_no_genesys_run_without_credentials_or_the_sdk(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENESYS_")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'bridge.db'}"
    script = (
        "import sys\n"
        "from scim_bridge.cli import main\n"
        "assert main(['tokens', 'create', '--name', 'okta-prod']) == 0\n"
        "assert main(['jobs', 'list']) == 0\n"
        "assert main(['audit', 'verify']) == 0\n"
        "assert 'PureCloudPlatformClientV2' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "chain intact" in done.stdout


def test_doctor_opens_no_database(sandbox: Any, tmp_path: Path) -> None:
    """doctor runs before go-live, perhaps where the bridge's database does not exist yet."""
    database = tmp_path / "bridge.db"
    env = {
        **os.environ,
        "GENESYS_API_HOST": sandbox.url,
        "GENESYS_CLIENT_ID": sandbox.client_id,
        "GENESYS_CLIENT_SECRET": sandbox.client_secret,
        "DATABASE_URL": f"sqlite:///{database}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "[ok] log in" in done.stdout, done.stdout + done.stderr
    assert not database.exists()
