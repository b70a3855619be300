"""Load clients wrk cannot play: a streaming 100 MiB upload, WebSocket round trips, a single
timed GET (tenant cold start), polling a starting server and holding many idle connections.

Room: benchmarks, load generation. Blocking sockets on loopback, run in the harness process
(pinned to the load-generator core). Each client has a hard deadline and raises
`ClientError` instead of hanging.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import urlsplit

CHUNK = 1 << 20


class ClientError(RuntimeError):
    """The proxy answered wrongly or too slowly."""


def _connect(url: str, deadline: float) -> tuple[socket.socket, str, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic()))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return sock, f"{host}:{port}", path


def _read_head(sock: socket.socket, deadline: float) -> tuple[int, bytes, bytes]:
    """Read until the end of a response head; returns (status, head, bytes after the head)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ClientError(f"connection closed before a response head: {buffer[:200]!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise ClientError(f"bad status line: {head[:200]!r}") from exc
    return status, head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return -1


@dataclass(frozen=True, slots=True)
class UploadResult:
    seconds: float
    size: int  # total bytes sent over all uploads
    uploads: int

    @property
    def mib_per_second(self) -> float:
        return self.size / (1 << 20) / self.seconds


def upload(url: str, size: int, timeout: float = 60.0) -> float:
    """POST `size` zero bytes with Content-Length, streamed in 1 MiB writes; returns seconds."""
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    sock, host, path = _connect(url, deadline)
    with sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode())
        block = memoryview(bytes(CHUNK))
        remaining = size
        while remaining:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            step = min(remaining, CHUNK)
            sock.sendall(block[:step])
            remaining -= step
        status, head, rest = _read_head(sock, deadline)
        length = _content_length(head)
        while length >= 0 and len(rest) < length:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    if status != 200:
        raise ClientError(f"upload answered {status}: {head[:300]!r}")
    if rest.strip().isdigit() and int(rest.strip()) != size:
        raise ClientError(f"sink received {rest.strip().decode()} bytes, sent {size}")
    return time.perf_counter() - started


def uploads_for(url: str, size: int, duration: float) -> UploadResult:
    """Repeat `upload` (fresh connection each) until `duration` has passed; at least once."""
    started = time.perf_counter()
    count = 0
    while True:
        upload(url, size)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= duration:
            return UploadResult(seconds=elapsed, size=size * count, uploads=count)


@dataclass(frozen=True, slots=True)
class RoundTrips:
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    def percentile(self, p: int) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)


def _ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked


def websocket_round_trips(url: str, duration: float, payload: bytes = b"x" * 32,
                          timeout: float = 30.0) -> RoundTrips:
    """Handshake through the proxy, then send/echo round trips of a small text frame for
    `duration` seconds (one connection, one message in flight)."""
    if len(payload) >= 126:
        raise ValueError("payload must fit a short frame")
    deadline = time.monotonic() + timeout
    sock, host, path = _connect(url, deadline)
    with sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                     f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
        status, head, pending = _read_head(sock, deadline)
        if status != 101:
            raise ClientError(f"websocket handshake answered {status}: {head[:300]!r}")
        message = _ws_frame(payload)
        expected = struct.pack("!BB", 0x81, len(payload)) + payload
        latencies: list[float] = []
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        started = time.perf_counter()
        stop_at = started + duration
        sent = started
        while sent < stop_at:
            sent = time.perf_counter()
            sock.sendall(message)
            while len(pending) < len(expected):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ClientError("websocket closed during the round trips")
                pending += chunk
            if pending[: len(expected)] != expected:
                raise ClientError(f"unexpected echo: {pending[:60]!r}")
            pending = pending[len(expected):]
            latencies.append((time.perf_counter() - sent) * 1e3)
        seconds = time.perf_counter() - started
        sock.sendall(struct.pack("!BB", 0x88, 0x80) + os.urandom(4))
    return RoundTrips(count=len(latencies), seconds=seconds, latencies_ms=latencies)


def timed_get(url: str, timeout: float = 30.0,
              headers: Sequence[str] = ()) -> tuple[int, float]:
    """One GET on a fresh connection; (status, seconds until the whole response arrived).

    The body ends at Content-Length when given, else when the server closes. `headers` are
    extra "Name: value" lines.
    """
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    sock, host, path = _connect(url, deadline)
    with sock:
        extra = "".join(f"{header}\r\n" for header in headers)
        if not any(header.lower().startswith("connection:") for header in headers):
            extra += "Connection: close\r\n"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        status, head, rest = _read_head(sock, deadline)
        remaining = _content_length(head) - len(rest)
        unbounded = _content_length(head) < 0
        while unbounded or remaining > 0:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(1 << 20)
            if not chunk:
                if not unbounded:
                    raise ClientError(f"response cut short, {remaining} bytes missing")
                break
            remaining -= len(chunk)
    return status, time.perf_counter() - started


def first_answer(url: str, started: float, timeout: float = 30.0,
                 interval: float = 0.0005) -> float:
    """Poll GET `url` until a server answers at all; seconds from `started` (perf_counter).

    Refused connections are retried every `interval` (a refused loopback connect costs tens
    of microseconds, so the poll adds well under a millisecond to what it measures).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            timed_get(url, timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionError:
            if time.monotonic() >= deadline:
                raise ClientError(f"{url} did not answer within {timeout:g}s") from None
            time.sleep(interval)
            continue
        return time.perf_counter() - started


def _read_keepalive_answer(sock: socket.socket, deadline: float) -> None:
    status, head, rest = _read_head(sock, deadline)
    length = _content_length(head)
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ClientError("connection closed during the response body")
        rest += chunk
    if status != 200 or length < 0 or b"\r\nconnection: close" in head.lower():
        raise ClientError(f"expected a 200 keep-alive answer with Content-Length: {head[:200]!r}")


@contextmanager
def idle_connections(url: str, count: int, batch: int = 500,
                     timeout: float = 120.0) -> Iterator[list[socket.socket]]:
    """Open `count` connections, complete one keep-alive GET on each, and hold them idle.

    Connections are opened `batch` at a time (all requests of a batch in flight together).
    On exit they are reset (SO_LINGER 0), so no TIME_WAIT is left on the client's ports.
    """
    deadline = time.monotonic() + timeout
    held: list[socket.socket] = []
    try:
        while len(held) < count:
            opened = []
            for _ in range(min(batch, count - len(held))):
                sock, host, path = _connect(url, deadline)
                held.append(sock)
                opened.append(sock)
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
            for sock in opened:
                sock.sendall(request)
            for sock in opened:
                _read_keepalive_answer(sock, deadline)
        yield held
    finally:
        linger = struct.pack("ii", 1, 0)
        for sock in held:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()
