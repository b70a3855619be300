"""Backend sockets ACK an unfinished response at once, over real loopback sockets on uvloop.

Issue 14: a backend that writes a response's head and body in two small sends without
TCP_NODELAY (Python's http.server) cannot send the body until its head is ACKed, and a
kept-alive connection in delayed-ACK mode holds that ACK ~40 ms: every pooled request paid it.
The pool's connection now sets TCP_QUICKACK when a packet leaves the response unfinished.
The test puts the socket in delayed-ACK (pingpong) mode first, as a kept-alive connection
settles into, and reads the option back with getsockopt: no timing involved.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from navigator.proxy.upstream import ResponseSink, UpstreamPool

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"),
                                reason="TCP_QUICKACK is Linux-only")

REQUEST = b"GET /items HTTP/1.1\r\nHost: backend\r\n\r\n"
BODY = b'{"items": []}\n'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
    BODY)


class Sink(ResponseSink):
    """Records one response; events let the test wait for its head and its end."""

    def __init__(self) -> None:
        self.head = asyncio.Event()
        self.done = asyncio.Event()
        self.body = bytearray()
        self.lost: list[BaseException | None] = []

    def upstream_head(self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool,
                      content_length: int | None, keep_alive: bool) -> None:
        self.head.set()

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        pass

    def upstream_body(self, data: bytes | memoryview) -> None:
        self.body += data

    def upstream_complete(self) -> None:
        self.done.set()

    def upstream_upgraded(self, rest: bytes) -> None:
        pass

    def upstream_tunnel_data(self, data: bytes) -> None:
        pass

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)
        self.done.set()

    def upstream_flush(self) -> None:
        pass

    def upstream_pause_writing(self) -> None:
        pass

    def upstream_resume_writing(self) -> None:
        pass


async def exchange(pieces: list[bytes], rounds: int) -> list[tuple[int, int]]:
    """`rounds` requests on one pooled connection, the response written as `pieces`.

    For each round: (TCP_NODELAY, TCP_QUICKACK) of our backend socket read right after the
    first piece was handled, the socket having been put in delayed-ACK mode before it came.
    """
    loop = asyncio.get_running_loop()
    writers: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(rounds):
            await reader.readuntil(b"\r\n\r\n")
            await writers.put(writer)
        await reader.read()  # until the pool closes its end
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = UpstreamPool(loop)
    key = ("127.0.0.1", port, False)
    seen = []
    conn = await pool.connect(key, 5.0)
    try:
        for _ in range(rounds):
            assert conn.transport is not None
            sock = conn.transport.get_extra_info("socket")
            sink = Sink()
            conn.begin(sink, head_request=False)
            conn.writelines([REQUEST])
            writer = await asyncio.wait_for(writers.get(), 5.0)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)  # delayed-ACK mode
            writer.write(pieces[0])
            await asyncio.wait_for(sink.head.wait(), 5.0)
            seen.append((sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                         sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)))
            for piece in pieces[1:]:
                writer.write(piece)
            await asyncio.wait_for(sink.done.wait(), 5.0)
            assert (bytes(sink.body), sink.lost) == (BODY, [])
            reused = pool.acquire(key)
            assert reused is conn
    finally:
        conn.close()
        pool.close_all()
        server.close()
        await server.wait_closed()
    return seen


def test_head_without_its_body_is_acked_at_once() -> None:
    seen = uvloop.run(exchange([HEAD, BODY], rounds=3))
    assert seen == [(1, 1)] * 3


def test_nagle_is_off_on_backend_sockets() -> None:
    """What navigator relies on for its own sends: uvloop sets TCP_NODELAY on connect."""
    seen = uvloop.run(exchange([HEAD + BODY], rounds=1))
    assert seen[0][0] == 1
