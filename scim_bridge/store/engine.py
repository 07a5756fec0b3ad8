"""The SQLAlchemy engine: SQLite (a file, WAL mode) by default, PostgreSQL through psycopg 3.

Several processes share one database (gunicorn workers, the worker, replicas on PostgreSQL), so
the SQLite settings are chosen for that: WAL so readers never block the writer, a busy timeout so
a writer waits for the lock instead of failing, and pysqlite's own transaction handling switched
off so that SQLAlchemy's ``BEGIN`` is the real one (and ``write_transaction`` can make it
``BEGIN IMMEDIATE``). SQLAlchemy's "Serializable isolation / Savepoints / Transactional DDL"
recipe for pysqlite: https://docs.sqlalchemy.org/en/20/dialects/sqlite.html
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from scim_bridge.config import ConfigError

# A writer waits this long for another process's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Connection execution option read by the SQLite ``begin`` hook (see ``write_transaction``).
_IMMEDIATE = "scim_bridge_begin_immediate"


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (libpq style, what most platforms hand out) -> psycopg 3.

    SQLAlchemy would otherwise pick psycopg2, which is not installed.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``DATABASE_URL``; extra keyword arguments go to ``sqlalchemy.create_engine``."""
    url = normalise_url(url)
    backend = sa.make_url(url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(url, **kwargs)
    raise ValueError(f"DATABASE_URL: expected sqlite:// or postgresql://, got {backend!r}")


class NoDatabase(ConfigError):
    """``DATABASE_URL`` holds no bridge database (or cannot be opened): a command that reads the
    bridge's state says so instead of creating an empty one (exit 3)."""

    exit_code = 3

    def __init__(self, url: str, why: str) -> None:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        super().__init__(
            f"no scim-bridge database at {shown} ({why}); set DATABASE_URL to the bridge's "
            "database (the bridge creates it at its first start)"
        )


def open_existing(url: str, *, marker_table: str) -> sa.Engine:
    """An engine for a database that already holds the bridge's schema (``marker_table``), or
    ``NoDatabase``: never creates a SQLite file or a schema."""
    url = normalise_url(url)
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path in (None, "", ":memory:"):
            raise NoDatabase(url, "an in-memory database is always empty")
        if not os.path.isfile(path):
            raise NoDatabase(url, "no such file")
    engine = make_engine(url)
    try:
        found = sa.inspect(engine).has_table(marker_table)
    except sa.exc.DBAPIError as e:
        engine.dispose()
        first = str(e.orig or e).strip().splitlines()
        raise NoDatabase(url, f"cannot open it: {first[0] if first else type(e).__name__}") from e
    if not found:
        engine.dispose()
        raise NoDatabase(url, "it has no scim-bridge tables")
    return engine


def _sqlite_engine(url: str, **kwargs: Any) -> sa.Engine:
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    in_memory = sa.make_url(url).database in (None, "", ":memory:")

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit BEGIN is deferred and skips DDL).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                _enable_wal(cursor)
            # FULL: a committed audit event or job survives a power cut, not only a crash.
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL (persistent: the first process to open a new file does it).

    Changing the journal mode needs the file to itself and does not wait on the busy handler,
    so processes opening a new file at the same moment retry here until one of them has.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def is_sqlite(engine_or_conn: sa.Engine | sa.Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that will write, committed on success and rolled back on error.

    On SQLite it starts with ``BEGIN IMMEDIATE``: it takes the write lock first (waiting up to the
    busy timeout), so a transaction that reads and then writes cannot fail half-way with
    "database is locked" because another process wrote in between. On PostgreSQL it is an
    ordinary READ COMMITTED transaction; lock what you read with ``FOR UPDATE``.
    """
    with engine.connect() as conn:
        if is_sqlite(conn):
            conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


@contextlib.contextmanager
def light_write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """``write_transaction`` for records a power cut may lose without harm (a rate-budget slot):
    the commit does not wait for the disk. SQLite: ``synchronous = NORMAL`` for this commit (in
    WAL mode the database stays consistent; the next FULL commit, an audit event or a job, syncs
    the log and with it this one). PostgreSQL: ``synchronous_commit = off`` for the transaction
    (other sessions see it at once; a crash may lose it). Locks and isolation are unchanged.
    """
    with engine.connect() as conn:
        if not is_sqlite(conn):
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
            return
        # The safety level cannot change inside a transaction: set it on the driver's connection
        # (autocommit) before SQLAlchemy begins one, and put FULL back before the pool has it.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA synchronous = NORMAL")
        try:
            conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                yield conn
        finally:
            driver.execute("PRAGMA synchronous = FULL")
