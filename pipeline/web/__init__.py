"""The browser view of ``reid-stream --serve`` and ``reid-review``: live cameras, identities, events, actions.

See docs/web.md. :class:`LiveServer` is what a run opens: the shared :class:`~reidstream.pipeline.web.state.WebState`
(fed by :class:`~reidstream.pipeline.sinks.web.WebSink`, its actions applied by the pipeline thread) and the
HTTP server (:class:`~reidstream.pipeline.web.server.WebServer`).
"""

from __future__ import annotations

from reidstream.pipeline.web.server import TOKEN_ENV, WebServer, WebServerError, check_bind
from reidstream.pipeline.web.state import Action, WebState


class LiveServer:
    """The browser view of a running pipeline, served from ``address`` until :meth:`stop`.

    Args:
        address: ``HOST:PORT`` or a bare port (``output.serve``).
        token: Access token (required beyond loopback).
        privacy: The run's privacy mode (no colour kept or served).

    Attributes:
        state: What the sink fills and the pages read.
        server: The HTTP server (``server.url``).

    Raises:
        WebServerError: the address cannot be bound, or needs a token.
        ValueError: a malformed address.
    """

    def __init__(self, address: str | int, token: str | None = None, *, privacy: bool = False) -> None:
        from reidstream.pipeline.web.app import LiveView, create_app

        check_bind(address, token)
        self.state = WebState(privacy=privacy)
        self.server = WebServer(create_app(LiveView(self.state), token), address, token)
        self.url = self.server.url

    def between_frames(self, gallery):
        """See :meth:`WebState.between_frames` (pipeline thread)."""
        return self.state.between_frames(gallery)

    def stop(self) -> None:
        self.state.close()
        self.server.stop()


__all__ = ["Action", "LiveServer", "TOKEN_ENV", "WebServer", "WebServerError", "WebState", "check_bind"]
