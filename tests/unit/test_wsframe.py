"""RFC 6455 framing: handshake, encoding, the incremental parser and its error table."""

from __future__ import annotations

import struct

import pytest

from navigator.extras.wsframe import (
    CloseCode,
    FrameParser,
    Message,
    Opcode,
    WebSocketError,
    accept_key,
    apply_mask,
    close_payload,
    encode_close,
    encode_frame,
    handshake_response,
    is_valid_key,
    parse_close,
)

KEY = b"\x37\xfa\x21\x3d"  # the masking key of RFC 6455 §5.7


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, mask=True, fin=fin, mask_key=KEY)


# --- handshake ---------------------------------------------------------------------------
def test_accept_key_rfc_example() -> None:
    # RFC 6455 §1.3
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_response_bytes() -> None:
    assert handshake_response("dGhlIHNhbXBsZSBub25jZQ==") == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    with_protocol = handshake_response("dGhlIHNhbXBsZSBub25jZQ==", "chat")
    assert with_protocol.endswith(b"Sec-WebSocket-Protocol: chat\r\n\r\n")


@pytest.mark.parametrize(("key", "valid"), [
    ("dGhlIHNhbXBsZSBub25jZQ==", True),
    (" dGhlIHNhbXBsZSBub25jZQ== ", True),
    ("dGhlIHNhbXBsZSBub25jZQ", False),
    ("not base64 at all!!!!!!!", False),
    ("", False),
    ("dGhlIHNhbXBsZSBub25jZXh4eA==", False),  # 19 bytes
])
def test_is_valid_key(key: str, valid: bool) -> None:
    assert is_valid_key(key) is valid


# --- encoding (RFC 6455 §5.7 examples) -----------------------------------------------------
@pytest.mark.parametrize(("frame", "expected"), [
    (encode_frame(Opcode.TEXT, b"Hello"), bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])),
    (masked(Opcode.TEXT, b"Hello"),
     bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])),
    (encode_frame(Opcode.TEXT, b"Hel", fin=False), bytes([0x01, 0x03, 0x48, 0x65, 0x6C])),
    (encode_frame(Opcode.CONTINUATION, b"lo"), bytes([0x80, 0x02, 0x6C, 0x6F])),
    (encode_frame(Opcode.PING, b"Hello"), bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])),
    (masked(Opcode.PONG, b"Hello"),
     bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])),
    (encode_frame(Opcode.BINARY, b"\0" * 256)[:4], bytes([0x82, 0x7E, 0x01, 0x00])),
    (encode_frame(Opcode.BINARY, b"\0" * 65536)[:10],
     bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])),
    (encode_frame(Opcode.BINARY, b"\0" * 125)[:2], bytes([0x82, 125])),
    (encode_frame(Opcode.BINARY, b"\0" * 65535)[:4], bytes([0x82, 0x7E, 0xFF, 0xFF])),
])
def test_encode_frame(frame: bytes, expected: bytes) -> None:
    assert frame == expected


def test_mask_roundtrip_and_random_key() -> None:
    payload = bytes(range(256)) * 3 + b"xyz"
    assert apply_mask(apply_mask(payload, KEY), KEY) == payload
    assert apply_mask(b"", KEY) == b""
    frame = encode_frame(Opcode.BINARY, payload, mask=True)
    assert FrameParser(4096).feed(frame) == [Message(Opcode.BINARY, payload)]
    with pytest.raises(ValueError, match="4 bytes"):
        encode_frame(Opcode.TEXT, b"x", mask=True, mask_key=b"12")


# --- parsing: valid input ------------------------------------------------------------------
@pytest.mark.parametrize(("wire", "expected"), [
    ([masked(Opcode.TEXT, b"Hello")], [Message(Opcode.TEXT, b"Hello")]),
    ([masked(Opcode.TEXT, b"Hel", fin=False), masked(Opcode.CONTINUATION, b"lo")],
     [Message(Opcode.TEXT, b"Hello")]),
    # a control frame between fragments (§5.4) is delivered first
    ([masked(Opcode.TEXT, b"Hel", fin=False), masked(Opcode.PING, b"p"),
      masked(Opcode.CONTINUATION, b"lo")],
     [Message(Opcode.PING, b"p"), Message(Opcode.TEXT, b"Hello")]),
    ([masked(Opcode.BINARY, b"\xff\x00", fin=False), masked(Opcode.CONTINUATION, b"",
                                                            fin=False),
      masked(Opcode.CONTINUATION, b"\x01")], [Message(Opcode.BINARY, b"\xff\x00\x01")]),
    ([masked(Opcode.PONG, b"Hello")], [Message(Opcode.PONG, b"Hello")]),
    ([masked(Opcode.CLOSE, b"")], [Message(Opcode.CLOSE, b"")]),
    ([masked(Opcode.CLOSE, struct.pack("!H", 1000) + b"bye")],
     [Message(Opcode.CLOSE, b"\x03\xe8bye")]),
    ([masked(Opcode.CLOSE, struct.pack("!H", 4001))], [Message(Opcode.CLOSE, b"\x0f\xa1")]),
    ([masked(Opcode.TEXT, b"")], [Message(Opcode.TEXT, b"")]),
    ([masked(Opcode.TEXT, "héllo €".encode())], [Message(Opcode.TEXT, "héllo €".encode())]),
    ([masked(Opcode.TEXT, b"a" * 300)], [Message(Opcode.TEXT, b"a" * 300)]),
    ([masked(Opcode.BINARY, b"b" * 70000)], [Message(Opcode.BINARY, b"b" * 70000)]),
    # UTF-8 split across fragments is fine once the message is complete
    ([masked(Opcode.TEXT, "€".encode()[:1], fin=False),
      masked(Opcode.CONTINUATION, "€".encode()[1:])], [Message(Opcode.TEXT, "€".encode())]),
])
def test_parse_valid(wire: list[bytes], expected: list[Message]) -> None:
    data = b"".join(wire)
    assert FrameParser(128 * 1024).feed(data) == expected
    # byte by byte gives the same messages
    parser = FrameParser(128 * 1024)
    got: list[Message] = []
    for i in range(len(data)):
        got.extend(parser.feed(data[i:i + 1]))
    assert got == expected


def test_unmasked_allowed_when_not_required() -> None:
    parser = FrameParser(1024, require_mask=False)
    assert parser.feed(bytes([0x81, 0x05]) + b"Hello") == [Message(Opcode.TEXT, b"Hello")]
    assert Message(Opcode.TEXT, b"Hello").text() == "Hello"


def test_partial_frames_keep_no_buffer_between_messages() -> None:
    parser = FrameParser(1024)
    frame = masked(Opcode.TEXT, b"abc")
    assert parser.feed(frame[:3]) == []
    assert parser.feed(frame[3:] + frame) == [Message(Opcode.TEXT, b"abc")] * 2
    assert parser._buffer == b""


# --- parsing: malformed input --------------------------------------------------------------
def _frame_with_length(first: int, length_bytes: bytes) -> bytes:
    return bytes([first]) + length_bytes


MALFORMED: list[tuple[str, bytes, int]] = [
    ("unmasked client frame", encode_frame(Opcode.TEXT, b"Hello"), CloseCode.PROTOCOL_ERROR),
    ("rsv1 set", bytes([0xC1, 0x80]) + KEY, CloseCode.PROTOCOL_ERROR),
    ("rsv3 set", bytes([0x91, 0x80]) + KEY, CloseCode.PROTOCOL_ERROR),
    ("opcode 3", bytes([0x83, 0x80]) + KEY, CloseCode.PROTOCOL_ERROR),
    ("opcode 0xB", bytes([0x8B, 0x80]) + KEY, CloseCode.PROTOCOL_ERROR),
    ("fragmented ping", masked(Opcode.PING, b"x", fin=False), CloseCode.PROTOCOL_ERROR),
    ("ping over 125", masked(Opcode.PING, b"x" * 126), CloseCode.PROTOCOL_ERROR),
    ("close over 125", masked(Opcode.CLOSE, b"\x03\xe8" + b"x" * 124),
     CloseCode.PROTOCOL_ERROR),
    ("continuation first", masked(Opcode.CONTINUATION, b"x"), CloseCode.PROTOCOL_ERROR),
    ("text inside fragments", masked(Opcode.TEXT, b"a", fin=False) + masked(Opcode.TEXT, b"b"),
     CloseCode.PROTOCOL_ERROR),
    ("invalid utf-8", masked(Opcode.TEXT, b"\xff\xfe"), CloseCode.INVALID_DATA),
    ("truncated utf-8 at end", masked(Opcode.TEXT, "€".encode()[:2]), CloseCode.INVALID_DATA),
    ("invalid utf-8 across fragments",
     masked(Opcode.TEXT, b"ok", fin=False) + masked(Opcode.CONTINUATION, b"\xc3\x28"),
     CloseCode.INVALID_DATA),
    ("close 1-byte payload", masked(Opcode.CLOSE, b"\x03"), CloseCode.PROTOCOL_ERROR),
    ("close code 999", masked(Opcode.CLOSE, struct.pack("!H", 999)), CloseCode.PROTOCOL_ERROR),
    ("close code 1005", masked(Opcode.CLOSE, struct.pack("!H", 1005)),
     CloseCode.PROTOCOL_ERROR),
    ("close code 1006", masked(Opcode.CLOSE, struct.pack("!H", 1006)),
     CloseCode.PROTOCOL_ERROR),
    ("close code 2000", masked(Opcode.CLOSE, struct.pack("!H", 2000)),
     CloseCode.PROTOCOL_ERROR),
    ("close code 5000", masked(Opcode.CLOSE, struct.pack("!H", 5000)),
     CloseCode.PROTOCOL_ERROR),
    ("close reason not utf-8", masked(Opcode.CLOSE, b"\x03\xe8\xff"), CloseCode.INVALID_DATA),
    ("frame over max", masked(Opcode.BINARY, b"x" * 1025), CloseCode.MESSAGE_TOO_BIG),
    ("header claims over max", _frame_with_length(0x82, bytes([0xFE, 0x10, 0x00])),
     CloseCode.MESSAGE_TOO_BIG),
    ("64-bit length top bit", _frame_with_length(0x82, bytes([0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0])),
     CloseCode.PROTOCOL_ERROR),
    ("fragments over max", masked(Opcode.BINARY, b"x" * 600, fin=False)
     + masked(Opcode.CONTINUATION, b"y" * 600), CloseCode.MESSAGE_TOO_BIG),
]


@pytest.mark.parametrize(("wire", "code"), [(w, c) for _, w, c in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_parse_malformed(wire: bytes, code: int) -> None:
    parser = FrameParser(1024)
    with pytest.raises(WebSocketError) as info:
        parser.feed(wire)
    assert info.value.close_code == code
    assert str(code) in str(info.value)
    with pytest.raises(WebSocketError):  # a failed parser stays failed
        parser.feed(masked(Opcode.TEXT, b"ok"))


# --- close frames ----------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "reason", "payload"), [
    (1000, "", b"\x03\xe8"),
    (1001, "bye", b"\x03\xe9bye"),
    (None, "", b""),
    (1000, "é" * 100, b"\x03\xe8" + ("é" * 61).encode()),  # cut at 123 bytes, not mid-char
])
def test_close_payload(code: int | None, reason: str, payload: bytes) -> None:
    assert close_payload(code, reason) == payload
    assert len(payload) <= 125
    parsed_code, parsed_reason = parse_close(payload)
    assert parsed_code == code
    assert reason.startswith(parsed_reason)


def test_encode_close_is_unmasked_close_frame() -> None:
    assert encode_close(1000, "x") == bytes([0x88, 0x03, 0x03, 0xE8]) + b"x"
