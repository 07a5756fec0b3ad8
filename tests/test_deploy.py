"""Static checks of deploy/: the compose file and the Kubernetes example (no engine runs here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all((ROOT / "deploy/kubernetes/scim-bridge.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def test_compose_runs_bridge_worker_and_postgres_on_one_database() -> None:
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"bridge", "worker", "postgres"}
    assert services["worker"]["command"][-1] == "worker"
    urls = {services[s]["environment"]["DATABASE_URL"] for s in ("bridge", "worker")}
    assert len(urls) == 1
    assert urls.pop().startswith("postgresql+psycopg://")
    assert services["bridge"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_kubernetes_has_two_web_replicas_a_worker_a_secret_and_probes() -> None:
    objects = _k8s()
    web = objects[("Deployment", "scim-bridge")]
    worker = objects[("Deployment", "scim-bridge-worker")]
    assert web["spec"]["replicas"] == 2
    assert ("Secret", "scim-bridge") in objects
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "worker"
    for deployment in (web, worker):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        # Secrets reach the pods from the Secret, never inline in the Deployment.
        for c in pod["containers"]:
            assert "env" not in c or all("value" not in e for e in c["env"])
            assert {"secretRef": {"name": "scim-bridge"}} in c["envFrom"]


def test_the_web_deployment_does_not_run_a_second_worker_in_process() -> None:
    config = _k8s()[("ConfigMap", "scim-bridge")]["data"]
    assert config["SCIM_BRIDGE_IN_PROCESS_WORKER"] == "false"
