"""Serves a metrics registry over HTTP(S), with optional basic authentication.

Used by the exporter (and usable by the worker): the bind address, a TLS
certificate and key, and a basic-auth user and password all come from
settings; passwords are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import hmac
import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.registry import CollectorRegistry

from streams.common.settings import Settings
from streams.metrics.exposition import metrics_app

log = logging.getLogger(__name__)

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def basic_auth(app: Wsgi, user: str, password: str) -> Wsgi:
    """Wrap ``app``: requests without the right ``Authorization: Basic`` get 401."""
    expected = base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "basic" or not hmac.compare_digest(given.strip(), expected):
            start_response(
                "401 Unauthorized",
                [
                    ("WWW-Authenticate", 'Basic realm="shop-kpi"'),
                    ("Content-Type", "text/plain"),
                ],
            )
            return [b"authentication required\n"]
        return app(environ, start_response)

    return guarded


def serve(
    registry: CollectorRegistry,
    host: str,
    port: int,
    tls_cert: str = "",
    tls_key: str = "",
    user: str = "",
    password: str = "",
) -> tuple[Any, threading.Thread]:
    """Start serving /metrics in a daemon thread; returns the server and the thread."""
    app: Wsgi = metrics_app(registry)
    if user or password:
        app = basic_auth(app, user, password)
    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    if tls_cert or tls_key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=tls_cert, keyfile=tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls_cert else "http"
    log.info(
        "serving %s://%s:%d/metrics%s",
        scheme,
        host,
        port,
        " (basic auth)" if user or password else "",
    )
    return server, thread


def serve_configured(
    registry: CollectorRegistry, settings: Settings, port: int
) -> tuple[Any, threading.Thread]:
    """:func:`serve` on ``KPI_EXPORTER_HOST:port`` with the exporter's TLS and basic auth.

    The exporter's and the worker's endpoints share them.
    """
    return serve(
        registry,
        settings.exporter_host,
        port,
        tls_cert=settings.exporter_tls_cert,
        tls_key=settings.exporter_tls_key,
        user=settings.exporter_basic_auth_user,
        password=settings.exporter_basic_auth_password,
    )
