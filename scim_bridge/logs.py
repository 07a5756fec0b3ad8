"""JSON log lines on stdout, each stamped with the current correlation id.

One line per record so that container log shippers carry them as they are. Audit events are
written here too (by ``audit``), under the logger ``scim_bridge.audit``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from scim_bridge import correlation

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        cid = getattr(record, "correlation_id", None) or correlation.current()
        if cid:
            line["correlation_id"] = cid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "correlation_id" and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: a traceback can carry request data; the correlation id
            # leads an operator to the rest.
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at emit time (pytest's capture swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON. Idempotent."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_scim_bridge", False):
            root.setLevel(level)
            return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    handler._scim_bridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The SDK's own logger prints request bodies at DEBUG; keep it quiet whatever the level.
    logging.getLogger("PureCloudPlatformClientV2").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
