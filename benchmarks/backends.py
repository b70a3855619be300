"""Small Python backends for the scenarios nginx cannot serve: an upload sink and a
WebSocket echo server.

Room: benchmarks, standalone script (`python benchmarks/backends.py`), run as a subprocess
pinned to the load-generator core. Binds two ephemeral loopback ports and prints
`ready sink=<port> ws=<port>` once both listen. Imports nothing from the project.

- sink: reads an HTTP/1.1 request body (Content-Length or chunked) to the end, discards it
  and answers `200` with the byte count. Keep-alive.
- ws: answers the RFC 6455 handshake and echoes every data frame (unmasked), answers close.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
import sys

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
HEAD_LIMIT = 64 * 1024


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw[:-4].split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def drain_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> int:
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await _skip_trailers(reader)
                return total
            total += size
            await _discard(reader, size)
            await reader.readexactly(2)
    length = int(headers.get(b"content-length", b"0"))
    await _discard(reader, length)
    return length


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass


async def _discard(reader: asyncio.StreamReader, count: int) -> None:
    while count > 0:
        chunk = await reader.read(min(count, 1 << 20))
        if not chunk:
            raise ConnectionError("body cut short")
        count -= len(chunk)


async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
        while (head := await read_head(reader)) is not None:
            _, headers = head
            if headers.get(b"expect", b"").lower() == b"100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            received = str(await drain_body(reader, headers)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(received)).encode() + b"\r\n\r\n" + received)
            await writer.drain()
    writer.close()


async def websocket_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        head = await read_head(reader)
        if head is None:
            return
        key = head[1].get(b"sec-websocket-key", b"")
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            first, second = await reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            mask = await reader.readexactly(4) if second & 0x80 else b""
            payload = await reader.readexactly(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            writer.write(frame(opcode, payload))
            if opcode == 0x8:  # close: echo it and stop
                await writer.drain()
                break
    writer.close()


def frame(opcode: int, payload: bytes, mask: bytes = b"") -> bytes:
    """One final frame; masked when `mask` (4 bytes) is given, as clients must."""
    mask_bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, mask_bit | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, mask_bit | 127, size)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


async def serve() -> None:
    sink_server = await asyncio.start_server(sink, "127.0.0.1", 0, limit=HEAD_LIMIT)
    ws_server = await asyncio.start_server(websocket_echo, "127.0.0.1", 0, limit=HEAD_LIMIT)
    sink_port = sink_server.sockets[0].getsockname()[1]
    ws_port = ws_server.sockets[0].getsockname()[1]
    print(f"ready sink={sink_port} ws={ws_port}", flush=True)
    await asyncio.gather(sink_server.serve_forever(), ws_server.serve_forever())


def main() -> None:
    try:
        import uvloop  # optional speed-up
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
    sys.exit(0)
