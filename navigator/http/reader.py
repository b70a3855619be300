"""Reading requests off a client's byte stream: httptools callbacks in, request events out.

Room: transport-free. `RequestReader.feed(bytes)` drives httptools and reports each request
to its `ReaderSink` (the connection) as four events: begin (give me an Exchange), head
(complete and validated), body bytes, end. It owns every limit and framing check of the
request head (through `wire`): a refused request raises `wire.HttpError` with its 4xx/5xx
status, a malformed one `ParseError` (400). No sockets, clocks or server state, so it is
unit-tested with bytes in and events out (tests/unit/test_reader.py).

Invariants:
- a head is limited by bytes fed, not only by what the callbacks saw (an endless line);
- framing is decided once, at the end of the head: Content-Length with Transfer-Encoding,
  differing lengths, codings other than chunked, missing Host on 1.1 → refused;
- trailer fields are counted against the head limit and never merged into the head;
- a Content-Length body that goes on past the packet is taken raw (no parser copy).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import httptools
from mypy_extensions import mypyc_attr

from navigator.http import wire
from navigator.http.exchange import NO_TOKENS, Exchange
from navigator.web.decision import RequestInfo

if TYPE_CHECKING:
    from navigator.config.runtime import Limits


class ParseError(wire.HttpError):
    """httptools refused the bytes (a malformed request line, header or chunk)."""


@mypyc_attr(allow_interpreted_subclasses=True)  # the tests' recording sink is Python
class ReaderSink(asyncio.Protocol):
    """Who hears about the requests read (the connection). A base class, not a Protocol:
    compiled, the three or four calls per request are vtable calls instead of a Python
    method lookup each. It derives from asyncio.Protocol only because its one
    implementation is one: a compiled class has a single chain of bases (`Client` derives
    from this, `HttpConnection` from `Client`). Every event must be overridden."""

    __slots__ = ()

    def request_begin(self) -> Exchange:
        raise NotImplementedError

    def request_head(self, ex: Exchange) -> None:
        raise NotImplementedError

    def request_body(self, ex: Exchange, data: bytes) -> None:
        raise NotImplementedError

    def request_end(self, ex: Exchange) -> None:
        raise NotImplementedError

    def tunnel_bytes(self, data: bytes) -> None:
        raise NotImplementedError


# Header names the protocol looks at (everything else is only forwarded). The framing ones
# get their own code; the rest are kept by name in `Exchange.kept` for routing, proxy and log.
# Final throughout: compiled, each is a C static (or inlined), not a module-dict lookup.
_H_HOST: Final = 0
_H_CL: Final = 1
_H_TE: Final = 2
_H_CONN: Final = 3
_H_EXPECT: Final = 4
_H_KEEP: Final = 5
_KEPT: Final = (
    b"upgrade", b"authorization", b"user-agent", b"x-request-id", b"accept-encoding",
    b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip",
    b"fly-replay-failed", b"x-navigator-retry", b"if-modified-since", b"if-none-match",
    b"range", b"x-amzn-trace-id", b"referer", b"fly-request-id", b"x-remote-user",
    b"fly-client-ip",
)
_FRAMING_NAMES: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})
_HTTP_VERSIONS: Final = frozenset({"1.0", "1.1"})
_HEADER_CODES: Final[dict[bytes, int]] = {
    b"host": _H_HOST, b"content-length": _H_CL, b"transfer-encoding": _H_TE,
    b"connection": _H_CONN, b"expect": _H_EXPECT, **dict.fromkeys(_KEPT, _H_KEEP),
}

# kept header -> RequestInfo text field it fills, decoded as is
_INFO_TEXT_FIELDS: Final[dict[bytes, str]] = {
    b"authorization": "authorization", b"user-agent": "user_agent",
    b"accept-encoding": "accept_encoding", b"if-modified-since": "if_modified_since",
    b"if-none-match": "if_none_match", b"range": "range",
}


class RequestReader:
    """The parse state of one client connection's request stream."""

    __slots__ = (
        "_body_left",
        "_conn_tokens",
        "_content_lengths",
        "_error",
        "_head_bytes",
        "_head_fed",
        "_host_count",
        "_in_head",
        "_in_trailers",
        "_last_parsed",
        "_limits",
        "_parser",
        "_parsing",
        "_raw_left",
        "_sink",
        "_transfer_codings",
        "_url_bytes",
    )

    _head_bytes: int
    _url_bytes: int
    _host_count: int
    _content_lengths: list[bytes]
    _transfer_codings: list[bytes]
    _conn_tokens: frozenset[bytes]
    _in_trailers: bool
    _head_fed: int

    def __init__(self, sink: ReaderSink, limits: Limits) -> None:
        self._sink: ReaderSink | None = sink  # None once closed
        self._limits = limits
        self._parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self._parsing: Exchange | None = None
        self._last_parsed: Exchange | None = None
        self._error: wire.HttpError | None = None
        # The per-message counters (_head_bytes, _url_bytes, _host_count, _conn_tokens,
        # _in_trailers, _head_fed) are set by on_message_begin before anything reads them: a
        # connection costs fewer stores. The two lists are made once, emptied there if used.
        self._content_lengths = []
        self._transfer_codings = []
        self._in_head = False
        self._body_left = 0  # Content-Length bytes of the request being parsed not yet seen
        self._raw_left = 0  # > 0: that body is being taken without the parser

    @property
    def parsing(self) -> Exchange | None:
        """The request whose head or body is being read, if any."""
        return self._parsing

    @property
    def raw_left(self) -> int:
        return self._raw_left

    def forget_parsing(self) -> None:
        """The request being read was refused and answered: it is no longer in progress."""
        self._parsing = None

    def restart(self) -> None:
        """Parse what follows as new requests (after an upgrade the backend refused)."""
        if self._sink is not None:
            self._parser = httptools.HttpRequestParser(self)

    def close(self) -> None:
        """The connection is gone: drop the parser, which holds this reader's bound methods,
        and the sink, which holds this reader. Connection, reader, parser and the last
        exchange are then freed by reference counting, not left as a cycle for the garbage
        collector (18 objects per connection; its collections were ~15 % of a
        `Connection: close` request's instructions in bench_hotpath). Feeding a closed
        reader does nothing."""
        self._parser = None
        self._sink = None
        self._parsing = self._last_parsed = None

    def feed(self, data: bytes) -> bytes | None:
        """Read `data`; returns bytes that belong to the stream after a change of state (the
        connection feeds them again, so they see its new state), else None.

        Raises `wire.HttpError` for a request refused by a limit or a framing rule,
        `ParseError` for bytes that are not HTTP/1.x.
        """
        parser = self._parser
        if parser is None:  # closed
            return None
        if self._raw_left:
            return self._relay_body(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            last = self._last_parsed
            sink = self._sink
            if last is not None and last.upgrade and sink is not None:
                sink.tunnel_bytes(data[offset:])  # for the tunnel, if the backend says 101
                return None
            # Only websocket upgrades are forwarded (no h2c): go on parsing plain HTTP/1.1.
            self._parser = httptools.HttpRequestParser(self)
            return data[offset:] if offset < len(data) else None
        except httptools.HttpParserError as exc:
            if self._error is not None:  # a callback refused the request (see _fail)
                raise self._error from exc
            raise ParseError(400, str(exc)) from exc
        if self._body_left and self._parsing is not None:
            # A Content-Length body goes on past this packet: take the rest raw, as the
            # loop's own bytes objects, instead of through the parser's copy. The parser
            # is mid-body, so the next request gets a fresh one.
            self._raw_left = self._body_left
            self._parser = httptools.HttpRequestParser(self)
        elif self._in_head:
            # httptools buffers a header line until its CRLF and only then calls us, so an
            # endless line must be cut here, by bytes fed (RFC 9112 §2.3 hardening). A head
            # that began in this packet counts what the callbacks saw of it (a body may
            # precede it here); the packets after count whole.
            fed = self._head_fed
            self._head_fed = (fed + len(data) if fed >= 0
                              else self._url_bytes + self._head_bytes)
            limits = self._limits
            if self._head_fed > limits.max_request_line + limits.max_header_bytes + 1024:
                self._error = wire.HttpError(431, "request head too large")
                raise self._error
            if data.endswith(b"\n") and parser.get_http_version() == "0.0":
                # A complete request line without a version is HTTP/0.9: refuse, don't wait.
                self._error = wire.HttpError(400, "HTTP/0.9 is not supported")
                raise self._error
        return None

    def _relay_body(self, data: bytes) -> bytes | None:
        """Body bytes of the request being parsed, without the parser (see feed)."""
        left = self._raw_left
        if len(data) < left:
            self._raw_left = self._body_left = left - len(data)
            self.on_body(data)
            return None
        self._raw_left = self._body_left = 0
        self.on_body(data[:left] if len(data) > left else data)
        self.on_message_complete()
        if len(data) > left:  # the next pipelined request begins in this packet
            return data[left:]
        return None

    # --- httptools callbacks -------------------------------------------------------------
    # They run only inside feed(), so the reader is open: parser and sink are set.
    def on_message_begin(self) -> None:
        sink = self._sink
        assert sink is not None
        self._parsing = sink.request_begin()
        self._head_bytes = 0
        self._url_bytes = 0
        self._host_count = 0
        if self._content_lengths:
            self._content_lengths.clear()
        if self._transfer_codings:
            self._transfer_codings.clear()
        self._conn_tokens = NO_TOKENS
        self._in_head = True
        self._in_trailers = False
        self._head_fed = -1  # the head began in the packet being fed
        self._body_left = 0

    def on_url(self, url: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        self._url_bytes += len(url)
        if self._url_bytes > self._limits.max_request_line:
            self._fail(414, "request line too long")
        ex.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self._parsing
        assert ex is not None
        self._head_bytes += len(name) + len(value) + 4
        limits = self._limits
        if self._in_trailers:  # trailer fields are never merged into the head (RFC 9110 §6.5.1)
            if self._head_bytes > limits.max_header_bytes:
                self._fail(431, "trailer section too large")
            return
        lname = wire.LOWER_NAMES.get(name)  # the usual names, none with an underscore
        if lname is None:
            lname = name.lower()
            # find, not `in`: bytes.__contains__ first tries the operand as an int and formats
            # a TypeError it then discards (~1,000 instructions per header).
            if name.find(b"_") >= 0 and lname.replace(b"_", b"-") in _FRAMING_NAMES:
                self._fail(400, "underscore variant of a framing header")
        headers = ex.headers
        headers.append((name, value))
        if self._head_bytes > limits.max_header_bytes:
            self._fail(431, "header section too large")
        if len(headers) > limits.max_header_count:
            self._fail(431, "too many headers")
        code = _HEADER_CODES.get(lname)
        if code is None:
            return
        if code == _H_HOST:
            self._host_count += 1
            ex.kept[b"host"] = value
        elif code == _H_CL:
            self._content_lengths.append(value)
        elif code == _H_TE:
            self._transfer_codings.append(value)
        elif code == _H_CONN:
            self._conn_tokens = self._conn_tokens | wire.connection_tokens(value)
        elif code == _H_EXPECT:
            ex.expect_continue = value.strip().lower() == b"100-continue"
        else:
            ex.kept[lname] = value

    def on_headers_complete(self) -> None:
        ex = self._parsing
        assert ex is not None
        parser = self._parser
        sink = self._sink
        assert parser is not None
        assert sink is not None
        self._in_head = False
        self._in_trailers = True
        ex.method = parser.get_method()
        if ex.method == b"CONNECT":
            self._fail(405, "CONNECT is not supported")
        ex.keep_alive = parser.should_keep_alive()
        if ex.keep_alive and b"keep-alive" not in self._conn_tokens:
            # llhttp keeps a connection alive without that token only for HTTP/1.1 and later
            # minors, and accepts no 1.x but 1.0 and 1.1: this is 1.1. get_http_version()
            # formats a new str per call (~1,700 instructions); the common case skips it.
            ex.http_minor = 1
        else:
            version = parser.get_http_version()
            if version not in _HTTP_VERSIONS:
                self._fail(505, f"HTTP version {version} not supported")
            ex.http_minor = 0 if version == "1.0" else 1
        try:
            ex.content_length = wire.check_request_framing(
                http_minor=ex.http_minor, host_count=self._host_count,
                content_lengths=self._content_lengths,
                transfer_encodings=self._transfer_codings,
                max_body=self._limits.max_body_bytes)
        except wire.HttpError as err:
            self._fail(err.status, err.reason)
        ex.chunked = bool(self._transfer_codings)
        ex.upgrade = (b"upgrade" in self._conn_tokens
                      and ex.kept.get(b"upgrade", b"").strip().lower() == b"websocket")
        try:
            ex.target = wire.request_target(ex.target, ex.method)
        except wire.HttpError as err:
            self._fail(err.status, err.reason)
        ex.conn_tokens = self._conn_tokens
        if not ex.chunked and not ex.content_length and not ex.upgrade:
            ex.request_complete = True  # no body can follow: answers may keep the connection
        elif ex.content_length and not ex.upgrade:
            self._body_left = ex.content_length
        sink.request_head(ex)

    def on_body(self, body: bytes) -> None:
        ex = self._parsing
        if ex is None:
            return
        if self._body_left:
            self._body_left -= len(body)
        sink = self._sink
        assert sink is not None
        sink.request_body(ex, body)

    def on_message_complete(self) -> None:
        ex = self._parsing
        if ex is None:
            return
        ex.request_complete = True
        self._parsing = None
        self._last_parsed = ex
        sink = self._sink
        assert sink is not None
        sink.request_end(ex)

    def _fail(self, status: int, reason: str) -> None:
        self._error = wire.HttpError(status, reason)
        raise self._error


def request_facts(ex: Exchange, peer_ip: str) -> bytes | None:
    """Fill `ex.info`, the request's facts that routing decides on, from its complete head;
    returns the client's X-Request-Id (None when it sent none). Pure."""
    kept = ex.kept
    path, _, query = ex.target.decode("latin-1").partition("?")
    host = kept.get(b"host")
    info = RequestInfo(ex.method.decode("latin-1"), path, query,
                       host.decode("latin-1") if host is not None else "", peer_ip,
                       None, "", ex.content_length, ex.chunked, ex.upgrade)
    ex.info = info
    if len(kept) == 1 and host is not None:  # only Host was kept: nothing more to fill
        return None
    for name, value in kept.items():
        field = _INFO_TEXT_FIELDS.get(name)
        if field is not None:
            setattr(info, field, value.decode("latin-1"))
    if b"fly-replay-failed" in kept:
        info.fly_replay_failed = True
    retry = kept.get(b"x-navigator-retry")
    if retry is not None:
        info.navigator_retry = retry.strip().lower() == b"true"
    if ex.snapshot.config.trust_proxy:
        # Forwarding headers are believed only from a proxy we trust; otherwise the
        # client is the socket peer, whatever it wrote (issue 22).
        xff, real, fly = (kept.get(b"x-forwarded-for"), kept.get(b"x-real-ip"),
                          kept.get(b"fly-client-ip"))
        if xff is not None or real is not None or fly is not None:
            info.client_ip = wire.trusted_client(peer_ip, xff, real, fly)
        proto = kept.get(b"x-forwarded-proto")
        if proto is not None:
            info.forwarded_proto = proto.strip().decode("latin-1")
    return kept.get(b"x-request-id")


def refused_facts(ex: Exchange, peer_ip: str) -> bytes | None:
    """The facts of a request refused while its head was read, for its access line only;
    returns the client's X-Request-Id (None when it sent none)."""
    path, _, query = ex.target.decode("latin-1").partition("?")
    host = ex.kept.get(b"host", b"")
    ex.info = RequestInfo(ex.method.decode("latin-1"), path, query, host.decode("latin-1"),
                          peer_ip)
    return ex.kept.get(b"x-request-id")
