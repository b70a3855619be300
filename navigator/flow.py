"""Flow-control vocabulary shared by the client protocol and its handlers.

Room: constants only. Reading a client socket can be paused for several independent reasons;
each is one bit, and reading resumes only when no bit is left set.
"""

from __future__ import annotations

from typing import Final

PAUSE_PIPELINE: Final = 1  # a pipelined request waits for its turn
PAUSE_UPSTREAM: Final = 2  # the backend's write buffer is full
PAUSE_BUFFER: Final = 4  # body bytes are buffered while no handler can take them
PAUSE_TUNNEL: Final = 8  # the tunnel's other side is slow

BODY_BUFFER_LIMIT: Final = 256 * 1024
"""Bytes of request body held while a tenant starts or a backend connects."""


class BaseHandler:
    """A request handler that ignores every event; subclasses override what they need.

    The protocol tells the current handler about request body bytes, the end of the
    request, and the client's write buffer filling, draining or the client going away.
    """

    __slots__ = ()

    def request_body(self, data: bytes) -> None:
        """Body bytes of the current request arrived."""

    def request_end(self) -> None:
        """The current request is complete."""

    def client_paused(self) -> None:
        """The client's write buffer is above its high-water mark."""

    def client_resumed(self) -> None:
        """The client's write buffer drained."""

    def client_lost(self) -> None:
        """The client went away or the exchange was abandoned."""
