"""CGI scripts and the built-in pub/sub, through the real server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from navigator.extras.wsframe import FrameParser, Opcode, encode_frame
from tests.helpers import Navigator, Reader, connect, request, run_navigator

SCRIPT = """#!/bin/sh
echo "Status: 201 Created"
echo "Content-Type: text/plain"
echo "X-Method: $REQUEST_METHOD"
echo
echo "query=$QUERY_STRING addr=$REMOTE_ADDR name=$SERVER_NAME"
cat
"""


@pytest.fixture(scope="module")
def nav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Navigator]:
    root = tmp_path_factory.mktemp("extras")
    script = root / "hello.cgi"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    config = root / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  cgi_scripts:
    - path: /hello
      script: {script}
      method: POST
""")
    with run_navigator(config) as server:
        yield server


def test_cgi_env_status_and_streamed_body(nav: Navigator) -> None:
    body = b"x" * 200_000
    resp = request(nav.port, "POST", "/hello?a=1", body=body)
    assert resp.status == 201
    assert resp.header("x-method") == "POST"
    first, _, rest = resp.body.partition(b"\n")
    assert first == b"query=a=1 addr=127.0.0.1 name=localhost"
    assert rest == body
    assert request(nav.port, "GET", "/hello").status == 404  # method filter: falls through


def ws_handshake(sock: socket.socket) -> Reader:
    sock.sendall(b"GET /cable HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                 b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    reader = Reader(sock)
    resp = reader.response()
    assert resp.status == 101
    assert resp.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    return reader


def next_message(reader: Reader, parser: FrameParser) -> dict[str, object]:
    while True:
        messages = parser.feed(reader.buffer or reader.sock.recv(65536))
        reader.buffer = b""
        for message in messages:
            if message.opcode == Opcode.TEXT:
                decoded = json.loads(message.payload)
                assert isinstance(decoded, dict)
                return decoded


def test_cable_subscribe_and_broadcast(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = ws_handshake(sock)
        parser = FrameParser(1 << 20, require_mask=False)
        sock.sendall(encode_frame(Opcode.TEXT, b'{"type":"subscribe","stream":"news"}',
                                  mask=True))
        assert next_message(reader, parser) == {"type": "subscribed", "stream": "news"}
        sent = request(nav.port, "POST", "/_broadcast",
                       body=b'{"stream":"news","data":{"n":1}}')
        assert sent.status == 200
        assert next_message(reader, parser) == {"type": "message", "stream": "news",
                                                "data": {"n": 1}}
    bad = request(nav.port, "POST", "/_broadcast", body=b"{not json")
    assert bad.status == 400
    assert request(nav.port, "GET", "/_broadcast").status == 405
