"""Backend side of the proxy: keep-alive connection pool and response parsing.

Room: I/O. An `UpstreamConnection` is an asyncio Protocol on a backend socket that parses
responses with httptools and hands every event to the `ResponseSink` (the client-side
exchange) that currently owns it. It never decides anything about the client connection.

Invariants:
- a connection carries one request at a time; it returns to the pool only after a complete
  response with keep-alive allowed, and is closed otherwise;
- backpressure both ways: when our write buffer to the backend is full the owner pauses
  reading its client; the owner pauses *our* reading when the client is slow;
- a response to HEAD ends at its head (httptools cannot know; see IMPLEMENTATION-NOTES), a
  close-delimited response ends at connection loss;
- a Content-Length body that outlives the packet its head came in is relayed raw: later packets
  go to the owner as the very bytes objects the loop read, with no parser callback and no copy
  (the parser would copy every body byte once more); the parser is replaced for the next
  response, since the old one is mid-body;
- 101 turns the connection into a raw tunnel: bytes go to the owner untouched;
- a packet that leaves a response unfinished is ACKed at once (TCP_QUICKACK, Linux): a backend
  that writes head and body in separate small sends without TCP_NODELAY (Python's http.server
  does) cannot send the rest until that ACK arrives, and a kept-alive connection in delayed-ACK
  mode holds it back ~40 ms, every request (measured: 44 ms -> 0.2 ms median; issue 14).
  A response that arrives whole in one packet costs no extra syscall. Both our client and
  backend sockets already have TCP_NODELAY (uvloop sets it on every TCP transport).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Final, cast

import httptools
from mypy_extensions import mypyc_attr

from navigator.http import wire
from navigator.http.flow import write_parts
from navigator.proxy.connectqueue import CONNECT_LIMIT, ConnectQueue, ConnectQueueTimeout

log = logging.getLogger("navigator.upstream")

PoolKey = tuple[str, int, bool]  # host, port, tls

MAX_IDLE_PER_KEY: Final = 1024
QUICKACK: Final[int] = getattr(socket, "TCP_QUICKACK", 0)
"""0 where the platform has no quick-ACK option (not Linux): nothing is set there."""
PROBATION: Final = 1.0
"""Seconds a new connection holds its connect slot at most, waiting for its first head (the
first SYN retransmission comes after 1 s: holding longer would not save one)."""
RAW_MIN: Final = 16 * 1024
"""A body wholly inside its head's packet and smaller than this goes through the parser: its
copy costs less than the fresh parser that raw relay needs for the next response."""


@mypyc_attr(allow_interpreted_subclasses=True)  # the tests' recording sinks are Python
class ResponseSink:
    """What an upstream connection reports to (implemented by the client exchange). A base
    class, not a Protocol: compiled, the four calls per response go through a vtable instead
    of a Python method lookup each. Every event must be overridden."""

    __slots__ = ()

    def upstream_head(self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool,
                      content_length: int | None, keep_alive: bool) -> None:
        raise NotImplementedError

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    def upstream_body(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def upstream_complete(self) -> None:
        raise NotImplementedError

    def upstream_upgraded(self, rest: bytes) -> None:
        raise NotImplementedError

    def upstream_tunnel_data(self, data: bytes) -> None:
        raise NotImplementedError

    def upstream_lost(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    def upstream_flush(self) -> None:
        raise NotImplementedError

    def upstream_pause_writing(self) -> None:
        raise NotImplementedError

    def upstream_resume_writing(self) -> None:
        raise NotImplementedError


class UpstreamConnection(asyncio.Protocol):
    """One backend connection; owned by at most one exchange at a time."""

    __slots__ = (
        "_body_left",
        "_chunked",
        "_content_length",
        "_head_done",
        "_headers",
        "_keep_alive",
        "_parser",
        "_raw_left",
        "closed",
        "connection_header",
        "head_request",
        "key",
        "pool",
        "probation",
        "reused",
        "sink",
        "sock",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: UpstreamPool, key: PoolKey) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None  # for TCP_QUICKACK; None when not settable
        self.sink: ResponseSink | None = None
        # None once the connection is lost: the parser holds this connection's bound methods,
        # and dropping it lets both go by reference counting instead of the cycle collector.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunked = False
        self._content_length: int | None = None
        self._head_done = False
        self._body_left = 0  # Content-Length bytes of the current response not yet seen
        self._raw_left = 0  # > 0: relaying the rest of a body without the parser
        self._keep_alive = False
        self.connection_header: bytes | None = None  # the current response's, if it sent one
        self.head_request = False
        self.reused = False
        self.closed = False
        self.tunnel = False
        self.probation: Probation | None = None  # holds a connect slot until the first head

    # --- owner API -------------------------------------------------------------------
    def begin(self, sink: ResponseSink, head_request: bool) -> None:
        """Take the connection for one request/response."""
        self.sink = sink
        self.head_request = head_request
        self._headers = []
        self._head_done = False
        self._body_left = self._raw_left = 0

    def describe(self) -> str:
        """For the connection dump."""
        transport = self.transport
        reading = transport.is_reading() if transport is not None and not self.closed else False
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return (f"upstream(closed={self.closed} reused={self.reused} head_done={self._head_done}"
                f" body_left={self._body_left} raw_left={self._raw_left} reading={reading}"
                f" write_buffer={buffered})")

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        """One write per message: uvloop's writelines sends each part separately."""
        if self.transport is not None and not self.closed:
            write_parts(self.transport, data)

    def write_eof(self) -> None:
        if self.transport is not None and not self.closed and self.transport.can_write_eof():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection (client gone, error, tenant stopped)."""
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.sink = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # --- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        if QUICKACK:
            self.sock = transport.get_extra_info("socket")

    def _ack_now(self) -> None:
        """ACK what arrived without the delayed-ACK wait (see invariants: Nagling backends)."""
        sock = self.sock
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            except OSError:  # closed, or not a TCP socket: nothing to speed up
                self.sock = None

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if self.tunnel:
            if sink is not None:
                sink.upstream_tunnel_data(data)
            return
        if sink is None:  # unsolicited bytes on an idle connection: not reusable
            self.close()
            self.pool.forget(self)
            return
        if self._raw_left:
            self._relay_raw(sink, data)
            if self.sink is sink:  # the body goes on past this packet
                self._ack_now()
            return
        body: memoryview | None = None
        if not self._head_done:
            # Parse only the head; a Content-Length body that follows it is relayed as a view
            # of this packet instead of a copy made by the parser (see invariants).
            end = data.find(b"\r\n\r\n") + 4
            if 3 < end < len(data):
                body = memoryview(data)[end:]
                data = data[:end]
        parser = self._parser
        if parser is None:  # lost
            return
        try:
            parser.feed_data(data)
            if body is not None:
                self._after_head(sink, body)
            elif self._body_left and self.sink is sink:
                # The body goes on past this packet: relay the rest raw (see invariants).
                self._raw_left = self._body_left
                self._parser = httptools.HttpResponseParser(self)
            sink.upstream_flush()  # one client write for all this packet produced
            if self.sink is sink:  # the response goes on past this packet
                self._ack_now()
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self.tunnel = True
            if self.sink is not None:
                rest = data[offset:]
                self.sink.upstream_upgraded(rest + body if body is not None else rest)
        except httptools.HttpParserError as exc:
            log.warning("invalid response from backend %s:%d: %s", self.key[0], self.key[1], exc)
            self.sink = None
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.abort()
            sink.upstream_lost(exc)

    def _after_head(self, sink: ResponseSink, body: memoryview) -> None:
        """Bytes that followed a head in the same packet."""
        if self.sink is not sink:
            # The response ended at its head (HEAD, 204, 304): what follows answers nothing.
            if not self.closed:
                self.close()
                self.pool.forget(self)
        elif self._body_left and (self._body_left > len(body) or len(body) > RAW_MIN):
            self._raw_left = self._body_left
            self._parser = httptools.HttpResponseParser(self)
            self._relay_raw(sink, body)
        elif self._parser is not None:  # chunked, close-delimited, or after an interim 1xx
            self._parser.feed_data(body)

    def _relay_raw(self, sink: ResponseSink, data: bytes | memoryview) -> None:
        left = self._raw_left
        size = len(data)
        if size < left:
            self._raw_left = left - size
            self._body_left = self._raw_left
            sink.upstream_body(data)
            sink.upstream_flush()
            return
        self._raw_left = self._body_left = 0
        extra = size > left
        sink.upstream_body(data[:left] if extra else data)
        # Bytes beyond the announced length answer nothing we asked: the connection is done.
        self._finish(self._keep_alive and not extra)

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._parser = None  # see __init__: no cycle left behind
        if self.probation is not None:
            self.probation.end()
            self.probation = None
        self.pool.forget(self)
        sink = self.sink
        self.sink = None
        if sink is None:
            return
        if self.tunnel:
            sink.upstream_lost(exc)
        elif self._head_done and not self._chunked and self._content_length is None:
            sink.upstream_complete()  # close-delimited body ends here (RFC 9112 §6.3 item 8)
        else:
            sink.upstream_lost(exc)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause_writing()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resume_writing()

    # --- httptools callbacks -----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        size = len(name)  # only two names matter here: most are ruled out by length
        if size == 14 and wire.lower_name(name) == b"content-length":
            if value.strip().isdigit():
                self._content_length = int(value)
        elif size == 17 and wire.lower_name(name) == b"transfer-encoding":
            self._chunked = value.strip().lower().endswith(b"chunked")
        elif size == 10 and wire.lower_name(name) == b"connection":
            self.connection_header = value  # its tokens name headers to drop (relay)

    def on_message_begin(self) -> None:
        self._chunked = False
        self._content_length = None
        self.connection_header = None

    def on_headers_complete(self) -> None:
        if self.probation is not None:  # the backend accepted us: its connect slot is free
            self.probation.end()
            self.probation = None
        parser = self._parser
        assert parser is not None  # callbacks run inside feed_data
        status = parser.get_status_code()
        sink = self.sink
        if sink is None:
            return
        if 100 <= status < 200 and status != 101:
            return  # interim response: forwarded at message complete
        self._head_done = True
        keep_alive = parser.should_keep_alive()
        if self.head_request or status in (204, 304):
            sink.upstream_head(status, self._headers, False, None, keep_alive)
            self._finish(keep_alive)
            return
        self._keep_alive = keep_alive
        if status != 101 and not self._chunked and self._content_length:
            self._body_left = self._content_length
        sink.upstream_head(status, self._headers, self._chunked, self._content_length, keep_alive)

    def on_body(self, body: bytes) -> None:
        if self._body_left:
            self._body_left -= len(body)
        if self.sink is not None:
            self.sink.upstream_body(body)

    def on_message_complete(self) -> None:
        sink = self.sink
        if sink is None:
            return
        parser = self._parser
        assert parser is not None  # callbacks run inside feed_data
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            headers, self._headers = self._headers, []
            sink.upstream_interim(status, headers)
            return
        if status == 101:
            return  # the upgrade exception follows and turns this into a tunnel
        self._finish(parser.should_keep_alive())

    def _finish(self, keep_alive: bool) -> None:
        sink = self.sink
        self.sink = None
        self._body_left = 0
        if self.head_request and keep_alive:
            # A HEAD response may announce a body the parser would wait for: use a fresh one
            # (a connection not kept alive is closed below and parses nothing more).
            self._parser = httptools.HttpResponseParser(self)
        if sink is not None:
            sink.upstream_complete()
        if keep_alive and not self.closed:
            self.pool.release(self)
        else:
            self.close()


Opener = Callable[["UpstreamPool", PoolKey, float], Awaitable[UpstreamConnection]]


Waiter = asyncio.Future[UpstreamConnection | None]  # None: a connect slot, else a connection


class Probation:
    """A new connection keeps its connect slot until its first response head (or its loss),
    at most `PROBATION` seconds: a completed handshake only means the kernel queued us, and a
    backend slow to accept overflows its listen queue all the same if the slot comes back
    then (measured: a listen(8) backend with a limit of 4 still saw its queue full)."""

    __slots__ = ("_key", "_pool", "_queue", "_timer")

    def __init__(self, pool: UpstreamPool, key: PoolKey, queue: ConnectQueue[Waiter]) -> None:
        self._pool = pool
        self._key = key
        self._queue: ConnectQueue[Waiter] | None = queue
        self._timer = pool.loop.call_later(PROBATION, self.end)

    def end(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        queue = self._queue
        if queue is None:
            return
        self._queue = None
        self._timer.cancel()
        self._pool.pass_slot(self._key, queue)


class UpstreamPool:
    """Idle keep-alive connections per backend address (reuse is worth 3-4x, see notes), and
    per backend a bound on connects in flight with a FIFO of requests waiting for a
    connection (`connectqueue`)."""

    __slots__ = ("_idle", "_limit", "_opener", "_queues", "_tls", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, opener: Opener | None = None,
                 connect_limit: int = CONNECT_LIMIT) -> None:
        """`opener` replaces opening a socket (tests inject one: a compiled class cannot be
        subclassed or patched from Python)."""
        self.loop = loop
        self._idle: dict[PoolKey, list[UpstreamConnection]] = {}
        self._queues: dict[PoolKey, ConnectQueue[Waiter]] = {}
        self._limit = connect_limit
        self._tls: ssl.SSLContext | None = None
        self._opener = opener

    def acquire(self, key: PoolKey) -> UpstreamConnection | None:
        """A pooled connection to `key`, or None when a new one must be opened."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.reused = True
                conn.resume_reading()
                return conn
        return None

    async def connect(self, key: PoolKey, deadline: float) -> UpstreamConnection:
        """A new connection to `key`, or, when `connect_limit` connects to it are already in
        flight, the first of a released keep-alive connection and a free connect slot (first
        come, first served). `deadline`, the connect timeout in seconds, covers the wait too:
        past it, ConnectQueueTimeout."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = ConnectQueue(self._limit)
        if not queue.try_connect():
            loop = self.loop
            end = loop.time() + deadline
            while True:
                conn = await self._wait_turn(key, queue, end - loop.time())
                if conn is None:
                    break  # a slot: connect below
                if not conn.closed:
                    return conn
                if queue.try_connect():  # it died while handed over
                    break
            deadline = max(0.001, end - loop.time())
        try:
            conn = await self._open(key, deadline)
        except BaseException:
            self.pass_slot(key, queue)
            raise
        if conn.closed:  # lost already: nothing will end a probation
            self.pass_slot(key, queue)
        else:
            conn.probation = Probation(self, key, queue)
        return conn

    async def _wait_turn(self, key: PoolKey, queue: ConnectQueue[Waiter],
                         seconds: float) -> UpstreamConnection | None:
        waiter: Waiter = self.loop.create_future()
        queue.wait(waiter)
        timer = self.loop.call_later(max(0.0, seconds), _expire, queue, waiter, key, seconds)
        try:
            return await waiter
        except asyncio.CancelledError:  # the client went away: leave, pass on what came
            if not queue.leave(waiter) and waiter.done() and not waiter.cancelled() \
                    and waiter.exception() is None:
                got = waiter.result()
                if got is None:
                    self.pass_slot(key, queue)
                else:
                    self.release(got)
            raise
        finally:
            timer.cancel()

    def pass_slot(self, key: PoolKey, queue: ConnectQueue[Waiter]) -> None:
        """A connect ended: its slot goes to the first waiter still waiting, or is freed."""
        while (waiter := queue.connect_done()) is not None:
            if not waiter.done():
                waiter.set_result(None)
                return
        if queue.unused and self._queues.get(key) is queue:
            del self._queues[key]

    async def _open(self, key: PoolKey, deadline: float) -> UpstreamConnection:
        if self._opener is not None:
            return await self._opener(self, key, deadline)
        host, port, tls = key
        context: ssl.SSLContext | None = None
        if tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            context = self._tls
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(lambda: UpstreamConnection(self, key), host, port,
                                         ssl=context, server_hostname=host if tls else None),
            deadline,
        )
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """A connection finished its exchange: to the first waiter for it, else idle."""
        queue = self._queues.get(conn.key)
        if queue is not None:
            while (waiter := queue.take_waiter()) is not None:
                if not waiter.done():
                    conn.reused = True
                    conn.resume_reading()
                    waiter.set_result(conn)
                    return
        idle = self._idle.setdefault(conn.key, [])
        if len(idle) >= MAX_IDLE_PER_KEY:
            conn.close()
            return
        idle.append(conn)

    def waiting(self, key: PoolKey) -> int:
        """Requests waiting for a connection to `key` (for the connection dump and tests)."""
        queue = self._queues.get(key)
        return len(queue.waiters) if queue is not None else 0

    def forget(self, conn: UpstreamConnection) -> None:
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    def drop(self, host: str, port: int) -> None:
        """Close idle connections to an address (its process exited or was replaced)."""
        for key in [k for k in self._idle if k[0] == host and k[1] == port]:
            for conn in self._idle.pop(key):
                conn.close()

    def close_all(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    def idle_count(self) -> int:
        return sum(len(v) for v in self._idle.values())


def _expire(queue: ConnectQueue[Waiter], waiter: Waiter, key: PoolKey, timeout: float) -> None:
    if queue.leave(waiter) and not waiter.done():
        waiter.set_exception(ConnectQueueTimeout(
            f"no connection to {key[0]}:{key[1]} came free within {timeout:.1f}s "
            f"({len(queue.waiters)} more waiting)"))
