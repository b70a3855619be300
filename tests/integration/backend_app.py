"""A small HTTP/1.1 backend for proxy tests, run as a real tenant process (stdlib only).

Endpoints (any prefix; the last path segment picks the behaviour):
- `.../echo`          JSON of method, target, headers, body length and sha256
- `.../bytes?n=N`     N bytes with Content-Length (streamed in 64 KiB writes)
- `.../chunked?n=N`   N bytes as a chunked response
- `.../close?n=N`     N bytes, close-delimited (no length, connection closes)
- `.../ws`            answers an Upgrade with 101 then echoes raw bytes
- `.../pid`           this process's pid
- `.../env?name=X`    the value of environment variable X
- `.../cookie?c=V`    200 with one `Set-Cookie: V` per `c` (as given, attributes included)
- `.../exit`          exits the process at once (no response)
- `.../hog?n=N`       allocates and touches N MiB, then answers (memory-limit tests)
- anything else       200 "ok <target>"
Honours PORT; prints "ready" once listening. START_DELAY delays listening. With
NOT_READY_FILE set, every request is answered 500 while that file exists. With REQUEST_LOG
set, each request-target is appended to that file (what the readiness probe asked).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def not_ready(target: str) -> bool:
    """Log the request-target (REQUEST_LOG) and say whether to answer 500 (NOT_READY_FILE).
    Blocking file calls are fine here: a test backend, microseconds on a local disk."""
    log_path, flag = os.environ.get("REQUEST_LOG"), os.environ.get("NOT_READY_FILE")
    if log_path:
        with open(log_path, "a") as log:
            log.write(target + "\n")
    return bool(flag) and os.path.exists(flag)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            raw_headers = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    raw_headers.append([name, value.strip()])
                    headers[name.lower()] = value.strip()
            body = await read_body(reader, headers)
            if not_ready(target):
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            url = urlsplit(target)
            query = parse_qs(url.query)
            action = url.path.rstrip("/").rsplit("/", 1)[-1]
            n = int(query.get("n", ["0"])[0])
            if action == "echo":
                payload = json.dumps({
                    "method": method, "target": target, "headers": raw_headers,
                    "body_length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                }).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
            elif action == "bytes":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                if method != "HEAD":
                    await send_pattern(writer, n, chunked=False)
            elif action == "chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                await send_pattern(writer, n, chunked=True)
                writer.write(b"0\r\n\r\n")
            elif action == "close":
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                await send_pattern(writer, n, chunked=False)
                await writer.drain()
                writer.close()
                return
            elif action == "ws" and headers.get("upgrade", "").lower() == "websocket":
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n")
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()
                return
            elif action == "cookie":
                cookies = "".join(f"Set-Cookie: {c}\r\n" for c in query.get("c", []))
                writer.write(b"HTTP/1.1 200 OK\r\n%sContent-Length: 0\r\n\r\n"
                             % cookies.encode("latin-1"))
            elif action == "exit":
                os._exit(3)
            elif action == "hog":
                hog = b"\x01" * (n << 20)  # filled, so every page is really allocated
                text = b"survived %d" % len(hog)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(text), text))
            else:
                if action == "pid":
                    text = str(os.getpid()).encode()
                elif action == "env":
                    text = os.environ.get(query.get("name", [""])[0], "").encode()
                else:
                    text = b"ok " + target.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(text), text))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                writer.close()
                return
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        writer.close()


async def send_pattern(writer: asyncio.StreamWriter, n: int, *, chunked: bool) -> None:
    block = bytes(range(256)) * 256  # 64 KiB
    sent = 0
    while sent < n:
        piece = block[: min(len(block), n - sent)]
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        sent += len(piece)
        await writer.drain()


async def main() -> None:
    delay = float(os.environ.get("START_DELAY", "0") or 0)
    if delay:
        await asyncio.sleep(delay)
    port = int(os.environ.get("PORT", "0"))
    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 20)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
