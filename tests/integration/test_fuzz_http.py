"""Hypothesis fuzzing of the HTTP/1 front end through real connections to one running server.

Room: integration tests (hardening). Examples are random bytes, soups of HTTP tokens, and valid
requests mutated by a few byte-level edits. Each example goes over a fresh connection that is
half-closed after sending, so the server has everything it will ever get. Properties:

- the server answers within a timeout or closes (never holds a connection that can't progress);
- it never crashes: a health request is answered after every example;
- the marker request, carried as chunk data behind a mutated head, never reaches the tenant as
  a request, and no ambiguous framing (two lengths, bad chunking, folded or bare-CR/LF lines)
  is ever forwarded (the marker backend of `test_attacks` flags those).

Mutations touch only the head of marker templates: with the body intact, the marker can only
become a request line through a real desync (see test_attacks for the argument).
Must not touch: navigator internals.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Navigator, connect, request, run_navigator, wait_until, write_config
from tests.integration.test_attacks import attack_config, write_site

pytestmark = pytest.mark.timeout(120)

READ_TIMEOUT = 8.0
MARKER = b"/a/smuggled-fuzz"
SMUGGLED = b"GET " + MARKER + b" HTTP/1.1\r\nHost: t\r\n\r\n"
WRAPPED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Heads whose body is the chunk-wrapped marker (only the head gets mutated).
MARKER_HEADS = [
    b"POST /a/fuzz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"PUT /a/fuzz?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: fuzz\r\nAccept: */*\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
    b"POST /a/fuzz HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: t\r\n"
    b"Expect: 100-continue\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    b"PATCH /a/fuzz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
]
# Whole requests mutated anywhere (no marker inside).
PLAIN_REQUESTS = [
    b"GET /a/x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /a/x HTTP/1.1\r\nHost: t\r\n\r\nGET /pub/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /a/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /a/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
    b"GET /a/nows HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    b"GET /a/after-refused-upgrade HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /secret/x HTTP/1.1\r\nHost: t\r\nAuthorization: Basic YWRtaW46eA==\r\n\r\n",
    b"HEAD /pub/hello.txt HTTP/1.0\r\n\r\n",
]
TOKENS = [
    b"GET", b"POST", b"HEAD", b" ", b"  ", b"\t", b"/", b"/a/x", b"/secret/", b"*", b"?q=1",
    b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"\r\n", b"\n", b"\r", b"\r\n\r\n", b":", b",", b";",
    b"Host: t", b"Transfer-Encoding", b"chunked", b"Content-Length", b"0", b"5", b"-1", b"ff",
    b"hello", b"Connection: close", b"Upgrade: websocket", b"\x00", b"\x0b", b"\xff", b"%2e%2e",
]
INTERESTING = [b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x0b", b"\x7f", b":", b",", b";",
               b"\xff", b"_", b"chunked", b"HTTP/1.1", b"\r\n "]
FATAL_VIOLATIONS = ("NUL", "bare CR", "request line", "obs-fold", "bad header", "several",
                    "Content-Length with", "Transfer-Encoding", "bad Content", "bad chunked")


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "token", "delete", "replace", "dup_line", "lf"]))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "replace" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "dup_line":
            lines = bytes(data).split(b"\r\n")
            index = draw(st.integers(0, len(lines) - 1))
            lines.insert(index, lines[index])
            data = bytearray(b"\r\n".join(lines))
        elif op == "lf":
            crlf = bytes(data).find(b"\r\n", pos)
            if crlf >= 0:
                del data[crlf]
    return bytes(data)


marker_requests = st.sampled_from(MARKER_HEADS).flatmap(mutated).map(lambda head: head + WRAPPED)
plain_mutations = st.sampled_from(PLAIN_REQUESTS).flatmap(mutated)
token_soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=40).map(b"".join)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Navigator, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    write_site(root)
    limits = "    header_timeout: 1s\n"
    config = attack_config(root, limits, body_timeout="1s")
    with run_navigator(write_config(root, config)) as nav:
        wait_until(lambda: request(nav.port, "GET", "/a/warm").status == 200, 20,
                   interval=0.1, message="tenant /a/ to answer")
        yield nav, root / "a.log"


def send_and_drain(port: int, data: bytes) -> bytes:
    """Send, half-close, read until the server closes; a timeout is a failure (a hang)."""
    received = []
    with connect(port, timeout=READ_TIMEOUT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # the server already refused and closed
        try:
            while chunk := sock.recv(65536):
                received.append(chunk)
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"no answer and no close within {READ_TIMEOUT}s for "
                                 f"{data[:300]!r}; got {b''.join(received)[:200]!r}") from None
    return b"".join(received)


def check_example(target: tuple[Navigator, Path], data: bytes) -> None:
    nav, log = target
    answer = send_and_drain(nav.port, data)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:200]
    assert request(nav.port, "GET", "/up").status == 200, "server stopped answering"
    lines = log.read_text().splitlines() if log.exists() else []
    forwarded = [line for line in lines if MARKER.decode() in line]
    assert forwarded == [], f"marker reached the tenant for {data!r}"
    violations = [line for line in lines
                  if line.startswith("VIOLATION") and any(v in line for v in FATAL_VIOLATIONS)]
    assert violations == [], f"ambiguous request forwarded for {data!r}: {violations}"


@FUZZ
@given(data=st.binary(min_size=1, max_size=4096))
def test_random_bytes(fuzz_target: tuple[Navigator, Path], data: bytes) -> None:
    check_example(fuzz_target, data)


@FUZZ
@given(data=token_soup)
def test_http_token_soup(fuzz_target: tuple[Navigator, Path], data: bytes) -> None:
    check_example(fuzz_target, data)


@FUZZ
@given(data=marker_requests)
def test_mutated_heads_never_forward_the_marker(fuzz_target: tuple[Navigator, Path],
                                                data: bytes) -> None:
    check_example(fuzz_target, data)


@FUZZ
@given(data=plain_mutations)
def test_mutated_requests(fuzz_target: tuple[Navigator, Path], data: bytes) -> None:
    check_example(fuzz_target, data)
