"""Flow-control vocabulary shared by the client protocol and its handlers.

Room: constants, the one write helper both sides use, and the body-holding handler.
Reading a client socket can be paused for several independent reasons; each is one bit,
and reading resumes only when no bit is left set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from navigator.http.connection import Exchange, HttpProtocol

PAUSE_PIPELINE: Final = 1  # a pipelined request waits for its turn
PAUSE_UPSTREAM: Final = 2  # the backend's write buffer is full
PAUSE_BUFFER: Final = 4  # body bytes are buffered while no handler can take them
PAUSE_TUNNEL: Final = 8  # the tunnel's other side is slow

BODY_BUFFER_LIMIT: Final = 256 * 1024
"""Bytes of request body held while a tenant starts or a backend connects."""

JOIN_LIMIT: Final = 16 * 1024
"""Parts of one message are joined into one buffer up to this size, and written with writev
beyond it (see `write_parts`)."""


def write_parts(transport: asyncio.WriteTransport, parts: Sequence[bytes | memoryview]) -> None:
    """Write the parts of one message with one send call and as few copies as are cheap.

    uvloop sends a single buffer with a plain write() and several with one writev() through
    a per-call context object: for a small head and body, joining them costs less than that
    context; for a large body, writev saves copying it.
    """
    if len(parts) == 1:
        transport.write(parts[0])
    elif sum(map(len, parts)) <= JOIN_LIMIT:
        transport.write(b"".join(parts))
    else:
        transport.writelines(parts)


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


def hold_body(client: HttpProtocol, ex: Exchange, data: bytes) -> None:
    """Keep request body bytes that no one can take yet; past BODY_BUFFER_LIMIT, stop
    reading the client until `take_buffered_body` hands them on (and resumes)."""
    if ex.body_buffer is None:
        ex.body_buffer = []
    ex.body_buffer.append(bytes(data))
    ex.body_buffered += len(data)
    if ex.body_buffered > BODY_BUFFER_LIMIT:
        client.pause_reading(PAUSE_BUFFER)


class HoldingHandler(BaseHandler):
    """The handler while the real one is not ready yet (a tenant starting, another machine
    being reached): holds the body, bounded."""

    __slots__ = ("client", "ex")

    def __init__(self, client: HttpProtocol, ex: Exchange) -> None:
        self.client = client
        self.ex = ex

    def request_body(self, data: bytes) -> None:
        hold_body(self.client, self.ex, data)

    def client_lost(self) -> None:
        self.ex.handler = None
