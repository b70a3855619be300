"""Flow control of a request body while its backend connection is still being opened.

Drives the real `HttpConnection` and `ProxyExchange` with in-memory transports on a real event
loop whose backend connect never finishes (until the test lets it), so the window that
sockets make short and racy is held open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from navigator.config.loader import load_config
from navigator.http.connection import HttpConnection
from navigator.http.flow import BODY_BUFFER_LIMIT
from navigator.http.state import ServerState
from navigator.proxy.upstream import PoolKey, UpstreamConnection, UpstreamPool
from navigator.web.snapshot import build_snapshot
from tests.fakes import FixedTenants, MemoryTransport


class GatedPool:
    """The opener of a pool whose new connections open only when the test opens the gate
    (injected: the pool may be compiled, so it is not subclassed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.gate: asyncio.Future[None] = loop.create_future()
        self.backend = MemoryTransport()
        self.opened: list[UpstreamConnection] = []
        self.lose_before_handing_over = False
        self.pool = UpstreamPool(loop, self.open)

    async def open(self, pool: UpstreamPool, key: PoolKey, deadline: float
                   ) -> UpstreamConnection:
        await self.gate
        conn = UpstreamConnection(pool, key)
        conn.connection_made(self.backend)  # type: ignore[arg-type]
        self.opened.append(conn)
        if self.lose_before_handing_over:  # the backend died before our task resumed
            conn.connection_lost(ConnectionResetError())
        return conn


def rig(tmp_path: Path, loop: asyncio.AbstractEventLoop
        ) -> tuple[GatedPool, HttpConnection, MemoryTransport]:
    cfg = tmp_path / "navigator.yml"
    cfg.write_text("server:\n  listen: 127.0.0.1:0\nroutes:\n  reverse_proxies:\n"
                   "    - {name: up, prefix: /up, target: 'http://127.0.0.1:9'}\n")
    pool = GatedPool(loop)
    state = ServerState(loop=loop, snapshot=build_snapshot(load_config(cfg)), pool=pool.pool,
                        tenants=FixedTenants(None))
    client = HttpConnection(state)
    transport = MemoryTransport()
    client.connection_made(transport)  # type: ignore[arg-type]
    return pool, client, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_body_arriving_while_connecting_pauses_reading_then_flows(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        pool, client, transport = rig(tmp_path, loop)
        size = 4 * BODY_BUFFER_LIMIT
        piece = b"x" * 65536

        async def scenario() -> None:
            client.data_received(b"POST /up/sink HTTP/1.1\r\nHost: t\r\n"
                                 b"Content-Length: %d\r\n\r\n" % size)
            await settle()  # the connect task starts and waits at the gate
            sent = 0
            while sent < size and not transport.paused:
                client.data_received(piece)  # the kernel would stop delivering once paused
                sent += len(piece)
            assert transport.paused, "reading must pause while the body waits for a backend"
            assert sent <= BODY_BUFFER_LIMIT + len(piece)
            pool.gate.set_result(None)
            await settle()
            assert not transport.paused, "reading resumes once the buffered body is sent"
            while sent < size:
                client.data_received(piece)
                sent += len(piece)
            assert len(pool.backend.data) > size  # head plus the whole body reached it

        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_raw_body_split_anywhere_then_a_pipelined_request_in_the_same_packet(
        tmp_path: Path) -> None:
    body = bytes(range(256)) * 1200  # 300 KiB, so most of it is taken without the parser
    stream = (b"POST /up/a HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
              + body + b"GET /up/b HTTP/1.1\r\nHost: t\r\n\r\n")
    head_end = stream.index(b"\r\n\r\n") + 4
    for cuts in ([head_end + 10, 100_000], [head_end, 200_000], [50, len(stream) - 5],
                 [head_end + len(body) - 1]):
        loop = asyncio.new_event_loop()
        try:
            pool, client, transport = rig(tmp_path, loop)
            pool.gate.set_result(None)

            async def scenario(pool: GatedPool, client: HttpConnection, transport: MemoryTransport,
                               cuts: list[int]) -> None:
                last = 0
                for cut in [*cuts, len(stream)]:
                    client.data_received(stream[last:cut])
                    last = cut
                    await settle()
                sent = bytes(pool.backend.data)
                assert sent.endswith(body), "the body reached the backend whole and in order"
                assert sent.count(b"HTTP/1.1\r\n") == 1, "the GET waits for its turn"
                pool.opened[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
                await settle()
                assert bytes(pool.backend.data[len(sent):]).startswith(b"GET /up/b HTTP/1.1")
                pool.opened[0].data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
                await settle()
                assert bytes(transport.data).count(b"HTTP/1.1 200 OK") == 2
                assert not transport.closed
                assert len(pool.opened) == 1, "the pipelined GET reused the connection"

            loop.run_until_complete(scenario(pool, client, transport, cuts))
        finally:
            loop.close()


def test_backend_lost_before_the_connect_task_resumes_is_a_502_not_a_hang(
        tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        pool, client, transport = rig(tmp_path, loop)
        pool.lose_before_handing_over = True
        pool.gate.set_result(None)

        async def scenario() -> None:
            client.data_received(b"GET /up/x HTTP/1.1\r\nHost: t\r\n\r\n")
            await settle()
            assert bytes(transport.data).startswith(b"HTTP/1.1 502 "), bytes(transport.data)

        loop.run_until_complete(scenario())
    finally:
        loop.close()


def test_the_response_head_drops_hop_by_hop_and_connection_named_headers_per_response(
        tmp_path: Path) -> None:
    """The backend's Connection header names headers of its own response only: the names of
    one response must not leak into the next one on the same pooled connection."""
    loop = asyncio.new_event_loop()
    try:
        pool, client, transport = rig(tmp_path, loop)
        pool.gate.set_result(None)

        async def scenario() -> None:
            client.data_received(b"GET /up/a HTTP/1.1\r\nHost: t\r\n\r\n")
            await settle()
            pool.opened[0].data_received(
                b"HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive, X-Hop\r\n"
                b"X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 2\r\nContent-Length: 1\r\n\r\na")
            await settle()
            first = transport.take()
            assert b"\r\nServer: x\r\n" in first
            assert b"\r\nX-Kept: 2\r\n" in first
            for dropped in (b"X-Hop", b"Keep-Alive", b"Connection"):
                assert dropped not in first, dropped
            client.data_received(b"GET /up/b HTTP/1.1\r\nHost: t\r\n\r\n")
            await settle()
            pool.opened[0].data_received(
                b"HTTP/1.1 200 OK\r\nX-Hop: 3\r\nContent-Length: 1\r\n\r\nb")
            await settle()
            assert b"\r\nX-Hop: 3\r\n" in transport.take()  # not named by this response
            assert len(pool.opened) == 1

        loop.run_until_complete(scenario())
    finally:
        loop.close()
