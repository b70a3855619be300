"""The demo tenant (examples/todo/app.py) writes each response with one send.

Issue 14: http.server wrote the head and then the body in a second send; on a kept-alive
connection the second segment waited (Nagle) for the peer's delayed ACK, ~44 ms per request
after the first, through navigator's pooled backend connections too. The handler runs here
on an instrumented socket that records every send, so the test counts writes instead of
timing them.
"""

from __future__ import annotations

import importlib.util
import io
import socket
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

APP = Path(__file__).resolve().parents[2] / "examples" / "todo" / "app.py"


@pytest.fixture(scope="module")
def todo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("todo_demo_app", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingRaw(io.RawIOBase):
    """The raw file under a buffered `makefile('wb')`: each write reaching it is a send."""

    def __init__(self, sends: list[bytes]) -> None:
        self.sends = sends

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.sends.append(bytes(data))
        return len(data)


class RecordingSocket:
    """A connected socket as StreamRequestHandler uses it; records sends and socket options."""

    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.sends: list[bytes] = []
        self.options: dict[tuple[int, int], int] = {}

    def makefile(self, mode: str, buffering: int = -1) -> io.IOBase:
        if "r" in mode:
            return io.BufferedReader(io.BytesIO(self.incoming))
        return io.BufferedWriter(RecordingRaw(self.sends), 1 << 20) if buffering else (
            RecordingRaw(self.sends))

    def sendall(self, data: bytes | memoryview) -> None:
        self.sends.append(bytes(data))

    def send(self, data: bytes | memoryview) -> int:
        self.sends.append(bytes(data))
        return len(data)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options[level, option] = value

    def settimeout(self, value: float | None) -> None:
        pass


def split_response(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, rest) of one Content-Length response at the start of `data`."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                  if line.lower().startswith(b"content-length:"))
    return head, rest[:length], rest[length:]


def serve(todo: ModuleType, tmp_path: Path, requests: bytes) -> RecordingSocket:
    """Run the app's handler over `requests` on one kept-alive connection."""
    store = todo.TodoStore(str(tmp_path / "todo.db"))
    server = SimpleNamespace(store=store, mount="/sam/list1/", tenant="sam/list1")
    connection = RecordingSocket(requests)
    todo.TodoHandler(connection, ("127.0.0.1", 50000), server)
    return connection


PIPELINE = [
    b"GET /sam/list1/api/items HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /sam/list1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 11\r\n\r\ntitle=milk+",
    b"GET /sam/list1/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /sam/list1/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sam/list1/nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /sam/list1/up HTTP/1.1\r\nHost: x\r\n\r\n",
]


def test_each_kept_alive_response_is_one_send(todo: ModuleType, tmp_path: Path) -> None:
    connection = serve(todo, tmp_path, b"".join(PIPELINE))
    statuses = []
    for sent in connection.sends:
        head, body, rest = split_response(sent)
        # A whole response, head and body, in this one send and nothing else.
        assert rest == b"", sent[:200]
        statuses.append(int(head.split(b" ", 2)[1]))
        if b"text/html" in head and body:
            assert body.endswith(b"</html>")
    assert statuses == [200, 303, 200, 200, 404, 200], connection.sends
    assert b"milk" in connection.sends[2]
    assert b"Location: /sam/list1/" in connection.sends[1]


def test_head_response_has_no_body_and_keeps_the_length(todo: ModuleType,
                                                        tmp_path: Path) -> None:
    connection = serve(todo, tmp_path, PIPELINE[2] + PIPELINE[3])
    page, head_only = connection.sends
    assert head_only.endswith(b"\r\n\r\n")
    assert head_only.count(b"\r\n\r\n") == 1
    length = split_response(page)[0].split(b"Content-Length: ")[1].split(b"\r\n")[0]
    assert f"Content-Length: {int(length)}".encode() in head_only


def test_nagle_is_off_on_the_accepted_socket(todo: ModuleType, tmp_path: Path) -> None:
    connection = serve(todo, tmp_path, PIPELINE[0])
    assert connection.options.get((socket.IPPROTO_TCP, socket.TCP_NODELAY)) == 1
    assert len(connection.sends) == 1


def test_connection_close_is_announced(todo: ModuleType, tmp_path: Path) -> None:
    too_big = (b"POST /sam/list1/items HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n")
    connection = serve(todo, tmp_path, too_big + PIPELINE[0])
    assert len(connection.sends) == 1  # the second request is never read
    head, _body, _ = split_response(connection.sends[0])
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head


def test_response_bytes_is_one_message(todo: ModuleType) -> None:
    data = todo.response_bytes(303, b"", "text/plain", location="/a/", date="D")
    assert data == (b"HTTP/1.1 303 See Other\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
                    b"Cache-Control: no-store\r\nDate: D\r\nLocation: /a/\r\n\r\n")
    assert todo.response_bytes(200, b"abc", "text/plain", head_only=True).endswith(
        b"Content-Length: 3\r\nCache-Control: no-store\r\n\r\n")


def test_an_empty_list_shows_an_empty_state(todo: ModuleType) -> None:
    page = todo.render_page("sam/list1", "/sam/list1/", []).decode()
    assert todo.EMPTY_STATE in page
    assert "0 of 0" not in page
    assert "<ul>" not in page


def test_a_list_with_items_counts_what_is_left(todo: ModuleType) -> None:
    items = [{"id": 1, "title": "milk", "done": False}, {"id": 2, "title": "eggs", "done": True}]
    page = todo.render_page("sam/list1", "/sam/list1/", items).decode()
    assert "1 of 2 left" in page
    assert todo.EMPTY_STATE not in page
