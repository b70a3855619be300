"""Built-in WebSocket pub/sub ("cable", reference section 5.3).

Room: I/O (timers and transport writes), no sockets of its own. The client protocol answers
the upgrade with `wsframe.handshake_response`, then creates a `CableSession` on its transport
and forwards `data_received`, `connection_lost`, `pause_writing` and `resume_writing` to it.
`CableHub` maps stream names to sessions; the broadcast endpoint calls `parse_broadcast` (pure)
then `hub.broadcast`.

Invariants:
- a broadcast encodes its text frame once; every subscriber gets the same bytes object;
- a session owns exactly one timer at a time (ping/read deadline while open, then a close
  guard): no task per socket, so an idle socket costs a few hundred bytes;
- the read deadline is pushed out only by a JSON `pong` message or a WebSocket pong frame;
- while the transport is paused, at most `max_queue` frames wait; more are dropped with one
  warning per stall; a stall longer than `write_timeout` aborts the connection;
- a session is in the hub from construction until `connection_lost`; `close_all` closes every
  session, subscribed or not.
Must not touch: HTTP parsing, routing, the server state object.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Final

import msgspec

from navigator.extras.wsframe import (
    CloseCode,
    FrameParser,
    Message,
    Opcode,
    WebSocketError,
    encode_close,
    encode_frame,
    parse_close,
)

log = logging.getLogger("navigator.cable")

PING_INTERVAL: Final = 30.0
READ_TIMEOUT: Final = 60.0
WRITE_TIMEOUT: Final = 10.0
MAX_FRAME: Final = 128 * 1024
MAX_QUEUE: Final = 256
MAX_STREAMS: Final = 1024  # our limit on subscriptions per socket (not in the reference)

PING_FRAME: Final = encode_frame(Opcode.TEXT, b'{"type":"ping"}')


# --- pure: message shapes --------------------------------------------------------------------
class _BroadcastBody(msgspec.Struct):
    stream: str
    data: msgspec.Raw = msgspec.Raw(b"null")


class _ClientMessage(msgspec.Struct):
    type: str = ""
    stream: str = ""


_broadcast_decoder: Final = msgspec.json.Decoder(_BroadcastBody)
_client_decoder: Final = msgspec.json.Decoder(_ClientMessage)
_encode_json: Final = msgspec.json.encode


def parse_broadcast(body: bytes) -> tuple[str, bytes]:
    """`{"stream": S, "data": any}` → (S, raw JSON of data). ValueError → answer 400."""
    try:
        parsed = _broadcast_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid broadcast: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not parsed.stream:
        raise ValueError("invalid broadcast: stream is empty")
    return parsed.stream, bytes(parsed.data)


def message_payload(stream: str, data_json: bytes) -> bytes:
    """`{"type":"message","stream":S,"data":D}` with D inserted verbatim (already JSON)."""
    return b'{"type":"message","stream":' + _encode_json(stream) + b',"data":' + data_json + b"}"


def subscribed_payload(stream: str) -> bytes:
    return b'{"type":"subscribed","stream":' + _encode_json(stream) + b"}"


# --- hub -----------------------------------------------------------------------------------
class CableHub:
    """Stream name → subscribed sessions, plus counters for metrics."""

    __slots__ = ("_sessions", "_streams", "broadcasts", "frames_dropped", "frames_sent")

    def __init__(self) -> None:
        self._streams: dict[str, set[CableSession]] = {}
        self._sessions: set[CableSession] = set()
        self.broadcasts = 0
        self.frames_sent = 0  # broadcast frames written or queued
        self.frames_dropped = 0  # broadcast frames dropped by full queues

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    def subscriber_count(self, stream: str) -> int:
        return len(self._streams.get(stream, ()))

    def stats(self) -> dict[str, int]:
        return {"sessions": len(self._sessions), "streams": len(self._streams),
                "broadcasts": self.broadcasts, "frames_sent": self.frames_sent,
                "frames_dropped": self.frames_dropped}

    def add(self, session: CableSession) -> None:
        self._sessions.add(session)

    def subscribe(self, session: CableSession, stream: str) -> None:
        subscribers = self._streams.get(stream)
        if subscribers is None:
            subscribers = self._streams[stream] = set()
        subscribers.add(session)

    def unsubscribe(self, session: CableSession, stream: str) -> None:
        subscribers = self._streams.get(stream)
        if subscribers is not None:
            subscribers.discard(session)
            if not subscribers:
                del self._streams[stream]

    def remove(self, session: CableSession, streams: set[str] | None) -> None:
        self._sessions.discard(session)
        for stream in streams or ():
            self.unsubscribe(session, stream)

    def broadcast(self, stream: str, data_json: bytes) -> int:
        """Send to every subscriber of `stream`; returns how many took the frame."""
        self.broadcasts += 1
        subscribers = self._streams.get(stream)
        if not subscribers:
            return 0
        frame = encode_frame(Opcode.TEXT, message_payload(stream, data_json))
        delivered = 0
        for session in tuple(subscribers):  # a write may close a session synchronously
            if session.send_frame(frame):
                delivered += 1
        self.frames_sent += delivered
        self.frames_dropped += len(subscribers) - delivered
        return delivered

    def close_all(self, code: int = CloseCode.GOING_AWAY, reason: str = "server shutdown") -> int:
        """Close every socket (graceful shutdown); returns how many were open."""
        sessions = tuple(self._sessions)
        for session in sessions:
            session.close(code, reason)
        return len(sessions)


# --- session -------------------------------------------------------------------------------
class SessionState(Enum):
    OPEN = "open"
    CLOSING = "closing"  # close frame written, waiting for the transport to go away
    CLOSED = "closed"


class CableSession:
    """One upgraded client socket. All methods are loop callbacks; none may raise."""

    __slots__ = ("_deadline", "_dropping", "_hub", "_loop", "_next_ping", "_on_close",
                 "_parser", "_paused", "_queue", "_streams", "_timer", "_transport",
                 "max_queue", "max_streams", "ping_interval", "read_timeout", "state",
                 "write_timeout")

    def __init__(self, transport: asyncio.Transport, hub: CableHub,
                 loop: asyncio.AbstractEventLoop, *, ping_interval: float = PING_INTERVAL,
                 read_timeout: float = READ_TIMEOUT, write_timeout: float = WRITE_TIMEOUT,
                 max_frame: int = MAX_FRAME, max_queue: int = MAX_QUEUE,
                 max_streams: int = MAX_STREAMS,
                 on_close: Callable[[], None] | None = None) -> None:
        self._transport = transport
        self._hub = hub
        self._loop = loop
        self.ping_interval = ping_interval
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_queue = max_queue
        self.max_streams = max_streams
        self._on_close = on_close
        self._parser = FrameParser(max_frame)
        self._streams: set[str] | None = None
        self._queue: deque[bytes] | None = None
        self._paused = False
        self._dropping = False
        self.state = SessionState.OPEN
        now = loop.time()
        self._deadline = now + read_timeout
        self._next_ping = now + ping_interval
        self._timer: asyncio.TimerHandle | None = None
        hub.add(self)
        self._arm_tick()

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._streams or ())

    # --- transport callbacks (forwarded by the client protocol) ------------------------------
    def data_received(self, data: bytes) -> None:
        if self.state is not SessionState.OPEN:
            return
        try:
            messages = self._parser.feed(data)
        except WebSocketError as exc:
            log.info("cable: closing socket: %s", exc)
            self.close(exc.close_code, exc.reason)
            return
        for message in messages:
            if self.state is not SessionState.OPEN:
                return
            self._handle(message)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
        self._cancel_timer()
        self._queue = None
        self._hub.remove(self, self._streams)
        self._streams = None
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            try:
                on_close()
            except Exception:
                log.exception("cable: on_close callback failed")

    def pause_writing(self) -> None:
        if self._paused or self.state is SessionState.CLOSED:
            return
        self._paused = True
        if self.state is SessionState.OPEN:
            self._cancel_timer()
            self._timer = self._loop.call_later(self.write_timeout, self._write_stalled)

    def resume_writing(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._dropping = False
        if self.state is not SessionState.OPEN:
            return
        self._cancel_timer()
        queue = self._queue
        while queue and not self._paused:
            self._transport.write(queue.popleft())
        if not self._paused:
            self._arm_tick()

    # --- sending ---------------------------------------------------------------------------
    def send_frame(self, frame: bytes) -> bool:
        """Write (or queue while paused) one encoded frame; False if closed or dropped."""
        if self.state is not SessionState.OPEN:
            return False
        if not self._paused:
            self._transport.write(frame)
            return True
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.max_queue:
            if not self._dropping:
                self._dropping = True
                log.warning("cable: outbound queue full (%d messages); dropping messages",
                            self.max_queue)
            return False
        queue.append(frame)
        return True

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Send a close frame and close the transport (abort if it cannot drain)."""
        if self.state is not SessionState.OPEN:
            return
        self.state = SessionState.CLOSING
        self._cancel_timer()
        self._queue = None
        transport = self._transport
        if self._paused:
            transport.abort()
            return
        try:
            transport.write(encode_close(code, reason))
            transport.close()
        except Exception:  # transport already broken
            transport.abort()
            return
        # close() waits for the buffer to drain; a reader that never reads would hold it.
        if self.state is SessionState.CLOSING:
            self._timer = self._loop.call_later(self.write_timeout, self._close_stalled)

    # --- inbound ---------------------------------------------------------------------------
    def _handle(self, message: Message) -> None:
        opcode = message.opcode
        if opcode == Opcode.TEXT:
            self._handle_json(message.payload)
        elif opcode == Opcode.PONG:
            self._deadline = self._loop.time() + self.read_timeout
        elif opcode == Opcode.PING:
            self.send_frame(encode_frame(Opcode.PONG, message.payload))
        elif opcode == Opcode.CLOSE:
            code, _reason = parse_close(message.payload)
            self.close(CloseCode.NORMAL if code is None else code)
        # binary messages carry nothing for us: ignored like unparseable text

    def _handle_json(self, payload: bytes) -> None:
        try:
            msg = _client_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return  # unparseable frames are ignored (reference 5.3)
        kind = msg.type
        if kind == "pong":
            self._deadline = self._loop.time() + self.read_timeout
        elif kind == "subscribe" and msg.stream:
            streams = self._streams
            if streams is None:
                streams = self._streams = set()
            if msg.stream not in streams:
                if len(streams) >= self.max_streams:
                    log.info("cable: subscription limit (%d) reached", self.max_streams)
                    return
                streams.add(msg.stream)
                self._hub.subscribe(self, msg.stream)
            self.send_frame(encode_frame(Opcode.TEXT, subscribed_payload(msg.stream)))
        elif kind == "unsubscribe" and self._streams and msg.stream in self._streams:
            self._streams.discard(msg.stream)
            self._hub.unsubscribe(self, msg.stream)

    # --- timers ----------------------------------------------------------------------------
    def _arm_tick(self) -> None:
        when = min(self._next_ping, self._deadline)
        self._timer = self._loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.state is not SessionState.OPEN:
            return
        now = self._loop.time()
        if now >= self._deadline:
            log.info("cable: no pong within %.0f s; closing", self.read_timeout)
            self.close(CloseCode.GOING_AWAY, "ping timeout")
            return
        if now >= self._next_ping:
            self._next_ping = now + self.ping_interval
            self.send_frame(PING_FRAME)
        if self.state is SessionState.OPEN and self._timer is None and not self._paused:
            self._arm_tick()

    def _write_stalled(self) -> None:
        self._timer = None
        if self.state is SessionState.OPEN and self._paused:
            log.warning("cable: write blocked for over %.0f s; closing", self.write_timeout)
            self.state = SessionState.CLOSING
            self._queue = None
            self._transport.abort()

    def _close_stalled(self) -> None:
        self._timer = None
        if self.state is SessionState.CLOSING:
            self._transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
