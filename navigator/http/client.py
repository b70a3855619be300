"""The narrow interface handlers, the proxy, CGI and cable use to answer a client.

Room: types, plus the few helpers written against them (a whole response, holding a body).
`HttpConnection` is the one implementation; nothing outside it reads or writes its fields,
everything goes through `Client` (as the upstream side goes through
`proxy.upstream.ResponseSink`). Declared here, below every user, so no handler imports the
connection.

Deadlines are data: a `Deadline` kind and a loop time. The server's sweep compares them,
so a request arms no timer; `Client.arm_deadline` replaces the current one.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mypy_extensions import mypyc_attr

from navigator.http import wire
from navigator.http.exchange import BaseHandler, Exchange
from navigator.http.flow import BODY_BUFFER_LIMIT, PAUSE_BUFFER
from navigator.http.reader import ReaderSink

if TYPE_CHECKING:
    from navigator.http.failure import Failure
    from navigator.http.state import ServerState
    from navigator.web.decision import Respond


class Deadline(enum.IntEnum):
    """What the connection is waiting for; the sweep acts on the kind when it passes."""

    NONE = 0
    HEADER = 1  # a request head (408 if one began, else a silent close)
    KEEPALIVE = 2  # the next request on an idle connection
    BODY = 3  # the next bytes of a request body
    UPSTREAM = 4  # the backend's response head (504)
    WEBSOCKET = 5  # traffic on a tunnel (extended by each message)
    LINGER = 6  # the rest of an unwanted body before closing


class Tunnel(Protocol):
    """What takes the client's bytes after a protocol switch (a proxied websocket, a cable
    session, the discarding of an unwanted body)."""

    def data_received(self, data: bytes) -> None: ...
    def connection_lost(self, exc: BaseException | None) -> None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)
class Client(ReaderSink):
    """One client connection, as handlers see it. A base class, not a Protocol: compiled,
    the relay's and handlers' calls are vtable calls and these fields native reads, where a
    Protocol cost a Python method lookup per call. `HttpConnection` implements every method
    and sets every field."""

    __slots__ = ()

    state: ServerState
    peer_ip: str
    closed: bool
    write_paused: bool
    transport: asyncio.Transport | None

    @property
    def client_eof(self) -> bool:
        raise NotImplementedError

    # writing
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def writelines(self, data: Sequence[bytes | memoryview]) -> None:
        raise NotImplementedError

    def respond_bytes(self, ex: Exchange, status: int, data: bytes, body_len: int,
                      response_type: str) -> None:
        raise NotImplementedError

    def fail(self, ex: Exchange, failure: Failure, reason: str = "") -> None:
        raise NotImplementedError

    def finish(self, ex: Exchange) -> None:
        raise NotImplementedError

    def answering(self, ex: Exchange) -> bool:
        raise NotImplementedError

    # reading
    def pause_reading(self, reason: int) -> None:
        raise NotImplementedError

    def resume_reading(self, reason: int) -> None:
        raise NotImplementedError

    def take_buffered_body(self, ex: Exchange) -> list[bytes]:
        raise NotImplementedError

    # deadlines
    def arm_deadline(self, kind: Deadline, seconds: float) -> None:
        raise NotImplementedError

    def extend_deadline(self, kind: Deadline, seconds: float) -> None:
        raise NotImplementedError

    def clear_deadline(self) -> None:
        raise NotImplementedError

    # protocol switch
    def start_tunnel(self, tunnel: Tunnel) -> bytes:
        raise NotImplementedError

    def end_tunnel(self, tunnel: Tunnel) -> None:
        raise NotImplementedError

    def finish_tunnel_exchange(self, ex: Exchange) -> None:
        raise NotImplementedError

    def refuse_upgrade(self, ex: Exchange) -> None:
        raise NotImplementedError

    # ending
    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def respond(client: Client, ex: Exchange, decision: Respond) -> None:
    """Answer with a response routing built whole (redirect, health, maintenance page)."""
    keep_alive = ex.keep_alive and ex.request_complete
    ex.keep_alive = keep_alive
    data = wire.response(decision.status, decision.body, decision.headers,
                         keep_alive=keep_alive, head_only=ex.method == b"HEAD",
                         content_type=None if _has_type(decision.headers)
                         else "text/plain; charset=utf-8")
    ex.response_type = decision.response_type
    client.respond_bytes(ex, decision.status, data,
                         0 if ex.method == b"HEAD" else len(decision.body), decision.response_type)


def _has_type(headers: tuple[tuple[str, str], ...]) -> bool:
    return any(name.lower() == "content-type" for name, _ in headers)


def hold_body(client: Client, ex: Exchange, data: bytes) -> None:
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

    def __init__(self, client: Client, ex: Exchange) -> None:
        self.client = client
        self.ex = ex

    def request_body(self, data: bytes) -> None:
        hold_body(self.client, self.ex, data)

    def client_lost(self) -> None:
        self.ex.handler = None
