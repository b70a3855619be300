"""Backend response parsing and raw body relay in `UpstreamConnection`, packet by packet.

The connection parses only the head of a response and relays a Content-Length body as the
packets' own bytes; these tests feed exact packet boundaries (which sockets cannot promise)
and check that every body arrives whole, once, and that the connection is pooled only when
the response ended cleanly.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from navigator.proxy.upstream import (
    QUICKACK,
    RAW_MIN,
    ResponseSink,
    UpstreamConnection,
    UpstreamPool,
)

KEY = ("127.0.0.1", 9, False)


class Socket:
    """Counts the quick ACKs the connection asks for (TCP_QUICKACK)."""

    def __init__(self) -> None:
        self.quick_acks = 0

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if (level, option, value) == (socket.IPPROTO_TCP, QUICKACK, 1):
            self.quick_acks += 1


class Transport:
    def __init__(self) -> None:
        self.closed = False
        self.aborted = False
        self.socket = Socket()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.socket if name == "socket" else default

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Sink(ResponseSink):
    """Records what the connection reports for one response."""

    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.complete = 0
        self.lost: list[BaseException | None] = []
        self.interim: list[int] = []
        self.upgraded: bytes | None = None

    def upstream_head(self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool,
                      content_length: int | None, keep_alive: bool) -> None:
        self.status = status

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.interim.append(status)

    def upstream_body(self, data: bytes | memoryview) -> None:
        self.body += data

    def upstream_complete(self) -> None:
        self.complete += 1

    def upstream_upgraded(self, rest: bytes) -> None:
        self.upgraded = bytes(rest)

    def upstream_tunnel_data(self, data: bytes) -> None:
        pass

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.lost.append(exc)

    def upstream_flush(self) -> None:
        pass

    def upstream_pause_writing(self) -> None:
        pass

    def upstream_resume_writing(self) -> None:
        pass


@pytest.fixture
def pool() -> Iterator[UpstreamPool]:
    loop = asyncio.new_event_loop()
    yield UpstreamPool(loop)
    loop.close()


def connection(pool: UpstreamPool) -> tuple[UpstreamConnection, Transport]:
    conn = UpstreamConnection(pool, KEY)
    transport = Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def response(body: bytes, *, extra_headers: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nServer: t\r\n%sContent-Length: %d\r\n\r\n"
            % (extra_headers, len(body))) + body


def chunked(body: bytes, piece: int = 1000) -> bytes:
    out = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for i in range(0, len(body), piece):
        part = body[i:i + piece]
        out.append(b"%x\r\n%s\r\n" % (len(part), part))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def feed(conn: UpstreamConnection, data: bytes, cuts: list[int]) -> None:
    """Deliver `data` in packets split at the given offsets."""
    last = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if last < cut <= len(data):
            conn.data_received(data[last:cut])
            last = cut


def body_of(n: int, seed: int = 7) -> bytes:
    return bytes((i * seed + i // 251) % 256 for i in range(n))


@pytest.mark.parametrize("size", [0, 100, RAW_MIN - 1, RAW_MIN + 1, 300_000])
@pytest.mark.parametrize("cuts", [[], [10], [60], [61, 62, 63], [70, 5000, 100_000]])
def test_content_length_body_arrives_whole_and_the_connection_is_pooled(
        pool: UpstreamPool, size: int, cuts: list[int]) -> None:
    conn, transport = connection(pool)
    body = body_of(size)
    sink = Sink()
    conn.begin(sink, head_request=False)
    feed(conn, response(body), cuts)
    assert (sink.status, bytes(sink.body), sink.complete, sink.lost) == (200, body, 1, [])
    assert pool.acquire(KEY) is conn
    assert not transport.closed


def test_head_split_inside_its_blank_line(pool: UpstreamPool) -> None:
    conn, _ = connection(pool)
    data = response(body_of(50_000))
    blank = data.index(b"\r\n\r\n")
    sink = Sink()
    conn.begin(sink, head_request=False)
    feed(conn, data, [blank + 1, blank + 3, blank + 9000])
    assert (bytes(sink.body), sink.complete) == (body_of(50_000), 1)


def test_the_next_response_on_a_reused_connection_parses_after_a_raw_body(
        pool: UpstreamPool) -> None:
    conn, _ = connection(pool)
    for size in (200_000, 5, 70_000, 0):
        sink = Sink()
        conn.begin(sink, head_request=False)
        feed(conn, response(body_of(size, seed=size % 13 + 1)), [40, 41, 30_000])
        assert (bytes(sink.body), sink.complete) == (body_of(size, seed=size % 13 + 1), 1)
        assert pool.acquire(KEY) is conn


@pytest.mark.parametrize("cuts", [[], [100], [80_000]])
def test_bytes_beyond_content_length_end_the_response_and_the_connection(
        pool: UpstreamPool, cuts: list[int]) -> None:
    conn, transport = connection(pool)
    body = body_of(100_000)
    sink = Sink()
    conn.begin(sink, head_request=False)
    feed(conn, response(body) + b"HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\n\r\n", cuts)
    assert (bytes(sink.body), sink.complete) == (body, 1)
    assert transport.closed
    assert pool.acquire(KEY) is None


def test_head_response_ends_at_its_head_and_trailing_bytes_close_it(pool: UpstreamPool) -> None:
    conn, transport = connection(pool)
    sink = Sink()
    conn.begin(sink, head_request=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert (sink.status, sink.complete, bytes(sink.body)) == (200, 1, b"")
    assert pool.acquire(KEY) is conn
    sink = Sink()
    conn.begin(sink, head_request=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
    assert (sink.complete, bytes(sink.body)) == (1, b"")
    assert transport.closed
    assert pool.acquire(KEY) is None


def test_interim_response_then_final_in_one_packet(pool: UpstreamPool) -> None:
    conn, _ = connection(pool)
    sink = Sink()
    conn.begin(sink, head_request=False)
    conn.data_received(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                       + response(body_of(40_000)))
    assert sink.interim == [103]
    assert (sink.status, bytes(sink.body), sink.complete) == (200, body_of(40_000), 1)


@pytest.mark.parametrize("cuts", [[], [30], [500, 2000]])
def test_chunked_body_still_goes_through_the_parser(pool: UpstreamPool, cuts: list[int]) -> None:
    conn, _ = connection(pool)
    body = body_of(5000)
    sink = Sink()
    conn.begin(sink, head_request=False)
    feed(conn, chunked(body), cuts)
    assert (bytes(sink.body), sink.complete) == (body, 1)
    assert pool.acquire(KEY) is conn


def test_connection_lost_mid_raw_body_is_a_failure_not_a_short_success(
        pool: UpstreamPool) -> None:
    conn, _ = connection(pool)
    sink = Sink()
    conn.begin(sink, head_request=False)
    conn.data_received(response(body_of(100_000))[:50_000])
    conn.connection_lost(None)
    assert sink.complete == 0
    assert len(sink.lost) == 1


def test_upgrade_hands_over_the_bytes_after_the_head(pool: UpstreamPool) -> None:
    conn, _ = connection(pool)
    sink = Sink()
    conn.begin(sink, head_request=False)
    conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\n\r\n\x81\x02hi")
    assert sink.status == 101
    assert sink.upgraded == b"\x81\x02hi"


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(0, 90_000), min_size=1, max_size=4),
       use_chunked=st.lists(st.booleans(), min_size=4, max_size=4),
       cuts=st.lists(st.integers(1, 400_000), max_size=8))
def test_any_packet_split_of_any_response_sequence(sizes: list[int], use_chunked: list[bool],
                                                   cuts: list[int]) -> None:
    loop = asyncio.new_event_loop()
    try:
        pool = UpstreamPool(loop)
        conn, _ = connection(pool)
        for i, size in enumerate(sizes):
            body = body_of(size, seed=i + 3)
            data = chunked(body) if use_chunked[i] else response(body)
            sink = Sink()
            conn.begin(sink, head_request=False)
            feed(conn, data, [c % (len(data) + 1) for c in cuts])
            assert (bytes(sink.body), sink.complete, sink.lost) == (body, 1, [])
            assert pool.acquire(KEY) is conn
    finally:
        loop.close()


@pytest.mark.skipif(not QUICKACK, reason="TCP_QUICKACK is Linux-only")
@pytest.mark.parametrize(("size", "cuts", "quick_acks"), [
    (100, [], 0),                   # whole in one packet: no extra syscall
    (100, [60], 1),                 # head, then body (http.server): ACK the head at once
    (100, [10, 60], 2),             # every packet that leaves the response unfinished
    (RAW_MIN + 1, [60, 5000], 2),   # raw relay: the same
    (RAW_MIN + 1, [], 0),
])
def test_a_packet_that_leaves_the_response_unfinished_is_acked_at_once(
        pool: UpstreamPool, size: int, cuts: list[int], quick_acks: int) -> None:
    conn, transport = connection(pool)
    sink = Sink()
    conn.begin(sink, head_request=False)
    feed(conn, response(body_of(size)), cuts)
    assert (sink.complete, transport.socket.quick_acks) == (1, quick_acks)
