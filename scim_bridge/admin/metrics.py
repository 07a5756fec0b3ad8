"""Prometheus metrics (prometheus-client), one ``Metrics`` per app.

Request and Genesys-call counters are per process; under gunicorn they are aggregated across
workers through prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``gunicorn.conf.py`` before anything imports prometheus-client). What the database knows (jobs by
state, the age of the oldest open job, deprovisioning durations, history mismatches) is read at
scrape time instead, so every replica and the separate worker process report the same truth and
nothing has to be kept in step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Deprovisioning durations, from a request to the job's end: seconds to days (a conversation
# wait, an approval, DELETE_INACTIVE_AFTER).
JOB_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0, 604800.0)


@dataclasses.dataclass(frozen=True)
class JobsSnapshot:
    """What the jobs table says right now."""

    by_state: Mapping[str, int]
    oldest_open_age_s: float  # 0 when nothing is open
    worker_heartbeat_age_s: float | None = None  # None when no worker ever reported
    # (action, final state) -> (cumulative counts per JOB_BUCKETS bound, sum of seconds, count)
    durations: Mapping[tuple[str, str], tuple[tuple[int, ...], float, int]] = dataclasses.field(
        default_factory=dict
    )
    history_mismatches: int = 0


class _JobsCollector(Collector):
    def __init__(self, read: Callable[[], JobsSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "scim_bridge_jobs_readable", "1 when the jobs table could be read at scrape time"
        )
        try:
            snapshot = self._read()
        except Exception:  # a scrape must not fail because the database is down
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "scim_bridge_jobs", "Deprovisioning jobs by state", labels=["state"]
        )
        for state, count in sorted(snapshot.by_state.items()):
            jobs.add_metric([state], count)
        yield jobs
        oldest = GaugeMetricFamily(
            "scim_bridge_oldest_open_job_age_seconds",
            "Age of the oldest deprovisioning job not yet done (0 when none is open)",
        )
        oldest.add_metric([], snapshot.oldest_open_age_s)
        yield oldest
        durations = HistogramMetricFamily(
            "scim_bridge_deprovision_duration_seconds",
            "From a deprovisioning request to its job's end, by action and final state",
            labels=["action", "state"],
        )
        for (action, state), (cumulative, total_s, count) in sorted(snapshot.durations.items()):
            buckets = [(str(b), float(n)) for b, n in zip(JOB_BUCKETS, cumulative, strict=True)]
            durations.add_metric([action, state], [*buckets, ("+Inf", float(count))], total_s)
        yield durations
        mismatches = CounterMetricFamily(
            "scim_bridge_history_mismatches",
            "Deletes whose history check after the delete did not match the one before",
        )
        mismatches.add_metric([], snapshot.history_mismatches)
        yield mismatches
        if snapshot.worker_heartbeat_age_s is not None:
            beat = GaugeMetricFamily(
                "scim_bridge_worker_heartbeat_age_seconds", "Seconds since a worker last reported"
            )
            beat.add_metric([], snapshot.worker_heartbeat_age_s)
            yield beat


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._jobs_reader: Callable[[], JobsSnapshot] | None = None
        r = self.registry
        self.scim_requests = Counter(
            "scim_bridge_scim_requests",
            "SCIM requests by endpoint, method, status and the SCIM token's name",
            ["endpoint", "method", "status", "token"],
            registry=r,
        )
        self.scim_latency = Histogram(
            "scim_bridge_scim_request_duration_seconds",
            "SCIM request latency",
            ["endpoint", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.genesys_calls = Counter(
            "scim_bridge_genesys_calls",
            "HTTP calls to Genesys Cloud by endpoint template, method and status (0: no response)",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.genesys_latency = Histogram(
            "scim_bridge_genesys_call_duration_seconds",
            "Genesys call latency",
            ["endpoint", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.genesys_rate_limited = Counter(
            "scim_bridge_genesys_rate_limited", "429 answers received from Genesys", registry=r
        )
        self.rate_budget_wait = Histogram(
            "scim_bridge_rate_budget_wait_seconds",
            "Time spent waiting for the client-side Genesys rate budget",
            buckets=(0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0),
            registry=r,
        )

    def observe_genesys_call(
        self, *, endpoint: str, method: str, status: int, duration_s: float
    ) -> None:
        self.genesys_calls.labels(endpoint, method, str(status)).inc()
        self.genesys_latency.labels(endpoint, method).observe(duration_s)
        if status == 429:
            self.genesys_rate_limited.inc()

    def observe_scim_request(
        self, *, endpoint: str, method: str, status: int, token: str, duration_s: float
    ) -> None:
        self.scim_requests.labels(endpoint, method, str(status), token).inc()
        self.scim_latency.labels(endpoint, method).observe(duration_s)

    def read_jobs_with(self, reader: Callable[[], JobsSnapshot]) -> None:
        """Report jobs from ``reader`` at each scrape (the deprovisioning engine provides it)."""
        self._jobs_reader = reader

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = CollectorRegistry()
            registry.register(_RegistryView(self.registry))
        if self._jobs_reader is not None:
            registry.register(_JobsCollector(self._jobs_reader))
        return generate_latest(registry), CONTENT_TYPE_LATEST


class _RegistryView(Collector):
    """Lets one scrape registry hold this app's metrics and the jobs collector side by side."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        yield from self._source.collect()
