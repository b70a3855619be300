"""`navigator restart NAME|PATH` against the real server over its control socket."""

from __future__ import annotations

import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from navigator.ops.control import control_path
from tests.helpers import BACKEND_APP, REPO, request, run_navigator

pytestmark = pytest.mark.timeout(90)


def write_config(root: Path) -> Path:
    config = root / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /sam/list1/
    - path: /other/
routes:
  reverse_proxies:
    - name: cable
      prefix: /cable/
      process:
        command: {sys.executable}
        args: [{BACKEND_APP}]
""")
    return config


def restart(config: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navigator", "restart", target, str(config)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, check=False)


def pid_of(port: int, prefix: str) -> int:
    response = request(port, "GET", f"{prefix}pid", timeout=30)
    assert response.status == 200
    return int(response.body)


def test_restart_by_path_and_by_name(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with run_navigator(config) as nav:
        socket_path = control_path(tmp_path / "navigator.pid")
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        first = pid_of(nav.port, "/sam/list1/")
        other = pid_of(nav.port, "/other/")
        done = restart(config, "/sam/list1")
        assert done.returncode == 0, done.stderr
        second = pid_of(nav.port, "/sam/list1/")
        assert second != first
        assert done.stdout.strip() == (f"navigator: restarted tenant sam/list1: pid {first} "
                                       f"-> {second}")
        assert pid_of(nav.port, "/other/") == other  # only the one named
        done = restart(config, "sam/list1")  # by name
        assert done.returncode == 0, done.stderr
        assert pid_of(nav.port, "/sam/list1/") not in (first, second)
        helper = pid_of(nav.port, "/cable/")  # an on-demand helper, by its route's path
        done = restart(config, "/cable/x")
        assert done.returncode == 0, done.stderr
        assert pid_of(nav.port, "/cable/") != helper
        nav.wait_for_output(r"control: restart /sam/list1")
    assert not socket_path.exists()  # removed at shutdown


def test_restart_refusals_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = restart(config, "sam/list1")
    assert done.returncode == 1
    assert "no control socket" in done.stderr  # no server running
    with run_navigator(config) as nav:
        done = restart(config, "nosuch")
        assert done.returncode == 1
        assert done.stderr.strip() == "navigator: no tenant named or routed at 'nosuch'"
        done = restart(config, "/nosuch/path")
        assert done.returncode == 1
        assert "no tenant named or routed at '/nosuch/path'" in done.stderr
        done = restart(config, "other")  # never started: nothing to restart
        assert done.returncode == 1
        assert "tenant other is stopped: nothing to restart" in done.stderr
        assert "other starting" not in nav.output()  # and the restart did not start it
