"""Never in the trail: tokens, secrets, passwords, raw upstream bodies (issue 3, STYLE.md 8).

Secrets go in through every audit path; then the database (the SQLite file and its WAL, or every
PostgreSQL row as text), the log lines, the export and the admin API are searched for them.
The SCIM layer extends this test to its HTTP paths.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from scim_bridge.app import create_app
from scim_bridge.audit import AuditLog, Tag, redact
from scim_bridge.config import Settings
from scim_bridge.logs import JsonFormatter
from scim_bridge.store.engine import write_transaction

PASSWORD = "Okta-Placeholder-Pw-5a1f0e"
CLIENT_SECRET = "genesys-client-secret-77c2d9"
BEARER = "scim-bearer-token-3b9e41aa"
ACCESS_TOKEN = "genesys-access-token-c0ffee12"
BODY_SECRET = "inside-an-upstream-body-9911"
LONG_SECRET = "at-the-end-of-a-long-string-4242"
EXC_SECRET = "in-an-exception-message-8080"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlLXNlY3JldA"
COOKIE = "session-cookie-value-5e5e5e"
ADMIN_TOKEN = "the-admin-token-1d2c3b4a-5e6f7a8b9c0d"
WRONG_ADMIN = "a-wrong-admin-token-6f6f6f"
SECRETS = [
    PASSWORD,
    CLIENT_SECRET,
    BEARER,
    ACCESS_TOKEN,
    BODY_SECRET,
    LONG_SECRET,
    EXC_SECRET,
    JWT,
    COOKIE,
    ADMIN_TOKEN,
    WRONG_ADMIN,
]


@dataclasses.dataclass
class Credentials:
    client_id: str
    client_secret: str


def _details() -> list[dict[str, object]]:
    okta_create = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "password": PASSWORD,  # Okta sends one on every create
        "emails": [{"value": "ada@example.com", "primary": True}],
    }
    return [
        {"request": okta_create},
        {"users": [okta_create, {"Password": PASSWORD}]},
        {"client_secret": CLIENT_SECRET, "GENESYS_CLIENT_SECRET": CLIENT_SECRET},
        {
            "credentials": Credentials("cid", CLIENT_SECRET),
            "as_dataclass": Credentials("c", CLIENT_SECRET),
        },
        {"headers": {"Authorization": f"Bearer {BEARER}", "Cookie": COOKIE}},
        {"set-cookie": COOKIE, "x-api-key": BEARER, "proxy-authorization": f"Basic {BEARER}"},
        {"access_token": ACCESS_TOKEN, "refresh_token": ACCESS_TOKEN, "id_token": JWT},
        {"genesys_access_token": ACCESS_TOKEN, "note": f"Bearer {BEARER}", "jwt": JWT},
        {"response": json.dumps({"access_token": ACCESS_TOKEN, "secret": BODY_SECRET})},
        {"response_xml": f"<error><token>{BODY_SECRET}</token></error>"},
        {"message": "upstream said: " + "x" * 3000 + LONG_SECRET},
        {"error": RuntimeError(f"HTTP 401, body: {EXC_SECRET}")},
        {"raw": f"{BODY_SECRET}".encode()},
        {"deep": [[[{"password": PASSWORD}]]], ("tuple", "key"): "ok"},  # type: ignore[dict-item]
    ]


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger("scim_bridge.audit"), logging.getLogger("scim_bridge.audit.cli")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield buffer
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _database_text(engine: sa.Engine) -> str:
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        files = [path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))]
        return "".join(p.read_bytes().decode("latin-1") for p in files if p.exists())
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT t::text FROM audit_events t").scalars().all()
        head = conn.exec_driver_sql("SELECT t::text FROM audit_head t").scalars().all()
    return "\n".join([*rows, *head])


def test_no_secret_reaches_the_database_the_logs_the_export_or_the_api(
    db_url: str,
    log_output: io.StringIO,
) -> None:
    app = create_app(Settings(database_url=db_url, admin_token=ADMIN_TOKEN))
    engine: sa.Engine = app.extensions["scim_bridge"].engine
    audit = AuditLog(engine)
    try:
        details = _details()
        # Path 1: its own transaction.
        for detail in details:
            audit.record(Tag.SCIM_USER_CREATED, actor="okta", idp="okta", detail=detail)
        # Paths 2 and 3: the caller's transaction, by keyword and through a recorder.
        with write_transaction(engine) as conn:
            for detail in details:
                audit.record(Tag.DEPROVISION_JOB_STEP, actor="worker", detail=detail, conn=conn)
                audit.recorder(conn).record(Tag.DEPROVISION_JOB_STEP, actor="worker", detail=detail)
        # Secret-shaped values in the other fields.
        audit.record(
            Tag.SCIM_AUTH_FAILED,
            actor=f"Bearer {BEARER}",
            outcome=f"Bearer {BEARER}",
            scim_id=JWT,
            correlation_id=f"Bearer {BEARER}",
        )
        # Path 4: the admin API, refused (wrong token, recorded) and served.
        client = app.test_client()
        refused = client.get("/admin/audit", headers={"Authorization": f"Bearer {WRONG_ADMIN}"})
        assert refused.status_code == 401
        served = client.get(
            "/admin/audit?limit=1000", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert served.status_code == 200
        api_text = served.get_data(as_text=True) + refused.get_data(as_text=True)
        # Path 5: the export (which records an event too), as an operator runs it.
        exported = subprocess.run(
            [sys.executable, "-m", "scim_bridge", "audit", "export"],
            env={**os.environ, "DATABASE_URL": db_url},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        export_text = exported.stdout

        assert audit.verify().ok
        assert len(export_text.splitlines()) == 3 * len(details) + 2
        places = {
            "database": _database_text(engine),
            "logs": log_output.getvalue() + exported.stderr,
            "export": export_text,
            "admin api": api_text,
        }
        assert all(places.values())
        for place, text in places.items():
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} found in the {place}"
        # What is not secret survives.
        first = json.loads(export_text.splitlines()[0])
        assert first["detail"]["request"]["userName"] == "ada@example.com"
        assert first["detail"]["request"]["password"] == "[redacted]"
    finally:
        engine.dispose()


def test_redact_rules() -> None:
    cleaned = redact(
        {
            "token_name": "okta",
            "scim_token": BEARER,
            "Client-Secret": CLIENT_SECRET,
            "queue_ids": ("q1", "q2"),
            "counts": {"before": 3, "after": 3},
            "genesys_correlation_ids": ["c1", "c2"],
            "ratio": float("nan"),
            "short_note": "ok",
            "braces": "{not json but body-like}",
            "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "error": ValueError(EXC_SECRET),
            "obj": object(),
        }
    )
    assert cleaned == {
        "token_name": "okta",
        "scim_token": "[redacted]",
        "Client-Secret": "[redacted]",
        "queue_ids": ["q1", "q2"],
        "counts": {"before": 3, "after": 3},
        "genesys_correlation_ids": ["c1", "c2"],
        "ratio": "nan",
        "short_note": "ok",
        "braces": "[omitted: 24 chars]",
        "when": "2026-01-02T03:04:05.000000Z",
        "error": {"exception": "ValueError"},
        "obj": "<object>",
    }
    assert redact(None) == {}
