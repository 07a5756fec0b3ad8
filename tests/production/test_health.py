"""Health, readiness and metrics (issue 6 item 3): what a platform probes and Prometheus scrapes.

``/healthz`` is liveness only; ``/readyz`` checks the database, whether Genesys answered lately
and a fresh worker heartbeat, per component; ``/metrics`` carries SCIM requests by endpoint,
method, status and token name, Genesys calls by endpoint and status, 429s, budget waits, jobs by
state, the oldest open job's age, deprovisioning durations and history mismatches.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scim_bridge.app import GENESYS_GRACE_S, _raise_if_unreachable
from scim_bridge.deprovision import jobs
from scim_bridge.genesys.reachability import Reachability
from scim_bridge.genesys.types import CallRecord
from scim_bridge.sandbox import SandboxConfig
from scim_bridge.sandbox import create_app as create_sandbox
from scim_bridge.sandbox.server import ServerThread
from tests.fixtures.bridge import close_bridge, make_bridge


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _metric(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, got), value in samples.items()
        if sample == name and all(dict(got).get(k) == v for k, v in labels.items())
    )


def test_liveness_needs_no_token_and_no_dependency(bridge: Any) -> None:
    response = bridge.flask.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readiness_names_the_failing_component_and_recovers(bridge: Any) -> None:
    # No worker has reported yet and this server runs none in process.
    response = bridge.flask.get("/readyz")
    assert response.status_code == 503
    components = response.get_json()["components"]
    assert components["database"]["status"] == "ok"
    assert components["genesys"]["status"] == "ok"
    assert components["worker"]["status"] == "fail"
    assert "scim-bridge worker" in components["worker"]["detail"]

    jobs.heartbeat(
        bridge.engine,
        worker_id="worker-1",
        now=time.time(),
        started_at=time.time(),
        jobs_finished=0,
        state="running",
    )
    response = bridge.flask.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ok"


def test_readiness_fails_on_genesys_credentials(sandbox: Any, tmp_path: Path) -> None:
    bad = make_bridge(sandbox, tmp_path, genesys_client_secret="not-the-secret")
    try:
        components = bad.flask.get("/readyz").get_json()["components"]
        assert components["genesys"]["status"] == "fail"
        assert "AuthenticationFailed" in components["genesys"]["detail"]
        assert "not-the-secret" not in str(components)
    finally:
        close_bridge(bad)


def test_an_in_process_worker_starts_with_the_first_request_and_reports(
    sandbox: Any, tmp_path: Path
) -> None:
    served = make_bridge(sandbox, tmp_path, worker_in_process=True)
    try:
        deprovisioner = served.app.extensions["scim_bridge"].deprovisioner
        assert deprovisioner.thread is None  # nothing runs before the process serves
        assert served.flask.get("/readyz").get_json()["components"]["worker"]["status"] == "ok"
        assert deprovisioner.thread is not None
        assert deprovisioner.thread.alive
    finally:
        close_bridge(served)


def test_metrics_count_scim_requests_genesys_calls_and_jobs(bridge: Any, sandbox: Any) -> None:
    users = bridge.get("/Users?count=3").get_json()["Resources"]
    assert bridge.get(f"/Users/{users[0]['id']}").status_code == 200
    assert bridge.get("/Users/no-such-user").status_code == 404
    patched = bridge.patch(
        f"/Users/{users[1]['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )
    assert patched.status_code == 200, patched.get_json()

    response = bridge.flask.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = _samples(response.get_data(as_text=True))
    by_id = "/scim/v2/Users/<user_id>"
    assert (
        _metric(
            samples,
            "scim_bridge_scim_requests_total",
            endpoint=by_id,
            method="GET",
            status="200",
            token="okta-test",
        )
        == 1
    )
    assert _metric(samples, "scim_bridge_scim_requests_total", endpoint=by_id, status="404") == 1
    assert (
        _metric(samples, "scim_bridge_genesys_calls_total", endpoint="/api/v2/users/{userId}") >= 1
    )
    assert _metric(samples, "scim_bridge_rate_budget_wait_seconds_count") >= 1
    # The deactivation finished inline: one done job, with its duration, nothing open.
    assert _metric(samples, "scim_bridge_jobs", state="done") == 1
    assert _metric(samples, "scim_bridge_oldest_open_job_age_seconds") == 0
    assert (
        _metric(
            samples,
            "scim_bridge_deprovision_duration_seconds_count",
            action="deactivate",
            state="done",
        )
        == 1
    )
    assert _metric(samples, "scim_bridge_history_mismatches_total") == 0
    assert _metric(samples, "scim_bridge_jobs_readable") == 1


def test_metrics_see_a_429_from_genesys(bridge: Any, sandbox: Any) -> None:
    sandbox.faults(
        fail_next=[
            {
                "method": "GET",
                "path_prefix": "/api/v2/users/",
                "status": 429,
                "count": 1,
                "retry_after": 0,
            }
        ]
    )
    users = bridge.get("/Users?count=1").get_json()["Resources"]
    assert bridge.get(f"/Users/{users[0]['id']}").status_code == 200
    samples = _samples(bridge.flask.get("/metrics").get_data(as_text=True))
    assert _metric(samples, "scim_bridge_genesys_rate_limited_total") == 1


def test_readiness_follows_genesys_outcomes_without_a_call_per_probe(
    sandbox: Any, bridge: Any
) -> None:
    bridge.flask.get("/readyz")  # the first probe fetches a token: Genesys answered
    before = sandbox.stats()
    for _ in range(5):
        genesys = bridge.flask.get("/readyz").get_json()["components"]["genesys"]
        assert genesys["status"] == "ok"
        assert genesys["detail"].startswith("answered ")
    assert sandbox.stats() == before  # probes read the last outcome, they spend no call


def test_readiness_fails_while_genesys_is_unreachable_and_logs_it_once(
    tmp_path: Path, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # B5/B11: a cached token kept /readyz green through an outage; nothing said so at warning.
    # The outage here is seconds old: no grace for the last answer before it (the grace has a
    # test of its own below).
    monkeypatch.setattr("scim_bridge.app.GENESYS_GRACE_S", 0.0)
    config = SandboxConfig(users=3, seed=1, rate_limit_per_minute=1_000_000)
    server = ServerThread(create_sandbox(config)).start()
    host = SimpleNamespace(
        url=server.url, client_id=config.client_id, client_secret=config.client_secret
    )
    served = make_bridge(host, tmp_path, sync_budget_s=2.0)
    users = "/scim/v2/Users?count=1"
    try:
        assert served.flask.get("/readyz").get_json()["components"]["genesys"]["status"] == "ok"
        assert served.get(users).status_code == 200
        server.stop()
        caplog.set_level(logging.INFO, logger="scim_bridge.genesys.reachability")
        assert served.get(users).status_code == 503
        assert served.get(users).status_code == 503
        genesys = served.flask.get("/readyz").get_json()["components"]["genesys"]
        assert genesys["status"] == "fail"
        assert "Genesys unreachable" in genesys["detail"]
        assert "no response" in genesys["detail"]
        server = ServerThread(create_sandbox(config), port=server.port).start()
        assert served.get(users).status_code == 200
        genesys = served.flask.get("/readyz").get_json()["components"]["genesys"]
        assert genesys["status"] == "ok", genesys
        said = [
            (r.levelname, r.getMessage())
            for r in caplog.records
            if r.name == "scim_bridge.genesys.reachability"
        ]
        assert said == [("WARNING", "genesys unreachable"), ("INFO", "genesys answers again")]
    finally:
        close_bridge(served)
        server.stop()


def test_a_stray_failure_amid_answers_is_not_an_outage() -> None:
    """One 5xx while Genesys otherwise answers keeps the replica ready: every replica seeing the
    same stray error must not leave the load balancer at once. Without answers for
    GENESYS_GRACE_S it is an outage."""
    now = [1000.0]
    seen = Reachability(clock=lambda: now[0])

    def call(status: int) -> CallRecord:
        return CallRecord("GET", "/api/v2/users/{userId}", status, 0.01)

    seen.observe(call(200))
    now[0] += 1
    seen.observe(call(500))
    _raise_if_unreachable(seen)  # answered a second ago: ready
    now[0] += GENESYS_GRACE_S
    seen.observe(call(0))
    with pytest.raises(ConnectionError, match="Genesys unreachable"):
        _raise_if_unreachable(seen)
