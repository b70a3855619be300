"""A tenant's hard `memory_limit` for real: the tenant joins its own memory cgroup (v1 on
this machine, v2 where the unified hierarchy has the memory controller), allocating past the
limit gets it OOM-killed, navigator logs that, and the next request starts a fresh process.
Skipped, saying why, when not root or when no writable memory hierarchy exists."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import psutil
import pytest

from navigator.tenants.cgroups import MemoryCgroup, detect
from tests.helpers import BACKEND_APP, request, run_navigator, wait_until

pytestmark = pytest.mark.timeout(90)

LIMIT_MB = 64


def usable_layout() -> str:
    """"" when a memory cgroup can be made here, else why not."""
    if os.geteuid() != 0:
        return "memory cgroups need root"
    layout = detect()
    if layout is None:
        return "no cgroup hierarchy with the memory controller"
    try:
        probe = MemoryCgroup.create("navigator-test-probe", 1 << 30, layout)
    except OSError as exc:
        return f"cgroup {layout.parent} not writable: {exc}"
    probe.remove()
    return ""


def test_tenant_over_its_memory_limit_is_oom_killed_and_restarted(tmp_path: Path) -> None:
    reason = usable_layout()
    if reason:
        pytest.skip(reason)
    layout = detect()
    assert layout is not None
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /hog/
      memory_limit: {LIMIT_MB}M
""")
    with run_navigator(config) as nav:
        pid = int(request(nav.port, "GET", "/hog/pid", timeout=30).body)
        groups = [line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                  if (":memory:" in line if layout.version == 1 else line.startswith("0::"))]
        assert len(groups) == 1
        assert "/navigator/hog." in groups[0]  # joined before exec
        group = next(layout.parent.glob("hog.*"))
        limit = int((group / layout.files.limit).read_text().split()[0])
        assert limit == LIMIT_MB << 20
        small = request(nav.port, "GET", "/hog/hog?n=8")  # well inside the limit
        assert small.status == 200
        big = request(nav.port, "GET", f"/hog/hog?n={LIMIT_MB * 2}", timeout=30)
        assert big.status == 502  # the backend died before answering
        nav.wait_for_output(r"tenant hog was killed by the OOM killer")
        nav.wait_for_output(r"tenant hog exited unexpectedly.*killed by SIGKILL")
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        wait_until(lambda: not group.exists(), 10, message="the OOM-killed group removed")
        again = request(nav.port, "GET", "/hog/pid", timeout=30)  # a fresh process
        assert again.status == 200
        assert int(again.body) != pid
    assert not list(layout.parent.glob("hog.*"))  # nothing left after shutdown
