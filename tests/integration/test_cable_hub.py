"""Cable sessions over real loopback sockets on uvloop.

A tiny upgrade server (read the request head, write `handshake_response`, hand the transport
to a `CableSession`) stands in for the client protocol; clients are raw asyncio streams that
send masked frames and parse the server's frames with `FrameParser(require_mask=False)`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import uvloop

from navigator.extras.cable import PING_FRAME, CableHub, CableSession
from navigator.extras.wsframe import (
    FrameParser,
    Message,
    Opcode,
    accept_key,
    encode_frame,
    handshake_response,
    parse_close,
)
from tests.fixtures.apps.support import wait_for as eventually

KEY_HEADER = re.compile(rb"(?im)^sec-websocket-key:[ \t]*(\S+)")


class UpgradeProtocol(asyncio.Protocol):
    """What the real client protocol does for the cable path, minus HTTP routing."""

    def __init__(self, hub: CableHub, options: dict[str, Any]) -> None:
        self.hub = hub
        self.options = options
        self.buffer = b""
        self.session: CableSession | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self.session.data_received(data)
            return
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        found = KEY_HEADER.search(head)
        assert found is not None
        assert self.transport is not None
        self.transport.write(handshake_response(found.group(1).decode()))
        self.session = CableSession(self.transport, self.hub, asyncio.get_running_loop(),
                                    **self.options)
        if rest:
            self.session.data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None:
            self.session.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.session is not None:
            self.session.pause_writing()

    def resume_writing(self) -> None:
        if self.session is not None:
            self.session.resume_writing()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = FrameParser(1 << 20, require_mask=False)
        self.pending: deque[Message] = deque()

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(f"GET /cable HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert f"Sec-WebSocket-Accept: {accept_key(key)}".encode() in head
        return cls(reader, writer)

    def send(self, obj: object) -> None:
        self.writer.write(encode_frame(Opcode.TEXT, json.dumps(obj).encode(), mask=True))

    async def receive(self, within: float = 10.0) -> Message | None:
        """Next message, or None at EOF."""
        async with asyncio.timeout(within):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.pending.extend(self.parser.feed(data))
        return self.pending.popleft()

    async def receive_json(self, within: float = 10.0) -> Any:
        message = await self.receive(within)
        assert message is not None
        assert message.opcode == Opcode.TEXT, message
        return json.loads(message.payload)

    def close(self) -> None:
        self.writer.close()




def run_with_server(test: Callable[[CableHub, int], Awaitable[None]],
                    **options: Any) -> None:
    async def main() -> None:
        hub = CableHub()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: UpgradeProtocol(hub, options), "127.0.0.1", 0,
                                          backlog=2048)
        port = server.sockets[0].getsockname()[1]
        try:
            await test(hub, port)
        finally:
            hub.close_all()
            server.close()
            await server.wait_closed()

    uvloop.run(main())


def test_subscribe_broadcast_unsubscribe() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        alice, bob = await Client.connect(port), await Client.connect(port)
        for client in (alice, bob):
            client.send({"type": "subscribe", "stream": "chat"})
            assert await client.receive_json() == {"type": "subscribed", "stream": "chat"}
        assert hub.broadcast("chat", b'{"text":"hi"}') == 2
        for client in (alice, bob):
            assert await client.receive_json() == {
                "type": "message", "stream": "chat", "data": {"text": "hi"}}
        bob.send({"type": "unsubscribe", "stream": "chat"})
        bob.send({"type": "subscribe", "stream": "other"})  # ordered after the unsubscribe
        assert await bob.receive_json() == {"type": "subscribed", "stream": "other"}
        assert hub.broadcast("chat", b"2") == 1
        assert (await alice.receive_json())["data"] == 2
        for client in (alice, bob):
            client.close()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario)


def test_thousand_subscribers_receive_one_broadcast() -> None:
    count = 1000

    async def scenario(hub: CableHub, port: int) -> None:
        clients: list[Client] = []
        for _ in range(0, count, 100):
            clients.extend(await asyncio.gather(*(Client.connect(port) for _ in range(100))))
        for client in clients:
            client.send({"type": "subscribe", "stream": "news"})
        await asyncio.gather(*(client.receive_json() for client in clients))
        assert hub.subscriber_count("news") == count
        started = time.perf_counter()
        assert hub.broadcast("news", b'{"headline":"one"}') == count
        fanout = time.perf_counter() - started
        received = await asyncio.gather(*(client.receive_json() for client in clients))
        total = time.perf_counter() - started
        assert all(r["data"] == {"headline": "one"} for r in received)
        print(f"\nfan-out to {count}: broadcast() {fanout * 1e3:.2f} ms, "
              f"all received {total * 1e3:.1f} ms")
        for client in clients:
            client.close()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario)


def test_dead_client_is_dropped() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        live, dead = await Client.connect(port), await Client.connect(port)
        for client in (live, dead):
            client.send({"type": "subscribe", "stream": "s"})
            await client.receive_json()
        dead.writer.transport.abort()
        await eventually(lambda: hub.subscriber_count("s") == 1)
        assert hub.session_count == 1
        assert hub.broadcast("s", b"1") == 1
        assert (await live.receive_json())["data"] == 1
        live.close()

    run_with_server(scenario)


def test_silent_client_gets_pings_then_is_closed() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        client = await Client.connect(port)
        seen: list[Message] = []
        while (message := await client.receive()) is not None:
            seen.append(message)
        pings = [m for m in seen if m.payload == PING_FRAME[2:]]
        assert pings, seen
        assert seen[-1].opcode == Opcode.CLOSE
        assert parse_close(seen[-1].payload)[0] == 1001
        client.close()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario, ping_interval=0.05, read_timeout=0.3)


def test_answering_client_outlives_read_timeout() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        client = await Client.connect(port)
        for _ in range(12):  # 12 pings span about twice the read timeout
            message = await client.receive()
            assert message is not None
            assert message.opcode == Opcode.TEXT
            assert json.loads(message.payload) == {"type": "ping"}
            client.send({"type": "pong"})
        assert hub.session_count == 1
        client.close()

    # A pong has 0.5 s to arrive: the loop stalling that long under CI load would close the
    # session though the client did answer.
    run_with_server(scenario, ping_interval=0.1, read_timeout=0.5)


def test_oversized_frame_closes_with_1009() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        client = await Client.connect(port)
        # Only the head and a little payload: the session refuses on the announced length,
        # and nothing unread is left to turn the server's close into a reset.
        frame = encode_frame(Opcode.TEXT, b"x" * (128 * 1024 + 1), mask=True)
        client.writer.write(frame[:64])
        message = await client.receive()
        assert message is not None
        assert message.opcode == Opcode.CLOSE
        assert parse_close(message.payload)[0] == 1009
        assert await client.receive() is None
        client.close()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario)


def test_shutdown_closes_every_socket() -> None:
    async def scenario(hub: CableHub, port: int) -> None:
        clients = [await Client.connect(port) for _ in range(3)]
        await eventually(lambda: hub.session_count == 3)
        assert hub.close_all() == 3
        for client in clients:
            message = await client.receive()
            assert message is not None
            assert message.opcode == Opcode.CLOSE
            assert await client.receive() is None
            client.close()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario)


@pytest.mark.parametrize("queue", [4])
def test_slow_reader_overflow_drops_and_counts(queue: int) -> None:
    """A client that never reads: the kernel buffers fill, the transport pauses, the session
    queues `queue` frames and drops the rest."""

    async def scenario(hub: CableHub, port: int) -> None:
        client = await Client.connect(port)
        client.send({"type": "subscribe", "stream": "big"})
        await client.receive_json()
        cast(asyncio.Transport, client.writer.transport).pause_reading()
        payload = json.dumps("x" * 60000).encode()
        for _ in range(400):
            hub.broadcast("big", payload)
            if hub.frames_dropped:
                break
        assert hub.frames_dropped >= 1
        client.writer.transport.abort()
        await eventually(lambda: hub.session_count == 0)

    run_with_server(scenario, max_queue=queue)
