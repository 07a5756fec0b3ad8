"""What the benchmarks share: the bridge's settings against a sandbox (``bench/idp_cycle.py``,
``bench/scim_read.py``, ``bench/offboarding.py``). Imported by name: a bench runs as a script,
so its own folder is first on ``sys.path``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from scim_bridge.config import Settings
from scim_bridge.sandbox import SandboxConfig


def sandbox_settings(
    sandbox_url: str,
    config: SandboxConfig,
    *,
    rate: int,
    database_url: str | None = None,
    **overrides: Any,
) -> Settings:
    """The bridge against the sandbox at ``sandbox_url`` (``config``'s client credentials), a
    Genesys budget of ``rate`` a minute, no in-process worker, warnings only; its database a
    fresh SQLite file unless ``database_url`` is given."""
    if database_url is None:
        database_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='scim-bench-')) / 'bridge.db'}"
    return Settings(
        genesys_api_host=sandbox_url,
        genesys_client_id=config.client_id,
        genesys_client_secret=config.client_secret,
        database_url=database_url,
        rate_limit_per_minute=rate,
        worker_in_process=False,
        log_level="WARNING",
        **overrides,
    )
