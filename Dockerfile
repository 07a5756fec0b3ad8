# scim-bridge: gunicorn serving wsgi:app on :8080 as a non-root user (uid 10001).
# Build: docker build -t scim-bridge .   (or podman build --format docker; `make test` builds and
# runs it with podman: tests/test_container_run.py, scripts/container/setup)
#
# Two stages. The build stage installs the pinned wheels into a virtual environment (binary wheels
# only, so no compiler is ever needed or left behind) and compiles the app's bytecode; the runtime
# stage copies the environment and the app, and holds no pip cache, no requirements file, no build
# context and no pip in the app's environment.

FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Pinned dependencies first, so that code changes do not rebuild this layer. --no-deps:
# requirements.txt pins the whole closure (tests/test_container.py checks that). pip keeps its
# default of compiling each wheel's bytecode: the runtime user cannot write it, and the Genesys
# SDK (most of the image) would otherwise be compiled from source at every start.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-deps --only-binary=:all: \
        -r /tmp/requirements.txt

# The package runs from /app (python -m scim_bridge ...); no build step, no build-time downloads.
# Its bytecode is compiled here for the same reason as the dependencies'.
COPY wsgi.py gunicorn.conf.py healthcheck.py /app/
COPY scim_bridge /app/scim_bridge
RUN python -m compileall -q /app


FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 scim \
    && useradd --system --uid 10001 --gid scim --home-dir /app --shell /usr/sbin/nologin scim \
    && mkdir -p /data \
    && chown scim:scim /data

# Owned by root: the runtime user reads the code and cannot change it.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app

# The SQLite default lives on a volume; set DATABASE_URL for PostgreSQL.
ENV PATH=/opt/venv/bin:$PATH \
    DATABASE_URL=sqlite:////data/scim-bridge.db \
    PYTHONPATH=/app \
    HOME=/app
VOLUME ["/data"]

USER scim:scim
EXPOSE 8080

# Probes /healthz where gunicorn listens: SCIM_BRIDGE_BIND, GUNICORN_CMD_ARGS, a replaced command,
# SCRIPT_NAME (healthcheck.py).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
