"""gunicorn settings for ``gunicorn wsgi:app`` (the container's command).

Everything tunable comes from the environment so that one image serves every deployment.
"""

import os

bind = os.environ.get("SCIM_BRIDGE_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("SCIM_BRIDGE_WORKERS", "2"))
threads = int(os.environ.get("SCIM_BRIDGE_THREADS", "4"))
worker_class = "gthread"
# Load the app (and the Genesys SDK, ~200 MB and ~2 s to import) once in the master, then fork:
# workers share those pages copy-on-write.
preload_app = True
# Longer than the inline deprovisioning budget (SCIM_SYNC_BUDGET_S, default 10 s) plus a Genesys
# round trip, and shorter than Okta's 60 s socket timeout.
timeout = int(os.environ.get("SCIM_BRIDGE_TIMEOUT", "45"))
graceful_timeout = int(os.environ.get("SCIM_BRIDGE_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Request lines are bounded; a SCIM body is bounded by the app (1 MiB -> 413).
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
access_log_format = (
    '{"time":"%(t)s","logger":"gunicorn.access","remote":"%(h)s","method":"%(m)s",'
    '"path":"%(U)s","status":%(s)s,"bytes":%(B)s,"duration_ms":%(M)s,'
    '"request_id":"%({x-request-id}o)s","user_agent":"%(a)s"}'
)
# The query string is left out of the access log on purpose: SCIM filters carry e-mail addresses.
