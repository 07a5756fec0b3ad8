"""The SDK's process-wide side effects, neutralised by scim_bridge.genesys.sdk (genesys-api.md
1.2, 1.4), and the factory from settings."""

from __future__ import annotations

import logging
import os

import PureCloudPlatformClientV2
import urllib3

from scim_bridge.config import Settings
from scim_bridge.genesys import sdk
from scim_bridge.genesys.gateway import connect
from tests.genesys.helpers import active_users


def test_the_configuration_singleton_reads_and_watches_nothing() -> None:
    cfg = PureCloudPlatformClientV2.configuration
    assert cfg.live_reload_config is False
    assert cfg.config_file_path == os.devnull
    assert cfg.gateway_configuration is None
    observer = cfg._observer
    assert observer is None or not observer.emitters  # no directory is watched
    assert logging.getLogger("PureCloudPlatformClientV2").disabled


def test_the_transport_has_timeouts_and_no_retries() -> None:
    transport = sdk.Transport(connect_timeout_s=3, read_timeout_s=7)
    pool = transport._pool
    assert pool.connection_pool_kw["retries"].total is False  # no urllib3 retry of any kind
    timeout = pool.connection_pool_kw["timeout"]
    assert isinstance(timeout, urllib3.Timeout)
    assert (timeout.connect_timeout, timeout.read_timeout) == (3, 7)
    transport.close()


def test_connect_from_settings(sandbox) -> None:
    settings = Settings(
        genesys_api_host=sandbox.url,
        genesys_client_id=sandbox.client_id,
        genesys_client_secret=sandbox.client_secret,
        rate_limit_per_minute=120,
    )
    gateway = connect(settings)
    try:
        assert active_users(gateway)
        assert gateway._budget.per_minute == 120  # type: ignore[attr-defined]
    finally:
        gateway.close()
