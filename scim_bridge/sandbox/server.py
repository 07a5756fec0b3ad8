"""Serve a WSGI app on loopback from a daemon thread (tests, the demo, the bench)."""

from __future__ import annotations

import threading
from types import TracebackType

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1, so that clients (the SDK's urllib3 pool) reuse connections; no access log."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LoggingKeepAliveHandler(KeepAliveHandler):
    """The same with werkzeug's access log line per request (``sandbox`` command)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        WSGIRequestHandler.log_request(self, code, size)


class ServerThread:
    """``with ServerThread(create_app()) as server: ... server.url ...``"""

    def __init__(
        self, app: Flask, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False
    ) -> None:
        self.app = app
        handler = LoggingKeepAliveHandler if access_log else KeepAliveHandler
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=handler
        )
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"sandbox-{self.port}", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve from the calling thread (the ``sandbox`` command) until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
