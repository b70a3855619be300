"""The core proxy against a real server and real tenant processes on loopback."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    pattern_bytes,
    raw_exchange,
    request,
    run_navigator,
    wait_until,
    write_config,
)


def config_text(tmp_path: Path, extra_tenants: str = "", start_port: int | None = None,
                extra: str = "") -> str:
    port = start_port or random.randrange(20000, 32000, 101)
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
{extra}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  pools:
    start_port: {port}
    timeout: 5m
  tenants:
    - path: /a/
      env:
        TENANT_LABEL: alpha
    - path: /b/
      env:
        TENANT_LABEL: beta
{extra_tenants}
"""


@pytest.fixture
def nav(tmp_path: Path) -> Iterator[Navigator]:
    extra = """
    - path: /slow/
      startup_timeout: 20s
      env:
        START_DELAY: "2"
    - path: /tooslow/
      startup_timeout: 300ms
      env:
        START_DELAY: "3"
"""
    with run_navigator(write_config(tmp_path, config_text(tmp_path, extra))) as server:
        yield server


def get(sock: socket.socket, path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def test_first_request_starts_tenant_and_keeps_alive(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        pids = set()
        for _ in range(3):
            sock.sendall(get(sock, "/a/pid"))
            resp = reader.response()
            assert resp.status == 200
            pids.add(resp.body)
        assert len(pids) == 1, "keep-alive requests reach one tenant process"
        sock.sendall(get(sock, "/a/env?name=TENANT_LABEL"))
        assert reader.response().body == b"alpha"
        sock.sendall(get(sock, "/b/env?name=TENANT_LABEL"))
        assert reader.response().body == b"beta"


def test_pipelined_requests_answered_in_order(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        paths = [f"/a/item{i}" for i in range(5)]
        sock.sendall(b"".join(get(sock, p) for p in paths))
        bodies = [reader.response().body for _ in paths]
        assert bodies == [f"ok {p}".encode() for p in paths]


def test_chunked_request_body_and_chunked_response(nav: Navigator) -> None:
    body = pattern_bytes(300_000)
    with connect(nav.port) as sock:
        reader = Reader(sock)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000])
                          for i in range(0, len(body), 7000))
        sock.sendall(b"POST /a/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + chunks + b"0\r\n\r\n")
        echo = json.loads(reader.response().body)
        assert echo["body_length"] == len(body)
        assert echo["sha256"] == hashlib.sha256(body).hexdigest()
        sock.sendall(get(sock, "/a/chunked?n=1000000"))
        resp = reader.response()
        assert resp.header("transfer-encoding") == "chunked"
        assert resp.body == pattern_bytes(1_000_000)


def test_large_upload_and_download_stream(nav: Navigator) -> None:
    size = 32 * 1024 * 1024
    block = pattern_bytes(1 << 20)
    digest = hashlib.sha256()
    with connect(nav.port, timeout=60) as sock:
        reader = Reader(sock)
        sock.sendall(b"PUT /a/echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            sock.sendall(block)
            digest.update(block)
        echo = json.loads(reader.response().body)
        assert echo["body_length"] == size
        assert echo["sha256"] == digest.hexdigest()
        sock.sendall(get(sock, f"/a/bytes?n={size}"))
        resp = reader.response()
        assert len(resp.body) == size
        assert resp.body[: 1 << 20] == block


def test_expect_100_continue(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"POST /a/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = reader.response()
        assert interim.status == 100
        sock.sendall(b"hello")
        echo = json.loads(reader.response().body)
        assert echo["body_length"] == 5
        assert "expect" not in {k.lower() for k, _ in echo["headers"]}


def test_hop_by_hop_stripped_and_forwarded_headers_set(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/a/echo", headers={
        "Connection": "close, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5",
        "TE": "trailers", "Proxy-Authorization": "Basic eA==", "X-Forwarded-For": "10.1.1.1",
        "Host": "example.test",
    })
    echo = json.loads(resp.body)
    names = {k.lower(): v for k, v in echo["headers"]}
    for hop in ("x-secret-hop", "keep-alive", "te", "proxy-authorization"):
        assert hop not in names
    assert names["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-host"] == "example.test"
    assert names["host"] == "example.test"
    assert len(names["x-request-id"]) == 32
    int(names["x-request-id"], 16)


def test_request_id_kept_when_given(nav: Navigator) -> None:
    echo = json.loads(request(nav.port, "GET", "/a/echo", headers={"X-Request-Id": "abc"}).body)
    assert [v for k, v in echo["headers"] if k.lower() == "x-request-id"] == ["abc"]


def test_head_and_close_delimited_responses(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"HEAD /a/bytes?n=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        head = reader.response(head_request=True)
        assert head.status == 200
        assert head.header("content-length") == "5000"
        sock.sendall(get(sock, "/a/bytes?n=10"))  # the connection is still usable
        assert reader.response().body == pattern_bytes(10)
        sock.sendall(get(sock, "/a/close?n=70000"))
        resp = reader.response()
        assert resp.body == pattern_bytes(70000)
        assert resp.header("connection") == "close"


def test_websocket_upgrade_becomes_a_tunnel(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /a/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        resp = reader.response()
        assert resp.status == 101
        assert resp.header("upgrade") == "websocket"
        for payload in (b"ping-1", b"\x00\xff binary", b"x" * 100_000):
            sock.sendall(payload)
            assert reader.read_exactly(len(payload)) == payload


def test_concurrent_cold_start_starts_one_process(nav: Navigator) -> None:
    results: list[bytes] = []
    lock = threading.Lock()

    def hit() -> None:
        body = request(nav.port, "GET", "/b/pid").body
        with lock:
            results.append(body)

    threads = [threading.Thread(target=hit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 12
    assert len(set(results)) == 1, f"one tenant process expected, got {set(results)}"


def test_slow_tenant_does_not_delay_another(nav: Navigator) -> None:
    slow_done = threading.Event()
    slow_result: list[int] = []

    def slow() -> None:
        slow_result.append(request(nav.port, "GET", "/slow/pid", timeout=30).status)
        slow_done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    nav.wait_for_output(r"slow", timeout=10)  # its start has begun
    assert request(nav.port, "GET", "/a/pid").status == 200
    assert not slow_done.is_set(), "the fast tenant answered while the slow one was starting"
    thread.join(30)
    assert slow_result == [200]


def test_start_slower_than_timeout_gets_maintenance_page(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/tooslow/")
    assert resp.status == 503
    assert resp.header("cache-control") == "no-cache, no-store, must-revalidate"
    assert "text/html" in (resp.header("content-type") or "")
    # the start went on in the background: soon the tenant answers normally
    wait_until(lambda: request(nav.port, "GET", "/tooslow/pid").status == 200, 20,
               interval=0.2, message="the slow tenant to come up")


def test_unknown_path_is_404_and_slash_redirect(nav: Navigator) -> None:
    assert request(nav.port, "GET", "/nowhere/").status == 404
    resp = request(nav.port, "GET", "/a")
    assert resp.status == 302
    assert resp.header("location") == "/a/"


def test_dead_tenant_gives_502_then_restarts(nav: Navigator) -> None:
    first = request(nav.port, "GET", "/a/pid").body
    resp = request(nav.port, "GET", "/a/exit")
    assert resp.status == 502
    def restarted() -> bool:
        r = request(nav.port, "GET", "/a/pid")
        return r.status == 200 and r.body != first
    wait_until(restarted, 20, interval=0.1, message="a fresh tenant process")


def test_malformed_requests_get_400_and_close(nav: Navigator) -> None:
    for raw in (
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"BROKEN\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
    ):
        answer = raw_exchange(nav.port, raw)
        assert answer.startswith(b"HTTP/1.1 4"), (raw, answer[:80])
        assert b"Connection: close" in answer


def test_backend_connect_failure_is_502(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    text = f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
routes:
  reverse_proxies:
    - name: dead
      prefix: /dead/
      target: http://127.0.0.1:{port}
"""
    with run_navigator(write_config(tmp_path, text)) as server:
        assert request(server.port, "GET", "/dead/x").status == 502


def test_graceful_shutdown_leaves_no_process(tmp_path: Path) -> None:
    with run_navigator(write_config(tmp_path, config_text(tmp_path))) as server:
        pids = [int(request(server.port, "GET", f"/{t}/pid").body) for t in ("a", "b")]
        assert all(psutil.pid_exists(p) for p in pids)
        code = server.stop()
        assert code == 0
        for pid in pids:
            wait_until(lambda pid=pid: not psutil.pid_exists(pid)  # type: ignore[misc]
                       or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10,
                       message=f"tenant {pid} to be gone")


def test_sigusr1_dumps_what_each_connection_waits_for(nav: Navigator) -> None:
    with connect(nav.port) as idle_sock, connect(nav.port) as waiting:
        idle_sock.sendall(get(idle_sock, "/a/pid"))
        assert Reader(idle_sock).response().status == 200  # now idle, kept alive
        waiting.sendall(get(waiting, "/slow/pid"))  # its tenant takes ~2 s to start
        nav.wait_for_output(r"slow", timeout=10)
        nav.process.send_signal(signal.SIGUSR1)
        dump = nav.wait_for_output(r"connection dump: (\d+) open", timeout=10)
        assert int(dump.group(1)) >= 2
        nav.wait_for_output(r"request=GET /slow/pid .*waiting for its tenant to start",
                            timeout=10)
        nav.wait_for_output(r"connection peer=127\.0\.0\.1 .* idle", timeout=10)
        assert Reader(waiting).response().status == 200
