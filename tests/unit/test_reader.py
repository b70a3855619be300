"""Unit tests for navigator.http.reader: bytes in, request events out, no socket or loop.

Each test feeds a `RequestReader` with packets (cut anywhere a network may cut them) and
asserts on the events its sink heard, or on the refusal it raised.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from navigator.config.runtime import Config, Limits, ListenAddress
from navigator.http import wire
from navigator.http.exchange import Exchange
from navigator.http.reader import ParseError, ReaderSink, RequestReader
from navigator.web.snapshot import build_snapshot

# The reader never reads an exchange's snapshot, but a compiled Exchange checks its type.
SNAPSHOT = build_snapshot(Config(source=Path("n.yml"), listen=ListenAddress("", 0)))


class Recorder(ReaderSink):
    """A ReaderSink that writes down every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.exchanges: list[Exchange] = []
        self.tunnel = b""

    def request_begin(self) -> Exchange:
        ex = Exchange(0.0, SNAPSHOT)
        self.exchanges.append(ex)
        self.events.append(("begin", len(self.exchanges)))
        return ex

    def request_head(self, ex: Exchange) -> None:
        self.events.append(("head", (ex.method, ex.target)))

    def request_body(self, ex: Exchange, data: bytes) -> None:
        self.events.append(("body", bytes(data)))

    def request_end(self, ex: Exchange) -> None:
        self.events.append(("end", ex.target))

    def tunnel_bytes(self, data: bytes) -> None:
        self.tunnel += data

    def body(self) -> bytes:
        return b"".join(data for kind, data in self.events if kind == "body")  # type: ignore[misc]


def read(*packets: bytes, limits: Limits | None = None) -> tuple[RequestReader, Recorder]:
    sink = Recorder()
    reader = RequestReader(sink, limits or Limits())
    for packet in packets:
        rest = reader.feed(packet)
        while rest:  # what the connection does: feed the rest again
            rest = reader.feed(rest)
    return reader, sink


def cuts(data: bytes, *at: int) -> list[bytes]:
    edges = [0, *at, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_a_get_is_begin_head_end() -> None:
    _, sink = read(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
    assert sink.events == [("begin", 1), ("head", (b"GET", b"/a?b=1")), ("end", b"/a?b=1")]
    ex = sink.exchanges[0]
    assert ex.request_complete
    assert ex.keep_alive
    assert ex.http_minor == 1
    assert ex.kept == {b"host": b"x", b"user-agent": b"t"}
    assert ex.headers == [(b"Host", b"x"), (b"User-Agent", b"t")]


@pytest.mark.parametrize("at", [(10,), (40,), (41, 45), (44, 60, 61)])
def test_a_content_length_body_split_anywhere_arrives_whole_then_the_next_request(
        at: tuple[int, ...]) -> None:
    body = b"0123456789" * 3
    stream = (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n" + body
              + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    reader, sink = read(*cuts(stream, *at))
    assert sink.body() == body
    kinds = [kind for kind, _ in sink.events if kind != "body"]
    assert kinds == ["begin", "head", "end", "begin", "head", "end"]
    assert sink.exchanges[0].content_length == 30
    assert not sink.exchanges[0].chunked
    assert reader.parsing is None
    assert reader.raw_left == 0


def test_a_chunked_body_and_its_trailers_which_never_join_the_head() -> None:
    _, sink = read(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n")
    ex = sink.exchanges[0]
    assert ex.chunked
    assert sink.body() == b"hello"
    assert sink.events[-1] == ("end", b"/c")
    assert (b"X-Trailer", b"t") not in ex.headers


def test_pipelined_requests_come_out_in_order() -> None:
    _, sink = read(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"HEAD /3 HTTP/1.0\r\n\r\n")
    heads = [data for kind, data in sink.events if kind == "head"]
    assert heads == [(b"GET", b"/1"), (b"GET", b"/2"), (b"HEAD", b"/3")]
    assert not sink.exchanges[2].keep_alive
    assert sink.exchanges[2].http_minor == 0


def test_bytes_after_a_websocket_upgrade_head_are_for_the_tunnel() -> None:
    _, sink = read(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                   b"Upgrade: websocket\r\n\r\n\x81\x05hello")
    assert sink.exchanges[0].upgrade
    assert sink.tunnel == b"\x81\x05hello"


def test_an_h2c_upgrade_is_not_a_tunnel_and_parsing_goes_on() -> None:
    _, sink = read(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                   b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not sink.exchanges[0].upgrade
    assert sink.tunnel == b""
    assert [data for kind, data in sink.events if kind == "head"] == [(b"GET", b"/a"),
                                                                      (b"GET", b"/b")]


@pytest.mark.parametrize(("stream", "status"), [
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
     400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host on 1.1
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\n", 400),
    (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 101 + b"\r\n", 431),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /\r\n", 400),  # HTTP/0.9
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/2.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 505),  # kept alive
])
def test_refused_requests_raise_their_status(stream: bytes, status: int) -> None:
    with pytest.raises(wire.HttpError) as refused:
        read(stream)
    assert refused.value.status == status


@pytest.mark.parametrize(("head", "minor", "keep_alive"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 1, True),
    (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, False),
    (b"GET / HTTP/1.0\r\n\r\n", 0, False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, True),
])
def test_the_version_is_known_with_or_without_asking_the_parser(
        head: bytes, minor: int, keep_alive: bool) -> None:
    """A kept-alive request without a keep-alive token is HTTP/1.1 (the parser is not asked);
    every other case reads the version."""
    _, sink = read(head)
    assert (sink.exchanges[0].http_minor, sink.exchanges[0].keep_alive) == (minor, keep_alive)


def test_an_endless_header_line_is_cut_by_bytes_fed() -> None:
    limits = Limits(max_request_line=100, max_header_bytes=1000)
    packets = [b"GET / HTTP/1.1\r\nHost: x\r\nX: "] + [b"a" * 500] * 8
    with pytest.raises(wire.HttpError) as refused:
        read(*packets, limits=limits)
    assert refused.value.status == 431


def test_bytes_that_are_not_http_are_a_parse_error() -> None:
    with pytest.raises(ParseError) as refused:
        read(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
    assert refused.value.status == 400


def test_a_request_cut_short_stays_in_progress() -> None:
    reader, sink = read(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert reader.parsing is sink.exchanges[0]
    assert not sink.exchanges[0].request_complete
    reader.forget_parsing()
    assert reader.parsing is None
