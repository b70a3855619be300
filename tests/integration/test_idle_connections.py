"""Thousands of idle keep-alive connections against the real server.

Room: integration tests (hardening). 5,000 client connections each make one request and then
sit idle (keep-alive); meanwhile normal requests, proxied and local, must still be served. We
print navigator's RSS growth per idle connection (psutil) and assert only a generous bound.
A second test caps navigator's file descriptors far below the number of clients: accepts fail
with EMFILE, and the server must neither die nor spin, and must serve again once clients leave.

The test process raises its own RLIMIT_NOFILE soft limit towards the hard limit before starting
navigator, which inherits it; the limit is restored afterwards.
Must not touch: navigator internals.
"""

from __future__ import annotations

import resource
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    request,
    run_navigator,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(120)

IDLE_CONNECTIONS = 5_000
BATCH = 100
MAX_BYTES_PER_CONNECTION = 50 * 1024
PING = b"GET /a/ping HTTP/1.1\r\nHost: t\r\n\r\n"  # proxied: the tenant answers


def config_text(tmp_path: Path) -> str:
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  health_check:
    path: /up
    response:
      status: 200
      body: ok
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: 47000
    timeout: 5m
  tenants:
    - path: /a/
"""


@contextmanager
def raised_nofile(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if limit < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def nav(tmp_path: Path) -> Iterator[Navigator]:
    with raised_nofile(2 * IDLE_CONNECTIONS + 1000), \
            run_navigator(write_config(tmp_path, config_text(tmp_path))) as server:
        wait_until(lambda: request(server.port, "GET", "/a/pid").status == 200, 20,
                   interval=0.1, message="the tenant to answer")
        yield server


def open_idle(port: int, count: int, stack: ExitStack) -> list[socket.socket]:
    """`count` connections that each completed one request and now sit idle."""
    sockets: list[socket.socket] = []
    while len(sockets) < count:
        batch = [stack.enter_context(connect(port, timeout=30))
                 for _ in range(min(BATCH, count - len(sockets)))]
        for sock in batch:
            sock.sendall(PING)
        for sock in batch:
            assert Reader(sock).response().status == 200
        sockets += batch
    return sockets


def status_or_zero(port: int, path: str) -> int:
    try:
        return request(port, "GET", path, timeout=2).status
    except OSError:  # refused, reset or timed out while descriptors are short
        return 0


def rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


def test_idle_keepalive_connections_do_not_block_service(nav: Navigator) -> None:
    server = psutil.Process(nav.process.pid)
    with ExitStack() as stack:
        open_idle(nav.port, 200, stack)  # warm up allocator pools before the baseline
        before = rss(server)
        fds_before = server.num_fds()
        idle = open_idle(nav.port, IDLE_CONNECTIONS, stack)
        after = rss(server)
        per_connection = (after - before) / IDLE_CONNECTIONS
        print(f"\nnavigator RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB with "
              f"{IDLE_CONNECTIONS} more idle connections: {per_connection / 1024:.2f} KiB each; "
              f"fds {fds_before} -> {server.num_fds()}")
        assert server.num_fds() >= fds_before + IDLE_CONNECTIONS
        for i in range(20):
            resp = request(nav.port, "GET", f"/a/busy-{i}")
            assert (resp.status, resp.body) == (200, f"ok /a/busy-{i}".encode())
        for sock in (idle[0], idle[len(idle) // 2], idle[-1]):  # the idle ones still work
            sock.sendall(PING)
            assert Reader(sock).response().status == 200
        assert per_connection < MAX_BYTES_PER_CONNECTION
    wait_until(lambda: server.num_fds() < fds_before + 50, 30, interval=0.1,
               message="navigator to drop the closed connections")
    assert request(nav.port, "GET", "/a/pid").status == 200


def test_descriptor_exhaustion_is_survived(nav: Navigator) -> None:
    """With far fewer fds than clients, accepts fail (EMFILE): no crash, no busy loop, and
    service resumes when clients go away."""
    server = psutil.Process(nav.process.pid)
    used = server.num_fds()
    soft, hard = server.rlimit(psutil.RLIMIT_NOFILE)
    server.rlimit(psutil.RLIMIT_NOFILE, (used + 100, hard))
    try:
        with ExitStack() as stack:
            held = [stack.enter_context(connect(nav.port, timeout=5)) for _ in range(300)]
            assert len(held) == 300  # the kernel queue accepts them; navigator can't
            wait_until(lambda: server.num_fds() >= used + 95, 10, interval=0.05,
                       message="navigator to run out of descriptors")
            cpu = server.cpu_times()
            start = time.monotonic()
            wait_until(lambda: time.monotonic() - start > 1.0, 5, interval=0.1,
                       message="one second to pass")
            spent = sum(server.cpu_times()[:2]) - sum(cpu[:2])
            print(f"\nnavigator CPU while out of descriptors: {spent:.2f}s in 1s")
            assert spent < 0.9, "the accept loop spins while out of descriptors"
            assert server.is_running()
        # clients gone: navigator must serve again
        wait_until(lambda: status_or_zero(nav.port, "/a/back") == 200, 30,
                   interval=0.2, message="service to resume after the clients left")
    finally:
        server.rlimit(psutil.RLIMIT_NOFILE, (soft, hard))
    assert request(nav.port, "GET", "/a/pid").status == 200
