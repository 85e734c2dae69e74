"""Serving the browser view: uvicorn in a daemon thread, on a socket bound before the run starts.

Loopback (``127.0.0.1``, ``::1``, ``localhost``) by default. Binding to any other address needs a token
(``--token`` or ``REID_STREAM_TOKEN``): without one the run refuses to start
(:class:`WebServerError`). With a token every request must carry it (``?token=`` or the
``X-Reid-Token`` header); see :mod:`reidstream.pipeline.web.app`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import threading
import time

from reidstream.pipeline.app.metrics import format_address, parse_address

TOKEN_ENV = "REID_STREAM_TOKEN"


class WebServerError(RuntimeError):
    """The browser view cannot be served (address in use, no token for a non-loopback address); says why."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(address: str | int, token: str | None, option: str = "--serve") -> tuple[str, int]:
    """``(host, port)`` of ``address``; refuses a non-loopback address without a token.

    Raises:
        WebServerError: naming the address, ``--token`` and ``REID_STREAM_TOKEN``.
        ValueError: a malformed address.
    """
    try:
        host, port = parse_address(address)
    except ValueError as e:
        raise ValueError(f"{option} {address!r}: {e}") from None
    if not is_loopback(host) and not token:
        raise WebServerError(f"{option} {format_address(host, port)}: serving the browser view beyond this machine "
                             f"needs an access token: pass --token TOKEN or set {TOKEN_ENV} (or bind 127.0.0.1)")
    if token is not None and (len(token) < 8 or not token.isprintable()):
        raise WebServerError(f"{option}: expected a token of at least 8 printable characters, got {len(token)}")
    return host, port


class WebServer:
    """An ASGI app served by uvicorn from a daemon thread; :meth:`stop` ends it.

    Args:
        app: The ASGI app (:func:`~reidstream.pipeline.web.app.create_app`).
        address: ``HOST:PORT`` or a bare port (port 0: a free one).
        token: The access token (required for a non-loopback host).

    Attributes:
        address: The bound address (with the real port).
        url: ``http://ADDRESS/`` (with ``?token=`` when there is a token).

    Raises:
        WebServerError: the address cannot be bound or needs a token.
    """

    def __init__(self, app, address: str | int, token: str | None = None, option: str = "--serve") -> None:
        import uvicorn

        host, port = check_bind(address, token, option)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            why = ("address already in use; pick another port" if e.errno == errno.EADDRINUSE else
                   "host is not an address of this machine" if e.errno == errno.EADDRNOTAVAIL else
                   "permission denied (ports below 1024 need root)" if e.errno == errno.EACCES else str(e))
            raise WebServerError(f"{option} {format_address(host, port)}: cannot listen: {why}") from None
        sock.listen(64)
        self._sock = sock
        self.address = format_address(host, sock.getsockname()[1])
        self.url = f"http://{self.address}/" + (f"?token={token}" if token else "")
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"web {self.address}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Waits until uvicorn accepts requests."""
        end = time.monotonic() + timeout
        while not self._server.started and time.monotonic() < end and self._thread.is_alive():
            time.sleep(0.02)
        return bool(self._server.started)

    def stop(self) -> None:
        """Stops serving (open streams are cut after 2 s); idempotent."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=2.0)
            self._thread = None
            self._sock.close()


__all__ = ["TOKEN_ENV", "WebServer", "WebServerError", "check_bind", "is_loopback"]
