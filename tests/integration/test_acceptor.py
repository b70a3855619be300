"""Listening sockets drain their accept queue per wake-up, over real loopback sockets on uvloop.

libuv accepts one connection per loop iteration (see navigator/http/acceptor.py): a burst of
connections queued in the kernel then waits one busy iteration each. These tests queue a burst
before the loop runs and count loop iterations, not time.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from navigator.http.acceptor import ACCEPT_BATCH, listen

BURST = ACCEPT_BATCH + 44  # more than one wake-up's worth


class Counting(asyncio.Protocol):
    """Records connection_made and answers each request's first bytes with a fixed line."""

    made: list[Counting]

    def __init__(self, made: list[Counting]) -> None:
        self.made = made
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.made.append(self)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"seen " + data)


async def burst_then_iterations(iterations: int) -> tuple[int, bytes]:
    """Queue BURST connects before the loop looks, then let it run `iterations` times.
    Returns (connections accepted, what the last client got back)."""
    loop = asyncio.get_running_loop()
    made: list[Counting] = []
    listeners = await listen(loop, lambda _peer: Counting(made), "127.0.0.1", 0, backlog=4096)
    port = listeners[0].sock.getsockname()[1]
    clients = []
    try:
        # Loopback handshakes complete in the kernel: the loop need not run for these.
        clients.extend(socket.create_connection(("127.0.0.1", port), timeout=5)
                       for _ in range(BURST))
        for _ in range(iterations):
            await asyncio.sleep(0)
        accepted = len(made)
        last = clients[-1]
        last.setblocking(False)
        last.sendall(b"ping")
        reply = b""
        for _ in range(1000):  # bounded: the reply needs a few iterations
            await asyncio.sleep(0.005)
            try:
                reply += last.recv(100)
            except BlockingIOError:
                continue
            if reply.endswith(b"ping"):
                break
        return accepted, reply
    finally:
        for client in clients:
            client.close()
        for listener in listeners:
            listener.close()


def test_a_burst_is_accepted_within_a_few_iterations() -> None:
    accepted, reply = uvloop.run(burst_then_iterations(iterations=6))
    assert accepted == BURST
    assert reply == b"seen ping"


def test_close_stops_accepting() -> None:
    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        listeners = await listen(loop, lambda _peer: asyncio.Protocol(), "127.0.0.1", 0,
                                 backlog=16)
        port = listeners[0].sock.getsockname()[1]
        for listener in listeners:
            listener.close()
            listener.close()  # twice is harmless
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    assert uvloop.run(scenario())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_binds_every_address_of_the_host(host: str) -> None:
    async def scenario() -> list[tuple[str, int]]:
        loop = asyncio.get_running_loop()
        listeners = await listen(loop, lambda _peer: asyncio.Protocol(), host, 0, backlog=16)
        try:
            return [listener.sock.getsockname()[:2] for listener in listeners]
        finally:
            for listener in listeners:
                listener.close()

    bound = uvloop.run(scenario())
    expected = {info[4][0] for info in socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)}
    assert {address for address, _ in bound} == expected
