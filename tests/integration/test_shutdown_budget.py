"""Shutdown fits its budget through the real server (issue 22 item 6): stop hooks that would
hang are killed at the default stop-hook timeout, tenants are stopped, navigator exits."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from tests.fixtures.apps.support import TREE, pid_alive
from tests.helpers import BACKEND_APP, request, run_navigator, wait_until

pytestmark = pytest.mark.timeout(90)

BUDGET = 12.0


def test_hanging_stop_hooks_are_killed_and_navigator_exits_within_budget(
        tmp_path: Path) -> None:
    server_hook, tenant_hook = tmp_path / "server-hook.pid", tmp_path / "tenant-hook.pid"
    config = tmp_path / "navigator.yml"
    # Neither hook sets a timeout and both would sleep for two minutes (with a grandchild).
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  limits:
    shutdown_timeout: {BUDGET:g}s
    stop_hook_timeout: 1s
hooks:
  server:
    stop:
      - command: {sys.executable}
        args: [{TREE}, {server_hook}]
  tenant:
    stop:
      - command: {sys.executable}
        args: [{TREE}, {tenant_hook}]
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
""")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/a/echo").status == 200
        tenant_pid = int(nav.wait_for_output(r"tenant a starting: pid (\d+)").group(1))
        # The platform's kill timeout is the budget plus a margin (fly.toml: 30 s + 5 s).
        assert nav.stop(timeout=BUDGET + 5) == 0
        output = nav.output()
    assert "shutting down: shutdown budget 12s = drain 4s + server stop hooks 1s + " \
           "tenant stop hooks 1s + tenant grace 5s" in output
    assert output.count("timed out after 1s: process tree killed") == 2, output
    for pidfile in (server_hook, tenant_hook):
        grandchild = int(pidfile.read_text())
        wait_until(lambda pid=grandchild: not pid_alive(pid), 5.0,  # type: ignore[misc]
                   message=f"hook grandchild {grandchild} gone")
    wait_until(lambda: not pid_alive(tenant_pid), 5.0, message="tenant process gone")
