"""The one place ``PureCloudPlatformClientV2`` is imported, and the transport it talks through.

Three things in the SDK (269.0.0) are unfit for a server process and are fixed here, once:

* Importing the package builds the ``Configuration()`` singleton (``__init__.py:6846``), which
  reads ``~/.genesyscloudpython/config`` (host, gateway, logging, ``configuration.py:125,262-345``)
  and starts a watchdog thread to live-reload it (``configuration.py:130-141``). That has already
  happened by the time any of our code runs, so :func:`_neutralise_configuration` turns live reload
  off, points ``config_file_path`` at ``os.devnull`` (the setter re-reads it: nothing), stops the
  observer, drops every setting a file may have injected, and silences the SDK's own logger
  (it formats request and response headers, ``logger.py``). The SDK's ``_run_observer`` thread
  itself cannot be stopped (it sleeps in ``while True``); without the observer it is idle.

* ``RESTClientObject`` builds its ``PoolManager`` with ``Retry(total=10)`` on every method and
  ``respect_retry_after_header=True`` (``rest.py:112-137``): POST/PATCH/DELETE are replayed and a
  ``Retry-After`` is slept for up to 6 hours inside one call, invisibly. It passes no timeout
  (``rest.py:175-195``; ``AbstractHttpClient.timeout`` is never used, ``default_http_client.py``).
  :class:`Transport` replaces it through the SDK's own seam, ``ApiClient.set_http_client``
  (``api_client.py:145``): ``retries=False``, no redirects, a connect and read timeout on every
  request (capped by the caller's deadline), and the retry policy lives in ``gateway.py`` instead.

* The generated API methods return only the deserialised body; response headers
  (``inin-correlation-id``, ``Retry-After``, ``inin-ratelimit-*``) are kept only on the shared
  ``ApiClient.last_response`` (``api_client.py:487``), which threads overwrite. The transport
  keeps each thread's last exchange instead (:meth:`Transport.last_exchange`).

Everything else in ``scim_bridge.genesys`` gets the SDK through this module.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import certifi
import PureCloudPlatformClientV2
import urllib3
from PureCloudPlatformClientV2.abstract_http_client import AbstractHttpClient
from PureCloudPlatformClientV2.http_request_options import HttpRequestOptions
from PureCloudPlatformClientV2.logger import LogLevel
from PureCloudPlatformClientV2.rest import ApiException, RESTResponse

__all__ = [
    "ApiException",
    "Exchange",
    "HttpRequestOptions",
    "SdkClients",
    "Transport",
    "TransportError",
]

# urllib3's own errors: what a request that got no HTTP response raises (connection refused,
# timeouts, resets). ``rest.py:196-198`` converts only SSLError into an ApiException.
TransportError = urllib3.exceptions.HTTPError

_SDK_LOGGER = "PureCloudPlatformClientV2"


def _neutralise_configuration() -> None:
    cfg = PureCloudPlatformClientV2.configuration
    # Order matters: with live reload still on, the config_file_path setter would schedule a
    # recursive watch on the nearest existing parent of the new path ("/" for os.devnull's).
    cfg.live_reload_config = False
    cfg.config_file_path = os.devnull
    observer = getattr(cfg, "_observer", None)
    if observer is not None:
        observer.unschedule_all()
        observer.stop()
    # Whatever a ~/.genesyscloudpython/config read at import may have set.
    cfg.gateway_configuration = None
    cfg.should_refresh_access_token = False  # client credentials have no refresh token anyway
    cfg.proxy = None
    cfg.logger.log_file_path = None
    cfg.logger.log_to_console = False
    cfg.logger.log_request_body = False
    cfg.logger.log_response_body = False
    cfg.logger.log_level = LogLevel.LNone
    # ``disabled`` rather than a level: logs.configure() sets this logger's level to WARNING,
    # which would let api_client.py:484's error lines (URL, headers) through.
    sdk_logger = logging.getLogger(_SDK_LOGGER)
    sdk_logger.disabled = True
    sdk_logger.propagate = False


_neutralise_configuration()


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One HTTP exchange as the transport saw it. ``status`` is 0 when no response came back."""

    method: str
    status: int
    headers: Mapping[str, str]  # lower-cased names
    duration_s: float


class Transport(AbstractHttpClient):  # type: ignore[misc]
    """The SDK's HTTP client, replaced: no urllib3 retries, timeouts on every request.

    Encodes requests exactly as ``rest.py:155-195`` does (JSON body, form fields, query string)
    and raises the SDK's ``ApiException`` for a status outside 200-205 (``rest.py:207``), so the
    generated API methods and ``ApiClient.__call_api`` behave as they do with the stock client.
    """

    def __init__(
        self, *, connect_timeout_s: float, read_timeout_s: float, max_connections: int = 10
    ) -> None:
        super().__init__()
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        # block=False: a thread never waits for a pooled connection (with block=True and no
        # pool timeout it would wait forever); extra connections are opened and discarded.
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s),
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        self._local = threading.local()

    def close(self) -> None:
        """Close pooled connections (a test's teardown; a process exit does it anyway)."""
        self._pool.clear()

    # --- per-thread context set by the gateway around one SDK call --------------------------
    def set_deadline(self, deadline: float | None) -> None:
        """Cap this thread's next requests' timeouts at ``deadline`` (``time.monotonic()``)."""
        self._local.deadline = deadline

    def reset_exchange(self) -> None:
        self._local.exchange = None

    def last_exchange(self) -> Exchange | None:
        """This thread's most recent exchange since :meth:`reset_exchange`."""
        exchange: Exchange | None = getattr(self._local, "exchange", None)
        return exchange

    def last_body(self) -> str:
        """The body of this thread's most recent response (:meth:`SdkClients.call_json`)."""
        body: str = self._local.body
        return body

    # --- AbstractHttpClient --------------------------------------------------------------
    def request(self, http_request_options: Any) -> Any:
        options = http_request_options
        method = str(options.method).upper()
        url = str(options.url)
        headers: dict[str, str] = dict(options.headers or {})
        query: Mapping[str, Any] = options.query_params or {}
        headers.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        try:
            raw = self._send(
                method,
                url,
                headers=headers,
                query=query,
                post_params=options.post_params,
                body=options.body,
            )
        except urllib3.exceptions.HTTPError:
            self._local.exchange = Exchange(method, 0, {}, time.monotonic() - started)
            raise
        response = RESTResponse(raw)
        response.data = raw.data.decode("utf8")
        self._local.body = response.data
        self._local.exchange = Exchange(
            method,
            raw.status,
            {k.lower(): v for k, v in raw.headers.items()},
            time.monotonic() - started,
        )
        if not 200 <= response.status <= 205:
            raise ApiException(http_resp=response)
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        query: Mapping[str, Any],
        post_params: Any,
        body: Any,
    ) -> urllib3.BaseHTTPResponse:
        common: dict[str, Any] = {
            "headers": headers,
            "retries": False,
            "redirect": False,
            "timeout": self._timeout(),
        }
        if method in ("POST", "PUT", "PATCH", "OPTIONS"):
            if query:
                url += "?" + urlencode(query)
            if headers["Content-Type"] == "application/x-www-form-urlencoded":
                return self._pool.request(
                    method, url, fields=post_params or {}, encode_multipart=False, **common
                )
            return self._pool.request(method, url, body=json.dumps(body), **common)
        return self._pool.request(method, url, fields=query or None, **common)

    def _timeout(self) -> urllib3.Timeout:
        connect, read = self._connect_timeout_s, self._read_timeout_s
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is not None:
            # Never wait on a socket past the caller's deadline; a floor keeps the value valid.
            remaining = max(deadline - time.monotonic(), 0.05)
            connect, read = min(connect, remaining), min(read, remaining)
        return urllib3.Timeout(connect=connect, read=read)


@dataclasses.dataclass(frozen=True)
class SdkClients:
    """An ``ApiClient`` wired to a :class:`Transport`, and the generated APIs the gateway uses."""

    api_client: Any
    transport: Transport
    users: Any
    routing: Any
    analytics: Any
    groups: Any
    tokens: Any
    authorization: Any

    @classmethod
    def create(cls, api_host: str, transport: Transport) -> SdkClients:
        api_client = PureCloudPlatformClientV2.ApiClient(host=api_host.rstrip("/"))
        # ApiClient copies the singleton's gateway at construction (api_client.py:106).
        api_client.gateway_configuration = None
        api_client.set_http_client(transport)
        return cls(
            api_client=api_client,
            transport=transport,
            users=PureCloudPlatformClientV2.UsersApi(api_client),
            routing=PureCloudPlatformClientV2.RoutingApi(api_client),
            analytics=PureCloudPlatformClientV2.AnalyticsApi(api_client),
            groups=PureCloudPlatformClientV2.GroupsApi(api_client),
            tokens=PureCloudPlatformClientV2.TokensApi(api_client),
            authorization=PureCloudPlatformClientV2.AuthorizationApi(api_client),
        )

    def login_url(self) -> str:
        """The token endpoint, by the SDK's own rule (``//api.`` -> ``//login.``,
        ``api_client.py:109-113``; genesys-api.md 1.1)."""
        return str(self.api_client.get_conf_url("login", self.api_client.host)) + "/oauth/token"

    def set_access_token(self, token: str) -> None:
        # Read per call by update_params_for_auth (api_client.py:803-822); a plain attribute
        # assignment, so threads see either the old token or the new one.
        self.api_client.access_token = token

    def call_json(
        self,
        method: str,
        path: str,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """One call as the generated API methods make it (``ApiClient.call_api``: the SDK's own
        path and query encoding, ``purecloud-sdk`` header and OAuth header, through the
        transport, ``ApiException`` for an error status), with the answer as its parsed JSON
        instead of a model: no ``response_type``, so ``ApiClient.deserialize`` (which builds a
        model object for every nested entity, resolving each class by ``eval``) does not run.
        ``genesys/mapping.py`` reads the JSON by the same names as a model.

        The SCIM reads use it (a ``GET /Users/{id}`` spent ~0.25 ms of the bridge's own time
        deserialising one ``User``; docs/genesys-calls.md "Read overhead"); ``path`` and
        ``query`` use the API's names (``/api/v2/users/{userId}``, ``pageSize``), as in the
        generated method's body (``apis/users_api.py``)."""
        self.api_client.call_api(
            path,
            method,
            dict(path_params or {}),
            dict(query or {}),
            {"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            post_params=[],
            files={},
            response_type=None,
            auth_settings=["PureCloud OAuth"],
        )
        return json.loads(self.transport.last_body())

    def post_form(self, url: str, headers: Mapping[str, str], form: Mapping[str, str]) -> str:
        """POST a form through the transport (the token request); the response body."""
        options = HttpRequestOptions(
            url=url, method="POST", headers=dict(headers), post_params=dict(form)
        )
        response = self.transport.request(options)
        return str(response.data)
