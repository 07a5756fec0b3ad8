"""Reads on a SCIM request's hot path: compiled once, run on the driver's own connection.

A ``GET /Users/{id}`` reads two rows of the bridge's database (the local record, the user's open
deprovisioning jobs) around one Genesys call. Through a SQLAlchemy ``Connection`` each costs
200-300 us on the 2-core bench machine (statement construction and its cache key, expanding
``IN`` lists, ``BEGIN``/``ROLLBACK``, execution events), against about 15 us for the same SQL on
the DBAPI cursor (``bench/scim_read.py``, docs/genesys-calls.md "Read overhead"). A
:class:`Prepared` statement is built from the same ``Table`` objects as every other query,
compiled by SQLAlchemy once per dialect, and executed on a pooled driver connection
(``Engine.raw_connection``: the pool's connect hooks, pre-ping and reset-on-return still apply).

It is for single ``SELECT`` statements with scalar bind parameters only (no expanding ``IN``):
a lone ``SELECT`` outside a transaction still sees one consistent snapshot (SQLite's implicit
read transaction; on PostgreSQL the driver's transaction, rolled back when the connection goes
back to the pool). Values come back as the driver gives them (SQLite booleans as 0/1): callers
convert, as the row mappers already do.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa


class Prepared:
    def __init__(self, statement: sa.Select[Any]) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, sa.sql.compiler.SQLCompiler]] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: sa.Dialect) -> tuple[str, sa.sql.compiler.SQLCompiler]:
        key = f"{dialect.name}:{dialect.paramstyle}"
        found = self._compiled.get(key)
        if found is None:
            with self._lock:
                compiled = self._statement.compile(dialect=dialect)
                assert isinstance(compiled, sa.sql.compiler.SQLCompiler)
                if "POSTCOMPILE" in compiled.string:  # an expanding IN, rendered per execution
                    raise ValueError("a prepared statement takes scalar parameters only")
                found = self._compiled[key] = (compiled.string, compiled)
        return found

    def rows(self, engine: sa.Engine, **params: Any) -> list[dict[str, Any]]:
        """The rows as ``{column: value}``, for the bind parameters named in ``params``."""
        sql, compiled = self._for(engine.dialect)
        values = compiled.construct_params(params)
        bound: Any = (
            tuple(values[name] for name in compiled.positiontup or ())
            if compiled.positional
            else values
        )
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, bound)
                names = [column[0] for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            finally:
                cursor.close()
        finally:
            connection.close()
