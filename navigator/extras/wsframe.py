"""WebSocket framing (RFC 6455) for the built-in pub/sub endpoint.

Room: PURE. Bytes in, frames and messages out; no asyncio, sockets or clocks. `cable` drives
it; the client protocol only uses `handshake_response` to answer the upgrade.

Invariants:
- frames from a client must be masked (RFC 6455 §5.1); frames we encode are unmasked unless
  `mask=True` is asked for (tests acting as a client);
- reserved bits must be zero (no extensions are negotiated, §5.2); unknown opcodes fail;
- control frames are final and carry at most 125 bytes (§5.5); they may arrive between the
  fragments of a data message (§5.4);
- a data frame, and a reassembled message, never exceed `max_frame` bytes (else close 1009);
  nothing is buffered beyond one frame header plus that bound;
- text messages are valid UTF-8 once complete (§8.1, else close 1007);
- every violation raises `WebSocketError(close_code, reason)`; after that the parser is dead
  and the caller closes the connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """RFC 6455 §7.4.1."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent on the wire
    ABNORMAL = 1006  # never sent on the wire
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


_DATA_OPCODES: Final = frozenset({Opcode.TEXT, Opcode.BINARY})
_CONTROL_OPCODES: Final = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
_KNOWN_OPCODES: Final = frozenset(int(op) for op in Opcode)
_SENDABLE_CLOSE_CODES: Final = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                          1012, 1013, 1014})
MAX_CONTROL_PAYLOAD: Final = 125


class WebSocketError(Exception):
    """A framing violation; the connection must be closed with `close_code`."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(close_code, reason)
        self.close_code = close_code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.close_code} {self.reason}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One wire frame, payload already unmasked."""

    opcode: int
    payload: bytes
    fin: bool = True


@dataclass(frozen=True, slots=True)
class Message:
    """What a reader acts on: a complete data message (fragments joined, text checked to be
    UTF-8) or a single control frame (ping, pong, close)."""

    opcode: int
    payload: bytes

    def text(self) -> str:
        return self.payload.decode("utf-8")


# --- handshake (RFC 6455 §4.2.2) -----------------------------------------------------------
def accept_key(sec_websocket_key: str) -> str:
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key."""
    digest = hashlib.sha1((sec_websocket_key.strip() + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_key(sec_websocket_key: str) -> bool:
    """A client key is the base64 encoding of 16 bytes (§4.1)."""
    key = sec_websocket_key.strip()
    if len(key) != 24:
        return False
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def handshake_response(key: str, protocol: str | None = None) -> bytes:
    """The complete `101 Switching Protocols` answer to a valid upgrade request."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- encoding ------------------------------------------------------------------------------
def apply_mask(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte masking key (§5.3); the same call unmasks.

    One big-integer XOR instead of a per-byte loop: linear time, a few µs per KiB.
    """
    n = len(payload)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little")


def encode_frame(opcode: int, payload: bytes, *, mask: bool = False, fin: bool = True,
                 mask_key: bytes | None = None) -> bytes:
    """One frame. Servers send unmasked frames (§5.1); `mask`/`mask_key` are for clients."""
    first = (0x80 if fin else 0) | (opcode & 0x0F)
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, mask_bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    if len(key) != 4:
        raise ValueError("mask key must be 4 bytes")
    return head + key + apply_mask(payload, key)


def close_payload(code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
    """Body of a close frame: 2-byte code then UTF-8 reason, cut to fit 125 bytes (§5.5.1)."""
    if code is None:
        return b""
    raw = reason.encode("utf-8")[:MAX_CONTROL_PAYLOAD - 2]
    while raw:  # do not cut inside a character
        try:
            raw.decode("utf-8")
            break
        except UnicodeDecodeError:
            raw = raw[:-1]
    return struct.pack("!H", code) + raw


def encode_close(code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
    return encode_frame(Opcode.CLOSE, close_payload(code, reason))


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """Code and reason of a received close frame (§5.5.1, §7.4)."""
    if not payload:
        return None, ""
    if len(payload) == 1:
        raise WebSocketError(CloseCode.PROTOCOL_ERROR, "close frame with 1-byte payload")
    code = struct.unpack("!H", payload[:2])[0]
    if code not in _SENDABLE_CLOSE_CODES and not 3000 <= code <= 4999:
        raise WebSocketError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketError(CloseCode.INVALID_DATA, "close reason is not UTF-8") from None
    return code, reason


# --- decoding ------------------------------------------------------------------------------
class FrameParser:
    """Incremental reader of client frames: `feed()` returns the messages completed so far.

    Partial input is kept as one `bytes` (empty between messages, so an idle connection holds
    no buffer); fragments of a data message are collected until the final frame.
    """

    __slots__ = ("_buffer", "_failed", "_fragment_opcode", "_fragment_size", "_fragments",
                 "max_frame", "require_mask")

    def __init__(self, max_frame: int, *, require_mask: bool = True) -> None:
        self.max_frame = max_frame
        self.require_mask = require_mask
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._failed = False

    def feed(self, data: bytes) -> list[Message]:
        if self._failed:
            raise WebSocketError(CloseCode.PROTOCOL_ERROR, "parser already failed")
        buffer = self._buffer + data if self._buffer else bytes(data)
        messages: list[Message] = []
        pos = 0
        try:
            while True:
                frame, pos = self._next_frame(buffer, pos)
                if frame is None:
                    break
                message = self._assemble(frame)
                if message is not None:
                    messages.append(message)
        except WebSocketError:
            self._failed = True
            self._buffer = b""
            self._fragments = None
            raise
        self._buffer = buffer[pos:] if pos < len(buffer) else b""
        return messages

    def _next_frame(self, buf: bytes, pos: int) -> tuple[Frame | None, int]:
        available = len(buf) - pos
        if available < 2:
            return None, pos
        b0, b1 = buf[pos], buf[pos + 1]
        if b0 & 0x70:
            raise WebSocketError(CloseCode.PROTOCOL_ERROR, "reserved bits set")
        opcode = b0 & 0x0F
        if opcode not in _KNOWN_OPCODES:
            raise WebSocketError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
        fin = bool(b0 & 0x80)
        masked = bool(b1 & 0x80)
        if self.require_mask and not masked:
            raise WebSocketError(CloseCode.PROTOCOL_ERROR, "client frame is not masked")
        length = b1 & 0x7F
        head = 2
        if opcode in _CONTROL_OPCODES:
            if not fin:
                raise WebSocketError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise WebSocketError(CloseCode.PROTOCOL_ERROR, "control frame too long")
        if length == 126:
            if available < 4:
                return None, pos
            length = struct.unpack_from("!H", buf, pos + 2)[0]
            head = 4
        elif length == 127:
            if available < 10:
                return None, pos
            length = struct.unpack_from("!Q", buf, pos + 2)[0]
            if length >> 63:
                raise WebSocketError(CloseCode.PROTOCOL_ERROR, "64-bit length has top bit set")
            head = 10
        if length > self.max_frame:
            raise WebSocketError(CloseCode.MESSAGE_TOO_BIG, f"frame of {length} bytes")
        key_len = 4 if masked else 0
        end = pos + head + key_len + length
        if end > len(buf):
            return None, pos
        start = pos + head + key_len
        payload = buf[start:end]
        if masked:
            payload = apply_mask(payload, buf[pos + head:start])
        return Frame(opcode, payload, fin), end

    def _assemble(self, frame: Frame) -> Message | None:
        opcode = frame.opcode
        if opcode in _CONTROL_OPCODES:
            if opcode == Opcode.CLOSE:
                parse_close(frame.payload)  # validates code and reason
            return Message(opcode, frame.payload)
        if opcode == Opcode.CONTINUATION:
            if self._fragments is None:
                raise WebSocketError(CloseCode.PROTOCOL_ERROR, "continuation without a start")
            self._fragment_size += len(frame.payload)
            if self._fragment_size > self.max_frame:
                raise WebSocketError(CloseCode.MESSAGE_TOO_BIG,
                                     f"message of over {self.max_frame} bytes")
            self._fragments.append(frame.payload)
            if not frame.fin:
                return None
            payload = b"".join(self._fragments)
            opcode = self._fragment_opcode
            self._fragments = None
            self._fragment_size = 0
        else:
            if self._fragments is not None:
                raise WebSocketError(CloseCode.PROTOCOL_ERROR,
                                     "new data frame inside a fragmented message")
            if not frame.fin:
                self._fragments = [frame.payload]
                self._fragment_opcode = opcode
                self._fragment_size = len(frame.payload)
                return None
            payload = frame.payload
        if opcode == Opcode.TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise WebSocketError(CloseCode.INVALID_DATA, "text is not UTF-8") from None
        return Message(opcode, payload)
