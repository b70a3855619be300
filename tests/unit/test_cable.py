"""Cable pub/sub: pure message shapes, and sessions over an in-memory transport driven by a
manual clock (pings, read deadline, write stall and queue overflow without real time)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any, cast

import pytest

from navigator.extras.cable import (
    PING_FRAME,
    CableHub,
    CableSession,
    SessionState,
    message_payload,
    parse_broadcast,
    subscribed_payload,
)
from navigator.extras.wsframe import FrameParser, Message, Opcode, encode_frame, parse_close


# --- fakes ---------------------------------------------------------------------------------
class ManualLoop:
    """The three loop methods a session uses, with time that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, ManualHandle]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> ManualHandle:
        handle = ManualHandle(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    def call_later(self, delay: float, callback: Callable[..., object],
                   *args: Any) -> ManualHandle:
        return self.call_at(self.now + delay, callback, *args)

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while self._heap and self._heap[0][0] <= target:
            when, _, handle = heapq.heappop(self._heap)
            self.now = max(self.now, when)
            if not handle.cancelled:
                handle.callback(*handle.args)
        self.now = target

    def pending(self) -> int:
        return sum(1 for _, _, h in self._heap if not h.cancelled)


class ManualHandle:
    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class MemoryTransport:
    """Collects written bytes objects; close/abort report connection_lost like a transport."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.session: CableSession | None = None
        self.closed = False
        self.aborted = False
        self.lose_on_close = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True
        if self.lose_on_close and self.session is not None:
            self.session.connection_lost(None)

    def abort(self) -> None:
        self.closed = self.aborted = True
        if self.session is not None:
            self.session.connection_lost(None)

    def messages(self) -> list[Message]:
        return FrameParser(1 << 20, require_mask=False).feed(b"".join(self.writes))


def make_session(hub: CableHub | None = None, loop: ManualLoop | None = None,
                 **options: Any) -> tuple[CableSession, MemoryTransport, ManualLoop, CableHub]:
    hub = hub if hub is not None else CableHub()
    loop = loop if loop is not None else ManualLoop()
    transport = MemoryTransport()
    session = CableSession(cast(asyncio.Transport, transport), hub,
                           cast(asyncio.AbstractEventLoop, loop), **options)
    transport.session = session
    return session, transport, loop, hub


def state(session: CableSession) -> SessionState:
    """Read through a call so mypy does not keep narrowing across session callbacks."""
    return session.state


def client_text(payload: bytes) -> bytes:
    return encode_frame(Opcode.TEXT, payload, mask=True)


def texts(transport: MemoryTransport) -> list[bytes]:
    return [m.payload for m in transport.messages() if m.opcode == Opcode.TEXT]


def close_code(transport: MemoryTransport) -> int | None:
    closes = [m for m in transport.messages() if m.opcode == Opcode.CLOSE]
    assert closes, "no close frame written"
    return parse_close(closes[-1].payload)[0]


# --- pure ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "stream", "data"), [
    (b'{"stream":"chat","data":{"a":1}}', "chat", b'{"a":1}'),
    (b'{"data": "hi", "stream": "s"}', "s", b'"hi"'),
    (b'{"stream":"s"}', "s", b"null"),
    (b'{"stream":"s","data":[1, 2, {"x": null}],"extra":true}', "s", b'[1, 2, {"x": null}]'),
    (b'{"stream":"caf\\u00e9","data":0}', "café", b"0"),
])
def test_parse_broadcast_valid(body: bytes, stream: str, data: bytes) -> None:
    assert parse_broadcast(body) == (stream, data)


@pytest.mark.parametrize("body", [
    b"", b"not json", b'{"stream":', b'{"data":1}', b'{"stream":5,"data":1}', b'{"stream":""}',
    b'["stream","data"]', b'"chat"', b'{"stream":"s","data":}',
])
def test_parse_broadcast_invalid(body: bytes) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_broadcast(body)


def test_payload_shapes() -> None:
    assert message_payload("chat", b'{"a":1}') == (
        b'{"type":"message","stream":"chat","data":{"a":1}}')
    assert message_payload('a"b', b"1") == b'{"type":"message","stream":"a\\"b","data":1}'
    assert subscribed_payload("chat") == b'{"type":"subscribed","stream":"chat"}'
    assert encode_frame(Opcode.TEXT, b'{"type":"ping"}') == PING_FRAME


# --- sessions --------------------------------------------------------------------------------
def test_subscribe_broadcast_shares_one_frame_object() -> None:
    hub = CableHub()
    loop = ManualLoop()
    pairs = [make_session(hub, loop)[:2] for _ in range(3)]
    for session, _ in pairs[:2]:
        session.data_received(client_text(b'{"type":"subscribe","stream":"chat"}'))
    assert texts(pairs[0][1]) == [b'{"type":"subscribed","stream":"chat"}']
    assert hub.subscriber_count("chat") == 2
    assert hub.session_count == 3
    assert hub.broadcast("chat", b'{"n":1}') == 2
    assert pairs[0][1].writes[-1] is pairs[1][1].writes[-1]
    assert texts(pairs[1][1])[-1] == b'{"type":"message","stream":"chat","data":{"n":1}}'
    assert pairs[2][1].writes == []
    assert hub.broadcast("nobody", b"1") == 0
    assert hub.stats() == {"sessions": 3, "streams": 1, "broadcasts": 2, "frames_sent": 2,
                           "frames_dropped": 0}


def test_subscribe_twice_and_unsubscribe() -> None:
    session, transport, _, hub = make_session()
    sub = client_text(b'{"type":"subscribe","stream":"a"}')
    session.data_received(sub + sub + client_text(b'{"type":"subscribe","stream":"b"}'))
    assert len(texts(transport)) == 3  # every subscribe is answered
    assert session.streams == {"a", "b"}
    session.data_received(client_text(b'{"type":"unsubscribe","stream":"a"}'))
    session.data_received(client_text(b'{"type":"unsubscribe","stream":"never"}'))
    assert session.streams == {"b"}
    assert hub.broadcast("a", b"1") == 0
    assert hub.stream_count == 1
    assert hub.broadcast("b", b"1") == 1


@pytest.mark.parametrize("frame", [
    client_text(b"not json"),
    client_text(b'{"type":"subscribe"}'),
    client_text(b'{"type":"subscribe","stream":7}'),
    client_text(b'{"type":"unknown","stream":"x"}'),
    client_text(b"[1,2]"),
    encode_frame(Opcode.BINARY, b'{"type":"subscribe","stream":"x"}', mask=True),
])
def test_unparseable_and_unknown_messages_are_ignored(frame: bytes) -> None:
    session, transport, _, hub = make_session()
    session.data_received(frame)
    assert transport.writes == []
    assert state(session) is SessionState.OPEN
    assert hub.stream_count == 0


def test_subscription_limit() -> None:
    session, transport, _, _ = make_session(max_streams=2)
    for name in (b"a", b"b", b"c"):
        session.data_received(client_text(b'{"type":"subscribe","stream":"' + name + b'"}'))
    assert session.streams == {"a", "b"}
    assert len(texts(transport)) == 2


def test_ping_every_interval_and_silent_client_dropped_at_deadline() -> None:
    session, transport, loop, hub = make_session(ping_interval=30, read_timeout=60)
    session.data_received(client_text(b'{"type":"subscribe","stream":"s"}'))
    loop.advance(29.9)
    assert PING_FRAME not in transport.writes
    loop.advance(0.2)
    assert transport.writes.count(PING_FRAME) == 1
    session.data_received(client_text(b'{"type":"subscribe","stream":"t"}'))  # no extension
    loop.advance(29.8)  # t = 59.9
    assert state(session) is SessionState.OPEN
    assert transport.writes.count(PING_FRAME) == 1
    loop.advance(0.2)  # t = 60.1
    assert state(session) is SessionState.CLOSED
    assert close_code(transport) == 1001
    assert transport.closed
    assert hub.session_count == 0
    assert hub.stream_count == 0
    assert loop.pending() == 0


@pytest.mark.parametrize("pong", [
    client_text(b'{"type":"pong"}'),
    encode_frame(Opcode.PONG, b"", mask=True),
])
def test_pong_extends_read_deadline(pong: bytes) -> None:
    session, transport, loop, _ = make_session(ping_interval=30, read_timeout=60)
    for _ in range(10):  # 300 s of answered pings
        loop.advance(30)
        session.data_received(pong)
    assert state(session) is SessionState.OPEN
    assert transport.writes.count(PING_FRAME) == 10
    loop.advance(60.1)
    assert state(session) is SessionState.CLOSED


def test_ws_ping_answered_with_pong() -> None:
    session, transport, _, _ = make_session()
    session.data_received(encode_frame(Opcode.PING, b"abc", mask=True))
    assert transport.messages() == [Message(Opcode.PONG, b"abc")]


def test_client_close_is_echoed_and_transport_closed() -> None:
    closed: list[int] = []
    session, transport, loop, hub = make_session(on_close=lambda: closed.append(1))
    session.data_received(encode_frame(Opcode.CLOSE, b"\x03\xe8", mask=True))
    assert close_code(transport) == 1000
    assert transport.closed
    assert state(session) is SessionState.CLOSED
    assert closed == [1]
    session.connection_lost(None)  # a second report changes nothing
    assert closed == [1]
    assert loop.pending() == 0
    assert hub.session_count == 0


@pytest.mark.parametrize(("frame", "code"), [
    (encode_frame(Opcode.BINARY, b"x" * 2000, mask=True), 1009),
    (encode_frame(Opcode.TEXT, b'{"type":"pong"}'), 1002),  # unmasked
    (encode_frame(Opcode.TEXT, b"\xff", mask=True), 1007),
])
def test_bad_frames_close_with_code(frame: bytes, code: int) -> None:
    session, transport, _, _ = make_session(max_frame=1024)
    session.data_received(frame)
    assert close_code(transport) == code
    assert state(session) is SessionState.CLOSED


def test_messages_after_close_frame_in_same_read_are_ignored() -> None:
    session, transport, _, hub = make_session()
    session.data_received(encode_frame(Opcode.CLOSE, b"", mask=True)
                          + client_text(b'{"type":"subscribe","stream":"s"}'))
    assert hub.stream_count == 0
    assert texts(transport) == []


def test_queue_while_paused_then_flush_in_order(caplog: pytest.LogCaptureFixture) -> None:
    hub = CableHub()
    session, transport, loop, _ = make_session(hub, max_queue=3, write_timeout=10)
    session.data_received(client_text(b'{"type":"subscribe","stream":"s"}'))
    transport.writes.clear()
    session.pause_writing()
    with caplog.at_level(logging.WARNING, logger="navigator.cable"):
        results = [hub.broadcast("s", str(i).encode()) for i in range(6)]
    assert results == [1, 1, 1, 0, 0, 0]
    assert hub.frames_dropped == 3
    assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
    assert transport.writes == []
    loop.advance(9.9)
    session.resume_writing()
    assert [m.payload[-2:] for m in transport.messages()] == [b"0}", b"1}", b"2}"]
    loop.advance(10)  # the stall timer was cancelled; the tick timer is back
    assert state(session) is SessionState.OPEN
    assert loop.pending() == 1


def test_write_stalled_too_long_aborts() -> None:
    session, transport, loop, hub = make_session(write_timeout=10)
    session.pause_writing()
    loop.advance(9.9)
    assert state(session) is SessionState.OPEN
    loop.advance(0.2)
    assert transport.aborted
    assert state(session) is SessionState.CLOSED
    assert hub.session_count == 0


def test_pause_during_ping_write_does_not_double_arm() -> None:
    session, transport, loop, _ = make_session(ping_interval=1, read_timeout=60, write_timeout=5)
    original_write = transport.write

    def pausing_write(data: bytes) -> None:
        original_write(data)
        session.pause_writing()

    transport.write = pausing_write  # type: ignore[method-assign]
    loop.advance(1)
    assert loop.pending() == 1  # only the write-stall timer
    transport.write = original_write  # type: ignore[method-assign]
    session.resume_writing()
    assert loop.pending() == 1  # only the tick timer


def test_close_all_closes_every_session() -> None:
    hub = CableHub()
    loop = ManualLoop()
    sessions = [make_session(hub, loop) for _ in range(4)]
    sessions[0][0].data_received(client_text(b'{"type":"subscribe","stream":"s"}'))
    assert hub.close_all() == 4
    for session, transport, _, _ in sessions:
        assert close_code(transport) == 1001
        assert state(session) is SessionState.CLOSED
    assert hub.session_count == 0
    assert hub.stream_count == 0
    assert loop.pending() == 0


def test_close_guard_aborts_when_close_never_completes() -> None:
    session, transport, loop, _ = make_session(write_timeout=10)
    transport.lose_on_close = False  # peer does not read: close() cannot flush
    session.close()
    assert state(session) is SessionState.CLOSING
    assert session.send_frame(b"x") is False
    loop.advance(10.1)
    assert transport.aborted
    assert state(session) is SessionState.CLOSED


def test_close_while_paused_aborts() -> None:
    session, transport, _, _ = make_session()
    session.pause_writing()
    session.close()
    assert transport.aborted
    assert state(session) is SessionState.CLOSED
