"""The built-in pub/sub on a client connection: the websocket endpoint and the broadcast POST.

Room: I/O glue. `extras.cable` owns the hub, sessions and framing; this module adapts a client
exchange to them: checking the upgrade, writing the handshake and handing the socket over to
a `CableSession`, or collecting a bounded broadcast body and answering it.
"""

from __future__ import annotations

from collections.abc import Callable

from navigator.extras.cable import CableSession, parse_broadcast
from navigator.extras.wsframe import handshake_response
from navigator.http import wire
from navigator.http.client import Client
from navigator.http.exchange import BaseHandler, Exchange
from navigator.http.failure import Failure

BROADCAST_LIMIT = 1024 * 1024


class _BodyCollector(BaseHandler):
    """Reads a small request body, then calls `done(body)` (or answers 413)."""

    __slots__ = ("chunks", "client", "done", "ex", "size")

    def __init__(self, client: Client, ex: Exchange, done: Callable[[bytes], None]) -> None:
        self.client = client
        self.ex = ex
        self.done = done
        self.chunks: list[bytes] = client.take_buffered_body(ex)
        self.size = sum(len(c) for c in self.chunks)

    def request_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > BROADCAST_LIMIT:
            self.ex.handler = None
            self.client.fail(self.ex, Failure.TOO_LARGE, "broadcast body too large")
            return
        self.chunks.append(bytes(data))

    def request_end(self) -> None:
        if self.ex.handler is self:
            self.ex.handler = None
            self.done(b"".join(self.chunks))

    def client_lost(self) -> None:
        self.ex.handler = None


def start_broadcast(client: Client, ex: Exchange) -> None:
    ex.response_type = "broadcast"

    def deliver(body: bytes) -> None:
        try:
            stream, data = parse_broadcast(body)
        except ValueError as exc:
            client.respond_bytes(ex, 400, wire.response(400, str(exc).encode(),
                                                        keep_alive=ex.keep_alive), 0, "broadcast")
            return
        client.state.cable.broadcast(stream, data)
        client.respond_bytes(ex, 200, wire.response(200, b"", keep_alive=ex.keep_alive),
                             0, "broadcast")

    collector = _BodyCollector(client, ex, deliver)
    ex.handler = collector
    if ex.request_complete:
        collector.request_end()


def start_cable(client: Client, ex: Exchange) -> None:
    key = _header(ex, b"sec-websocket-key")
    if not ex.upgrade or not key:
        client.respond_bytes(ex, 400, wire.error_response(400, "websocket upgrade required"),
                             0, "websocket")
        return
    assert client.transport is not None
    ex.status = 101
    ex.head_sent = True
    ex.response_type = "websocket"
    client.write(handshake_response(key.decode("latin-1")))
    activity = client.state.activity
    if activity is not None:
        activity.websocket_opened()
    session = CableSession(client.transport, client.state.cable, client.state.loop,
                           on_close=activity.websocket_closed if activity is not None else None)
    pending = client.start_tunnel(session)
    client.finish_tunnel_exchange(ex)
    if pending:
        session.data_received(pending)



def _header(ex: Exchange, name: bytes) -> bytes:
    for key, value in ex.headers:
        if key.lower() == name:
            return value.strip()
    return b""
