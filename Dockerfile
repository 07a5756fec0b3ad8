# scim-bridge: gunicorn serving wsgi:app on :8080 as a non-root user.
# Build: docker build -t scim-bridge .   (no Docker engine runs on the dev machines; a test checks
# this file statically: tests/test_container.py)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 scim \
    && useradd --system --uid 10001 --gid scim --home-dir /app --shell /usr/sbin/nologin scim \
    && mkdir -p /app /data \
    && chown scim:scim /data

WORKDIR /app

# Pinned dependencies first, so that code changes do not rebuild this layer.
COPY requirements.txt ./
# --no-deps: requirements.txt pins the whole closure (tests/test_container.py checks that).
RUN pip install --no-deps -r requirements.txt

# The package runs from /app (python -m scim_bridge ...); no build step, no build-time downloads.
COPY wsgi.py gunicorn.conf.py ./
COPY scim_bridge ./scim_bridge

# The SQLite default lives on a volume; set DATABASE_URL for PostgreSQL.
ENV DATABASE_URL=sqlite:////data/scim-bridge.db \
    PYTHONPATH=/app \
    HOME=/app
VOLUME ["/data"]

USER scim:scim
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
