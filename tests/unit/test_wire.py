"""wire: framing rules, header filtering, canned responses."""

from __future__ import annotations

import pytest

from navigator.http import wire


def framing(**kw: object) -> int | None:
    args: dict[str, object] = {"http_minor": 1, "host_count": 1, "content_lengths": [],
                               "transfer_encodings": [], "max_body": None}
    args.update(kw)
    return wire.check_request_framing(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, None),
        ({"content_lengths": [b"10"]}, 10),
        ({"content_lengths": [b"10", b"10"]}, 10),
        ({"content_lengths": [b"10, 10"]}, 10),
        ({"content_lengths": [b"0"]}, 0),
        ({"transfer_encodings": [b"chunked"]}, None),
        ({"transfer_encodings": [b"Chunked"]}, None),
        ({"http_minor": 0, "host_count": 0}, None),
    ],
)
def test_valid_framing(kw: dict[str, object], expected: int | None) -> None:
    assert framing(**kw) == expected


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"host_count": 0}, 400),
        ({"host_count": 2}, 400),
        ({"http_minor": 0, "host_count": 2}, 400),
        ({"content_lengths": [b"10"], "transfer_encodings": [b"chunked"]}, 400),
        ({"content_lengths": [b"10", b"11"]}, 400),
        ({"content_lengths": [b"10, 11"]}, 400),
        ({"content_lengths": [b"-1"]}, 400),
        ({"content_lengths": [b"+5"]}, 400),
        ({"content_lengths": [b"0x10"]}, 400),
        ({"content_lengths": [b""]}, 400),
        ({"content_lengths": [b"9" * 30]}, 400),
        ({"transfer_encodings": [b"gzip"]}, 400),
        ({"transfer_encodings": [b"chunked, gzip"]}, 400),
        ({"transfer_encodings": [b"gzip, chunked"]}, 501),
        ({"transfer_encodings": [b"chunked", b"chunked"]}, 400),
        ({"transfer_encodings": [b"chunked"], "http_minor": 0, "host_count": 1}, 400),
        ({"content_lengths": [b"100"], "max_body": 99}, 413),
    ],
)
def test_ambiguous_framing_refused(kw: dict[str, object], status: int) -> None:
    with pytest.raises(wire.HttpError) as err:
        framing(**kw)
    assert err.value.status == status


@pytest.mark.parametrize(
    ("target", "method", "expected"),
    [
        (b"/", b"GET", b"/"),
        (b"/a/b?c=d&e=%20", b"GET", b"/a/b?c=d&e=%20"),
        (b"/a;b=c/%2F:@!$&'()*+,=~", b"GET", b"/a;b=c/%2F:@!$&'()*+,=~"),
        (b"/a?ids[]=1&j={}|^`\\/?", b"GET", b"/a?ids[]=1&j={}|^`\\/?"),  # as browsers send
        (b"/a??b", b"GET", b"/a??b"),
        (b"http://example.com/a?b", b"GET", b"/a?b"),
        (b"HTTPS://example.com:8443/a", b"GET", b"/a"),
        (b"http://example.com", b"GET", b"/"),
        (b"http://example.com?q", b"GET", b"/?q"),
        (b"http://[::1]:80/x", b"GET", b"/x"),
        (b"*", b"OPTIONS", b"*"),
    ],
)
def test_request_target_accepted(target: bytes, method: bytes, expected: bytes) -> None:
    assert wire.request_target(target, method) == expected


@pytest.mark.parametrize(
    ("target", "method"),
    [
        (b"/a#x.css", b"GET"),  # a fragment never belongs in a request-target (issue 14)
        (b"/a#", b"GET"),
        (b"/a?b#c", b"GET"),
        (b"http://h/a#x", b"GET"),
        (b"/a\\b", b"GET"),
        (b"/a[1]", b"GET"),
        (b"/a|b", b"GET"),
        (b"/a{b}", b"GET"),
        (b"/a^b", b"GET"),
        (b"/a`b", b"GET"),
        (b'/a"b', b"GET"),
        (b"/a<b>", b"GET"),
        (b'/a?q="x"', b"GET"),
        (b"/a?q=<x>", b"GET"),
        (b"/a\x7f", b"GET"),
        (b"/a\xc3\xa9", b"GET"),
        (b"/a%", b"GET"),
        (b"/a%2", b"GET"),
        (b"/a%zz", b"GET"),
        (b"/a?q=%g1", b"GET"),
        (b"*", b"GET"),
        (b"*x", b"OPTIONS"),
        (b"a/b", b"GET"),
        (b"example.com:80", b"GET"),
        (b"ftp://h/a", b"GET"),
        (b"http:///a", b"GET"),
        (b"http://user@h/a", b"GET"),
        (b"http://h h/a", b"GET"),
        (b"http://h\\@x/a", b"GET"),
    ],
)
def test_request_target_refused(target: bytes, method: bytes) -> None:
    with pytest.raises(wire.HttpError) as err:
        wire.request_target(target, method)
    assert err.value.status == 400


def test_filter_headers_drops_hop_by_hop_and_connection_named() -> None:
    headers = [(b"Host", b"a"), (b"Connection", b"x-foo"), (b"X-Foo", b"1"),
               (b"Keep-Alive", b"5"), (b"TE", b"trailers"), (b"Transfer-Encoding", b"chunked"),
               (b"Content-Length", b"3"), (b"Upgrade", b"h2c"), (b"Accept", b"*/*")]
    out = wire.filter_headers(headers, frozenset({b"content-length"}), frozenset({b"x-foo"}))
    assert out == [b"Host: a\r\n", b"Accept: */*\r\n"]


def test_a_header_filter_drops_its_names_in_any_spelling_and_nothing_else() -> None:
    skip = wire.HeaderFilter(wire.hop_by_hop_and(frozenset({b"content-length"})))
    for name in [b"Connection", b"CONNECTION", b"connection", b"cOnNeCtIoN", b"TE", b"te",
                 b"Content-Length", b"content-LENGTH", b"Proxy-Authorization", b"Keep-Alive"]:
        assert skip.drops(name), name
    for name in [b"Host", b"Server", b"X-Connection", b"Connections", b"T", b"", b"Etag",
                 b"Content-Lengthy", b"X" * 200]:
        assert not skip.drops(name), name
    assert skip.adding(frozenset({b"keep-alive"})) is skip  # nothing new: no copy
    assert skip.adding(frozenset({b"close"})) is skip  # an option, not a header name
    wider = skip.adding(frozenset({b"x-foo"}))
    assert wider.drops(b"X-Foo")
    assert not skip.drops(b"X-Foo")


@pytest.mark.parametrize(
    ("existing", "peer", "expected"),
    [(None, "1.2.3.4", b"1.2.3.4"), (b"9.9.9.9", "1.2.3.4", b"9.9.9.9, 1.2.3.4"),
     (b"", "::1", b"::1")],
)
def test_forwarded_for(existing: bytes | None, peer: str, expected: bytes) -> None:
    assert wire.forwarded_for(existing, peer) == expected


PEER = "192.0.2.1"


@pytest.mark.parametrize(
    ("xff", "real_ip", "fly", "expected"),
    [
        (None, None, None, PEER),
        (b"203.0.113.7", None, None, "203.0.113.7"),
        (b"6.6.6.6, 203.0.113.7", None, None, "203.0.113.7"),  # right-most: what the proxy saw
        (b"6.6.6.6, 203.0.113.7, 10.0.0.2, 172.16.5.5, 192.168.1.1, 127.0.0.1", None, None,
         "203.0.113.7"),  # internal hops skipped
        (b"6.6.6.6,203.0.113.7 , fd00::1, fe80::1, 100.64.0.1, 169.254.1.1", None, None,
         "203.0.113.7"),
        (b"10.9.9.9, 10.1.2.3", None, None, "10.1.2.3"),  # all internal: the right-most one
        (b"10.9.9.9, 10.1.2.3, 127.0.0.1", None, None, "127.0.0.1"),
        (b"203.0.113.9:4711", None, None, "203.0.113.9"),
        (b"[2001:db8::1]:443, fd00::5", None, None, "2001:db8::1"),
        (b"2001:db8::2", None, None, "2001:db8::2"),
        (b"::ffff:203.0.113.4", None, None, "203.0.113.4"),
        (b"6.6.6.6, unknown", None, None, PEER),  # garbage stops the walk: never believed
        (b"6.6.6.6, garbage, 10.0.0.1", None, None, "10.0.0.1"),
        (b"", b"198.51.100.8", None, "198.51.100.8"),
        (None, b"198.51.100.8", None, "198.51.100.8"),
        (b"203.0.113.7", b"198.51.100.8", None, "203.0.113.7"),  # X-Forwarded-For first
        (None, b"<script>", None, PEER),
        (b"6.6.6.6", None, b"198.51.100.7", "198.51.100.7"),  # Fly's edge wins
        (b"6.6.6.6", None, b" 2001:db8::9 ", "2001:db8::9"),
        (b"6.6.6.6", None, b"not-an-ip\r\nX: y", "6.6.6.6"),
        (b"6.6.6.6", None, b"", "6.6.6.6"),
    ],
)
def test_trusted_client(xff: bytes | None, real_ip: bytes | None, fly: bytes | None,
                        expected: str) -> None:
    assert wire.trusted_client(PEER, xff, real_ip, fly) == expected


def test_connection_tokens() -> None:
    assert wire.connection_tokens(b"Keep-Alive, Upgrade ,, X") == {b"keep-alive", b"upgrade",
                                                                     b"x"}


@pytest.mark.parametrize("value", [b"keep-alive", b"Keep-Alive", b"KEEP-ALIVE", b"close",
                                   b"Close", b"upgrade", b"Upgrade", b"keep-alive, Upgrade",
                                   b" close ", b"Keep-alive"])
def test_looked_up_connection_values_equal_parsed_ones(value: bytes) -> None:
    parsed = frozenset(t.strip().lower() for t in value.split(b",") if t.strip())
    assert wire.connection_tokens(value) == parsed


def test_lower_name_is_bytes_lower_for_every_name() -> None:
    names = [*wire.LOWER_NAMES, b"X-Custom", b"content_length", b"\xc9tag", b"", b"A"]
    for name in names:
        assert wire.lower_name(name) == name.lower(), name
    assert all(key.lower() == value for key, value in wire.LOWER_NAMES.items())
    assert not any(b"_" in key for key in wire.LOWER_NAMES)  # the reader relies on it


def test_status_lines_precomputed_and_unknown() -> None:
    assert wire.status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert wire.status_line(599) == b"HTTP/1.1 599 \r\n"


def test_response_framing() -> None:
    data = wire.response(200, b"hi", [("X-A", "1")])
    assert data == (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Length: 2\r\n\r\nhi")
    head = wire.response(200, b"hi", keep_alive=False, head_only=True)
    assert head.endswith(b"Content-Length: 2\r\nConnection: close\r\n\r\n")
    assert b"Content-Length" not in wire.response(304, b"")
    assert wire.response(204, b"x").endswith(b"\r\n\r\n")


def test_canned_errors_close() -> None:
    assert wire.BAD_REQUEST.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in wire.BAD_GATEWAY_CLOSE
    assert wire.error_response(404).endswith(b"404 page not found")


def test_encode_chunk() -> None:
    assert wire.encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert wire.encode_chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
