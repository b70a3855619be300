"""A finished connection leaves no reference cycle behind, client side or backend side.

The parsers hold their protocol's bound methods, and the connection holds its reader: left
alone, every connection became a cycle that only the garbage collector frees, and its
collections were ~15 % of a `Connection: close` request's instructions. Drives the real
`HttpConnection`, `ProxyExchange` and `UpstreamConnection` with in-memory transports, then
asks the collector what it had to free.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path

from navigator.config.loader import load_config
from navigator.http.connection import HttpConnection
from navigator.http.state import ServerState
from navigator.proxy.upstream import PoolKey, UpstreamConnection, UpstreamPool
from navigator.web.snapshot import build_snapshot
from tests.fakes import FixedTenants, MemoryTransport

OURS = {"HttpConnection", "RequestReader", "HttpRequestParser", "HttpResponseParser",
        "UpstreamConnection", "Exchange", "ProxyExchange", "RequestInfo"}


def collected(run: Callable[[], None]) -> list[str]:
    """Names of our objects that only the cycle collector could free after `run`."""
    gc.collect()
    gc.disable()
    try:
        run()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sorted(type(o).__name__ for o in gc.garbage if type(o).__name__ in OURS)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


class Rig:
    """A server state whose pool opens in-memory backend connections at once."""

    def __init__(self, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
        cfg = tmp_path / "navigator.yml"
        cfg.write_text("server:\n  listen: 127.0.0.1:0\nroutes:\n  reverse_proxies:\n"
                       "    - {name: up, prefix: /up, target: 'http://127.0.0.1:9'}\n")
        self.loop = loop
        self.opened: list[UpstreamConnection] = []
        self.state = ServerState(loop=loop, snapshot=build_snapshot(load_config(cfg)),
                                 pool=UpstreamPool(loop, self.open), tenants=FixedTenants(None))
        self.received = b""

    async def open(self, pool: UpstreamPool, key: PoolKey, deadline: float
                   ) -> UpstreamConnection:
        conn = UpstreamConnection(pool, key)
        conn.connection_made(MemoryTransport())  # type: ignore[arg-type]
        self.opened.append(conn)
        return conn

    def closing_exchange(self, response: bytes) -> None:
        """One `Connection: close` request proxied to a backend answering `response`, both
        connections then lost; the rig keeps no reference to either."""
        client = HttpConnection(self.state)
        transport = MemoryTransport()
        client.connection_made(transport)  # type: ignore[arg-type]

        async def scenario() -> None:
            client.data_received(b"GET /up/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            for _ in range(20):
                if self.opened:
                    break
                await asyncio.sleep(0)
            backend = self.opened.pop()
            backend.data_received(response)
            assert transport.closed, "a Connection: close exchange closes the client"
            client.connection_lost(None)
            if not backend.closed:  # kept alive, in the pool: shut down as at server exit
                backend.close()
            backend.connection_lost(None)

        self.loop.run_until_complete(scenario())
        self.received = bytes(transport.data)


def exchange_leftovers(tmp_path: Path, response: bytes) -> tuple[bytes, list[str]]:
    loop = asyncio.new_event_loop()
    try:
        rig = Rig(tmp_path, loop)
        rig.closing_exchange(response)  # warm: first-use caches are not per connection
        found = collected(lambda: rig.closing_exchange(response))
        return rig.received, found
    finally:
        loop.close()


def test_a_closed_client_connection_is_freed_without_the_collector(tmp_path: Path) -> None:
    out, found = exchange_leftovers(
        tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"ok")
    assert found == []


def test_a_backend_connection_that_closes_is_freed_without_the_collector(
        tmp_path: Path) -> None:
    out, found = exchange_leftovers(
        tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    assert out.startswith(b"HTTP/1.1 200 ")
    assert out.endswith(b"ok")
    assert found == []


def test_a_closed_reader_ignores_bytes(tmp_path: Path) -> None:
    cfg = tmp_path / "navigator.yml"
    cfg.write_text("server:\n  listen: 127.0.0.1:0\n")
    loop = asyncio.new_event_loop()
    try:
        state = ServerState(loop=loop, snapshot=build_snapshot(load_config(cfg)),
                            pool=UpstreamPool(loop), tenants=FixedTenants(None))
        client = HttpConnection(state)
        transport = MemoryTransport()
        client.connection_made(transport)  # type: ignore[arg-type]
        client.connection_lost(None)
        client.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")  # a late packet: ignored
        assert transport.data == b""
    finally:
        loop.close()
