"""On-demand helper processes behind a reverse-proxy route, for real: the first request
starts the process and waits for it, the process stops when idle, a WebSocket keeps it up."""

from __future__ import annotations

import random
import signal
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import BACKEND_APP, Reader, connect, request, run_navigator, wait_until

pytestmark = pytest.mark.timeout(90)

IDLE = 1.5  # seconds: the helper's idle_timeout


def write_config(root: Path, helper_env: str = "START_DELAY: \"0.3\"",
                 route: bool = True, idle: float = IDLE) -> Path:
    config = root / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
hooks:
  tenant:
    start:
      - command: touch
        args: ["{root}/hooked-${{name}}"]
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /app/
routes:
  reverse_proxies:
    - name: {"cable" if route else "unused"}
      prefix: {"/cable/" if route else "/unused/"}
      strip_path: true
      websocket: true
      headers:
        X-Helper: "yes"
      process:
        command: {sys.executable}
        args: [{BACKEND_APP}]
        env:
          {helper_env}
        health_check: /up
        idle_timeout: {idle}s
""")
    return config


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_first_request_starts_the_helper_and_idle_stops_it(tmp_path: Path) -> None:
    with run_navigator(write_config(tmp_path)) as nav:
        assert "cable starting" not in nav.output()  # nothing runs before the first request
        first = request(nav.port, "GET", "/cable/echo?x=1", timeout=30)
        assert first.status == 200  # the request waited for the start, then was relayed
        assert b'"target": "/echo?x=1"' in first.body  # strip_path applies
        assert b'["X-Helper", "yes"]' in first.body  # the route's headers apply
        nav.wait_for_output(r"tenant cable ready on port \d+")
        pid = int(request(nav.port, "GET", "/cable/pid").body)
        assert alive(pid)
        assert request(nav.port, "GET", "/app/pid", timeout=30).status == 200  # a tenant
        wait_until((tmp_path / "hooked-app").exists, 10, message="the tenant's start hook")
        assert not (tmp_path / "hooked-cable").exists()  # default tenant hooks: not a helper's
        wait_until(lambda: not alive(pid), IDLE + 15, message="the idle helper to stop")
        nav.wait_for_output(r"stopping tenant cable \(idle\)")
        again = request(nav.port, "GET", "/cable/pid", timeout=30)  # starts a fresh one
        assert again.status == 200
        assert int(again.body) != pid


def test_open_websocket_keeps_the_helper_running(tmp_path: Path) -> None:
    with run_navigator(write_config(tmp_path)) as nav, connect(nav.port, 30) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /cable/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert reader.response().status == 101
        pid = int(request(nav.port, "GET", "/cable/pid").body)
        # Several idle timeouts pass while the socket is quiet: the helper must stay. The
        # stop would be logged; waiting for a line that must not come is bounded by the
        # round trips below, each of which also shows the tunnel still works.
        for round_trip in range(4):
            payload = b"ping-%d" % round_trip
            sock.sendall(payload)
            assert reader.read_exactly(len(payload)) == payload
            with pytest.raises(AssertionError):
                nav.wait_for_output(r"stopping tenant cable", timeout=IDLE)
        assert alive(pid)
        sock.close()
        wait_until(lambda: not alive(pid), IDLE + 15, message="the helper to stop after the "
                   "socket closed")


def test_reload_replaces_a_changed_helper_and_stops_a_removed_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, idle=300)  # no idle stop: only the reload stops it
    with run_navigator(config) as nav:
        first = int(request(nav.port, "GET", "/cable/pid", timeout=30).body)
        write_config(tmp_path, helper_env='MARK: "two"', idle=300)  # its env changed
        nav.process.send_signal(signal.SIGHUP)
        nav.wait_for_output(r"tenant cable changed: rolling restart of 1 process", 15)
        wait_until(lambda: not alive(first), 15, message="the old helper to drain and stop")
        second = int(request(nav.port, "GET", "/cable/pid", timeout=30).body)
        assert second != first
        assert request(nav.port, "GET", "/cable/env?name=MARK").body == b"two"
        write_config(tmp_path, helper_env='MARK: "two"', route=False, idle=300)  # route gone
        nav.process.send_signal(signal.SIGHUP)
        wait_until(lambda: nav.output().count("configuration reloaded") >= 2, 15,
                   message="second reload")
        nav.wait_for_output(r"tenant cable removed: draining its processes", 15)
        wait_until(lambda: not alive(second), 15, message="the removed helper to stop")
        assert request(nav.port, "GET", "/cable/pid").status == 404
