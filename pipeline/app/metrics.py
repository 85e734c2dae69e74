"""The metrics endpoint of ``reid-stream --metrics HOST:PORT``: Prometheus ``/metrics`` and a ``/healthz`` check.

One small WSGI app on a threaded ``wsgiref`` server in a daemon thread routes ``/metrics`` to
``prometheus_client``'s exposition of the run's own :class:`~prometheus_client.CollectorRegistry` (filled
by :class:`~reidstream.pipeline.sinks.metrics.MetricsSink`; no global registry) and ``/healthz`` to a JSON
health report: ``200`` while frames arrive, ``503`` once no frame was processed for ``stale_after_s``
seconds (counted from the server's start until the first frame).

The server binds to ``127.0.0.1`` unless the address names another host (``0.0.0.0`` in a container).
"""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from socketserver import ThreadingMixIn
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DEFAULT_HOST = "127.0.0.1"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


class MetricsServerError(RuntimeError):
    """The metrics endpoint could not be opened (address in use, host not available); names the address."""


def parse_address(value: str | int) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or a bare ``PORT`` (host ``127.0.0.1``) -> ``(host, port)``.

    Args:
        value: The address as given (``output.metrics`` or ``--metrics``); port 0 picks a free port.

    Returns:
        The host (without brackets) and the port.

    Raises:
        ValueError: naming the expected form (the caller names the value: a config error adds it).
    """
    text = str(value).strip()
    expected = "expected HOST:PORT (e.g. 127.0.0.1:9108, 0.0.0.0:9108) or a bare port 0-65535"
    if isinstance(value, bool) or not text:
        raise ValueError(expected)
    if text.isdigit():
        host, port = DEFAULT_HOST, text
    elif text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep or not host:
            raise ValueError(expected)
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host or any(c.isspace() for c in host):
            raise ValueError(expected)
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(expected)
    return host, int(port)


def format_address(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = False  # a second run on the same port must fail, not share it


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:
        """Scrapes are not logged (one every few seconds would flood stderr)."""


class MetricsServer:
    """``/metrics`` and ``/healthz`` of one run, served from a daemon thread; :meth:`stop` shuts it down.

    Args:
        address: ``HOST:PORT`` or a bare port (see :func:`parse_address`).
        registry: The run's Prometheus registry; None: a new :class:`~prometheus_client.CollectorRegistry`
            (never the global one), for a :class:`~reidstream.pipeline.sinks.metrics.MetricsSink` to fill.
        health: Returns ``frames_processed`` (int) and ``last_frame_age_s`` (float, None before the first
            frame); None: read from the registry (:func:`~reidstream.pipeline.sinks.metrics.registry_health`).
        stale_after_s: ``/healthz`` answers 503 once no frame was processed for this long.
        clock: Monotonic time source (seconds).

    Attributes:
        registry: The registry served.
        address: The bound address (with the real port when 0 was asked for).
        url: ``http://ADDRESS``.

    Raises:
        ValueError: the address is malformed.
        MetricsServerError: the address is in use or cannot be bound (naming it).
    """

    def __init__(self, address: str | int, registry=None, health: Callable[[], dict] | None = None, *,
                 stale_after_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        from prometheus_client import CollectorRegistry, make_wsgi_app

        from reidstream.pipeline.sinks.metrics import registry_health

        if not stale_after_s > 0:
            raise ValueError(f"MetricsServer: expected stale_after_s > 0, got {stale_after_s!r}")
        try:
            host, port = parse_address(address)
        except ValueError as e:
            raise ValueError(f"metrics address {address!r}: {e}") from None
        self.registry = CollectorRegistry() if registry is None else registry
        self.health = health if health is not None else (lambda: registry_health(self.registry))
        self.stale_after_s = float(stale_after_s)
        self.clock = clock
        self._started = clock()
        self._metrics_app = make_wsgi_app(self.registry)
        asked = format_address(host, port)
        cls = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            self._server = make_server(host, port, self._app, server_class=cls, handler_class=_QuietHandler)
        except OSError as e:
            why = ("address already in use (another reid-stream or exporter on that port?); pick another port"
                   if e.errno == errno.EADDRINUSE else
                   "host is not an address of this machine" if e.errno == errno.EADDRNOTAVAIL else
                   "permission denied (ports below 1024 need root)" if e.errno == errno.EACCES else
                   f"{type(e).__name__}: {e}")
            raise MetricsServerError(f"metrics endpoint {asked} (--metrics / output.metrics): cannot listen: {why}") \
                from None
        self.address = format_address(host, self._server.server_address[1])
        self.url = f"http://{self.address}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"metrics {self.address}", daemon=True)
        self._thread.start()

    def health_report(self) -> tuple[int, dict]:
        """The ``/healthz`` status code and JSON body: ``status`` (``ok`` / ``stale``), ``frames_processed``,
        ``seconds_since_last_frame`` (None before the first frame) and ``stale_after_s``."""
        h = self.health()
        age = h.get("last_frame_age_s")
        waited = age if age is not None else self.clock() - self._started
        ok = waited < self.stale_after_s
        body = {"status": "ok" if ok else "stale", "frames_processed": int(h.get("frames_processed", 0)),
                "seconds_since_last_frame": None if age is None else round(float(age), 3),
                "stale_after_s": self.stale_after_s}
        return (200 if ok else 503), body

    def _app(self, environ: dict, start_response) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH or path == METRICS_PATH + "/":
            return self._metrics_app(environ, start_response)
        if path == HEALTH_PATH:
            code, body = self.health_report()
            data = (json.dumps(body) + "\n").encode()
            start_response("200 OK" if code == 200 else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        data = f"not found: {path}; try {METRICS_PATH} or {HEALTH_PATH}\n".encode()
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
        return [data]

    def stop(self) -> None:
        """Stops serving and closes the socket; idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> "MetricsServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
