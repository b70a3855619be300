"""Leftovers of a killed navigator (pure decisions) and the parent-death preexec step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from navigator.tenants.leftovers import (
    ChildLedger,
    LedgerFile,
    Leftover,
    LiveProcess,
    RecordedProcess,
    find_leftovers,
    looks_like_navigator,
    previous_still_running,
    read_state,
    state_path,
)
from navigator.tenants.lifeline import child_setup

pytestmark = pytest.mark.timeout(30)

NAV = RecordedProcess(100, 1000.0, "navigator")
TENANT = RecordedProcess(200, 1010.0, "a", ("/bin/sh", "-c", "server & wait"))
STATE = LedgerFile(NAV, (TENANT,))


def pids(found: list[Leftover]) -> list[int]:
    return sorted(item.process.pid for item in found)


@pytest.mark.parametrize(("live", "expected"), [
    pytest.param([LiveProcess(200, 200, 1010.0)], [200], id="recorded child still running"),
    pytest.param([LiveProcess(200, 200, 1010.03)], [200], id="start time within a tick"),
    pytest.param([LiveProcess(201, 200, 1011.0)], [201], id="session member, leader gone"),
    pytest.param([LiveProcess(200, 200, 1010.0), LiveProcess(201, 200, 1011.0),
                  LiveProcess(202, 201, 1012.0)], [200, 201], id="leader and member only"),
    pytest.param([LiveProcess(200, 200, 5000.0), LiveProcess(201, 200, 5001.0)], [],
                 id="pid reused: neither it nor its session"),
    pytest.param([LiveProcess(201, 200, 900.0)], [], id="member older than the leader"),
    pytest.param([LiveProcess(300, 300, 1020.0)], [], id="unrelated process"),
])
def test_find_leftovers(live: list[LiveProcess], expected: list[int]) -> None:
    assert pids(find_leftovers(STATE, live)) == expected


def test_find_leftovers_spares_the_sweeper_and_its_session() -> None:
    live = [LiveProcess(200, 200, 1010.0), LiveProcess(201, 200, 1011.0),
            LiveProcess(202, 200, 1012.0)]
    found = find_leftovers(STATE, live, protect_pids=frozenset({201}))
    assert pids(found) == [200, 202]
    assert find_leftovers(STATE, live, protect_sid=200) == []


def test_previous_navigator_identified_by_pid_and_start_time() -> None:
    assert previous_still_running(STATE, [LiveProcess(100, 100, 1000.0)])
    assert not previous_still_running(STATE, [LiveProcess(100, 100, 3000.0)])  # pid reused
    assert not previous_still_running(STATE, [])


@pytest.mark.parametrize(("cmdline", "started", "recorded", "expected"), [
    (("/usr/bin/python3", "-m", "navigator", "--config", "x.yml"), 1.0, None, True),
    (("/app/.venv/bin/python", "/app/.venv/bin/navigator", "x.yml"), 1.0, None, True),
    (("sleep", "60"), 1.0, None, False),
    (("vim", "navigator.yml"), 1.0, None, False),
    (("sleep", "60"), 1000.0, NAV, True),  # the state file names this very process
    (("/usr/bin/python3", "-m", "navigator"), 2000.0, NAV, False),  # same pid, other start
    (("/usr/bin/python3", "-m", "navigator"), 2000.0, TENANT, True),  # record of another pid
])
def test_looks_like_navigator(cmdline: tuple[str, ...], started: float,
                              recorded: RecordedProcess | None, expected: bool) -> None:
    assert looks_like_navigator(100, cmdline, started, recorded) is expected


def test_ledger_records_until_reaped_and_removes_its_file(tmp_path: Path) -> None:
    path = state_path(tmp_path / "navigator.pid")
    assert path.name == "navigator.pid.children"
    ledger = ChildLedger(path)
    ledger.open()
    state = read_state(path)
    assert state is not None
    assert state.navigator.pid == os.getpid()
    assert state.children == ()
    child = subprocess.Popen(["sleep", "30"])
    try:
        ledger.record("a", child.pid, ("sleep", "30"))
        state = read_state(path)
        assert state is not None
        assert [(c.name, c.pid, c.argv) for c in state.children] == [
            ("a", child.pid, ("sleep", "30"))]
        ledger.forget(child.pid)
        state = read_state(path)
        assert state is not None
        assert state.children == ()
    finally:
        child.kill()
        child.wait(10)
    ledger.close()
    assert not path.exists()


def test_ledger_close_leaves_another_servers_file(tmp_path: Path) -> None:
    path = tmp_path / "nav.pid.children"
    ledger = ChildLedger(path)
    ledger.open()
    other = msgspec.json.encode(LedgerFile(RecordedProcess(1, 1.0, "navigator")))
    path.write_bytes(other)
    ledger.close()
    assert path.read_bytes() == other


GET_PDEATHSIG = """
import ctypes, sys
value = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
print(value.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_child_setup_arms_the_parent_death_signal_after_other_steps(tmp_path: Path) -> None:
    marker = tmp_path / "step-ran"
    done = subprocess.run([sys.executable, "-c", GET_PDEATHSIG], capture_output=True,
                          text=True, timeout=20, check=True,
                          preexec_fn=child_setup(lambda: marker.write_text("x"), None))
    assert done.stdout.strip() == str(int(signal.SIGKILL))
    assert marker.exists()


RACE = """
import os, subprocess, sys
from navigator.tenants.lifeline import child_setup
step = child_setup()  # built here: it expects this process as the parent
if os.fork() == 0:  # a child of another parent runs it, as if navigator had died
    proc = subprocess.Popen(["sleep", "30"], preexec_fn=step)
    print(proc.wait(), flush=True)
    os._exit(0)
os.wait()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_child_whose_parent_is_already_gone_kills_itself_before_exec() -> None:
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True,
                          timeout=20, check=True)
    assert done.stdout.strip() == str(-signal.SIGKILL)
