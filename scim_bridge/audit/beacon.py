"""The audit head, written to the log at a fixed interval (``AUDIT_HEAD_LOG_INTERVAL``).

Log shipping then holds copies of the head outside the database, taken at known times; any of
them can be checked later with ``scim-bridge audit verify --expect SEQ:HASH`` (docs/audit.md).
One line per interval per serving process: ``{"message": "audit head", "audit_head": "17:ab12..."}``.
"""

from __future__ import annotations

import logging
import threading

from scim_bridge.audit.chain import format_head
from scim_bridge.audit.log import AuditLog

LOGGER_NAME = "scim_bridge.audit.head"


class HeadBeacon:
    def __init__(
        self, log: AuditLog, interval_s: float, *, logger: logging.Logger | None = None
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self._logger = logger or logging.getLogger(LOGGER_NAME)
        if self._logger.level == logging.NOTSET:
            self._logger.setLevel(logging.INFO)  # evidence, whatever LOG_LEVEL says
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def log_once(self) -> str:
        seq, digest = self.log.head()
        head = format_head(seq, digest)
        self._logger.info("audit head", extra={"audit_head": head})
        return head

    def start(self) -> None:
        """Start the thread (once; a no-op when the interval is 0 or it runs already)."""
        if self.interval_s <= 0:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="audit-head", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._log_safely()

    def _log_safely(self) -> None:
        try:
            self.log_once()
        except Exception:  # the database may be briefly away; the next tick tries again
            self._logger.warning("audit head could not be read", exc_info=True)

    def stop(self) -> None:
        """Stop the thread, logging the head a last time (a clean shutdown leaves the final head
        in the log too). Call it before the engine is disposed."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
            self._thread = None
            self._log_safely()
