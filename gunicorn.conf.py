"""gunicorn settings for ``gunicorn -c gunicorn.conf.py wsgi:app`` (the container's command).

Everything tunable comes from the environment so that one image serves every deployment:

| variable | default | |
|---|---|---|
| ``SCIM_BRIDGE_BIND`` | ``0.0.0.0:8080`` | |
| ``SCIM_BRIDGE_WORKERS`` | 2 | worker processes |
| ``SCIM_BRIDGE_THREADS`` | 4 | threads per worker (gthread) |
| ``SCIM_BRIDGE_TIMEOUT`` | 45 | seconds a request may take before its worker is restarted |
| ``SCIM_BRIDGE_GRACEFUL_TIMEOUT`` | 30 | seconds a stopping worker gets to finish |
| ``SCIM_BRIDGE_PRELOAD`` | true | load the app once in the master, then fork (``false``: each worker imports it) |
| ``PROMETHEUS_MULTIPROC_DIR`` | a fresh temp dir | where the workers' metric files live (must start empty) |

gunicorn reads this file before it imports the app (with ``preload_app`` it imports it right
after, in the master), which is what lets the prometheus-client set-up below come first.
"""

import atexit
import gc
import json
import os
import shutil
import tempfile
import time

from gunicorn.glogging import Logger

# --- metrics: prometheus-client multiprocess mode ------------------------------------------------
# prometheus-client picks its value store when it is first imported: with PROMETHEUS_MULTIPROC_DIR
# set, every worker writes its counters to files there and /metrics (admin/metrics.py) sums them,
# so a scrape answered by any one worker reports all of them. Set it here, before the app (and so
# prometheus-client) is imported. A directory given by the deployment must be empty at start (an
# emptyDir or tmpfs); one made here is removed when the master exits.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = tempfile.mkdtemp(prefix="scim-bridge-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir
    _master_pid = os.getpid()

    def _remove_metrics_dir() -> None:
        # atexit handlers are inherited by forked workers: only the master removes the directory.
        if os.getpid() == _master_pid:
            shutil.rmtree(_metrics_dir, ignore_errors=True)

    atexit.register(_remove_metrics_dir)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected true or false, got {value!r}")


bind = os.environ.get("SCIM_BRIDGE_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("SCIM_BRIDGE_WORKERS", "2"))
threads = int(os.environ.get("SCIM_BRIDGE_THREADS", "4"))
worker_class = "gthread"
# Load the app (and the Genesys SDK, ~200 MB and ~2 s to import) once in the master, then fork:
# workers share those pages copy-on-write (bench/memory.py measures what that saves).
preload_app = _env_bool("SCIM_BRIDGE_PRELOAD", True)
# Longer than the inline deprovisioning budget (SCIM_SYNC_BUDGET_S, default 10 s) plus a Genesys
# round trip, and shorter than Okta's 60 s socket timeout.
timeout = int(os.environ.get("SCIM_BRIDGE_TIMEOUT", "45"))
# Enough for an inline request to reach its budget and for the in-process worker thread to hand
# its jobs back at the next step boundary (worker_exit below).
graceful_timeout = int(os.environ.get("SCIM_BRIDGE_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Request lines are bounded; a SCIM body is bounded by the app (1 MiB -> 413).
limit_request_line = 8190
# gunicorn's runtime control socket ($HOME/.gunicorn/gunicorn.ctl by default) is not used: it would
# need a writable HOME in the container, and two servers on one host would share its path.
control_socket_disable = True


# --- access log: one JSON object per request ------------------------------------------------------
class JsonAccessLogger(Logger):
    """The access log as JSON built with ``json.dumps`` (a path holding a quote stays valid JSON).

    The query string is left out on purpose: SCIM filters carry e-mail addresses.
    """

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        request_id = next((v for k, v in resp.headers if k.lower() == "x-request-id"), None)
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "logger": "gunicorn.access",
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 1),
            "request_id": request_id,
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(line, separators=(",", ":")))
        except Exception:
            self.exception("access log line not written")


logger_class = JsonAccessLogger
accesslog = "-"
errorlog = "-"


# --- hooks ------------------------------------------------------------------------------------------
def _components(app: object) -> object | None:
    """What ``create_app`` built (``Components``), from the Flask app a process serves."""
    extensions = getattr(app, "extensions", None)
    return extensions.get("scim_bridge") if isinstance(extensions, dict) else None


def when_ready(server) -> None:
    """Master, after preloading and before the first fork.

    - Drop the database connections preloading opened: ``create_app`` runs the migrations, which
      leaves connections in the engine's pool, and a forked worker must never use a socket (or
      SQLite handle) its parent and siblings also hold. The master serves nothing, so it closes
      them; each worker opens its own.
    - ``gc.freeze()``: the objects loaded so far (the SDK, mostly) move to the collector's
      permanent generation, so that the workers' collections do not write to them and unshare
      their pages (about 100 MB less for 4 workers; bench/memory.py).
    """
    if server.cfg.preload_app:
        components = _components(server.app.wsgi())  # the app the master already loaded
        if components is not None:
            components.engine.dispose()
        gc.freeze()


def worker_exit(server, worker) -> None:
    """In a worker that stopped serving (SIGTERM, max requests, graceful timeout): stop the
    in-process deprovisioning worker thread, which hands its jobs back at the next step boundary,
    and release the Genesys and database connections (``Components.close``).

    ``worker.wsgi`` is the app this worker served; it is unset when the worker never loaded one,
    and gunicorn also calls this hook in the master for a worker that vanished, where there is
    none: nothing to close then. A job in flight stays resumable by lease expiry regardless.
    """
    components = _components(getattr(worker, "wsgi", None))
    if components is not None:
        components.close()


def child_exit(server, worker) -> None:
    """In the master, once a worker has exited: drop its live-gauge files (its counters stay)."""
    # Imported here, not above: prometheus-client must first be imported after the environment
    # variable is set (by the app, at preload).
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(worker.pid)
