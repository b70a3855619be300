"""A tenant's stale app pid file (Rails' PIDFILE): what it names is stopped only when it is
still this tenant's server, never an unrelated process that reused the pid."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from navigator.tenants.procs import kill_pidfile

pytestmark = pytest.mark.timeout(30)


def start_sleeper(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], cwd=cwd)


def test_a_pid_file_naming_an_unrelated_process_only_loses_the_file(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    stranger = start_sleeper(elsewhere)
    pidfile = root / "server.pid"
    pidfile.write_text(f"{stranger.pid}\n")
    try:
        asyncio.run(kill_pidfile(pidfile, root))
        assert not pidfile.exists()
        assert stranger.poll() is None  # still running
    finally:
        stranger.kill()
        stranger.wait(5)


def test_a_pid_file_naming_a_process_in_the_tenant_root_stops_it(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    stale_server = start_sleeper(root)
    pidfile = root / "server.pid"
    pidfile.write_text(f"{stale_server.pid}\n")
    try:
        asyncio.run(kill_pidfile(pidfile, root))
        assert not pidfile.exists()
        assert stale_server.wait(5) != 0
    finally:
        if stale_server.poll() is None:
            stale_server.kill()
            stale_server.wait(5)
