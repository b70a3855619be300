"""What a killed navigator left behind: recorded while running, stopped at the next start.

Room: I/O (one small state file, /proc via psutil, signals) around PURE decisions
(`find_leftovers`, `previous_still_running`, `looks_like_navigator`), unit-tested on plain
data. Used by the server (sweep at start-up, ledger for the supervisor), by procs (record and
forget children) and by the CLI (`-s`, `status`: is the pid file's process navigator?).

Why: the parent-death signal (`navigator.tenants.lifeline`) kills navigator's direct children
when it dies, but not their descendants (a shell wrapper's server, a daemonised worker). Those keep
their ports, and the next navigator would allocate other ports beside them.

Invariants:
- the state file is `<pid_file>.children`, JSON: navigator's own pid and start time, then one
  entry per live tenant or managed process (name, pid, start time, argv). It is rewritten
  (temp file + rename) at every spawn and reap, and removed at a clean shutdown;
- a process is identified by (pid, start time) — psutil's `create_time`, to the kernel's
  clock tick — never by pid alone (pids are reused). A leftover is: a recorded child still
  running with its recorded start time, or a member of a recorded child's session (every
  child is a session leader) started after it. If the recorded pid now belongs to a process
  with another start time, the pid and its session are someone else's and are left alone.
  The command line is logged but not required to match: servers rename themselves (puma,
  gunicorn), and (pid, start time) is already unique;
- nothing is swept while the navigator that wrote the file still runs (two servers sharing a
  pid file), nor in the sweeping server's own session;
- stop = SIGTERM, wait `grace`, SIGKILL, then one more pass for what forked meanwhile;
- `-s reload|stop` signals the pid file's process only when it is navigator: the state file
  names it (pid and start time), or its command line runs `navigator`.

Must not touch: tenants' configuration, routing, the event loop (the sweep is synchronous;
the server runs it in a thread before it starts anything).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import psutil

log = logging.getLogger("navigator.leftovers")

STATE_SUFFIX = ".children"
START_TOLERANCE = 0.05  # seconds; create_time is exact to a clock tick (10 ms)
SWEEP_GRACE = 3.0
KILL_WAIT = 2.0


class RecordedProcess(msgspec.Struct, frozen=True):
    pid: int
    started: float  # psutil create_time (seconds since the epoch)
    name: str = ""
    argv: tuple[str, ...] = ()


class LedgerFile(msgspec.Struct, frozen=True):
    navigator: RecordedProcess
    children: tuple[RecordedProcess, ...] = ()


@dataclass(frozen=True, slots=True)
class LiveProcess:
    """What /proc says about one running process."""

    pid: int
    sid: int
    started: float
    cmdline: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Leftover:
    process: LiveProcess
    owner: RecordedProcess  # the recorded child it is, or whose session it belongs to


def state_path(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.name + STATE_SUFFIX)


# --- pure decisions ------------------------------------------------------------------------------
def same_start(recorded: float, live: float) -> bool:
    return abs(recorded - live) <= START_TOLERANCE


def previous_still_running(state: LedgerFile, live: Iterable[LiveProcess]) -> bool:
    """True when the navigator that wrote `state` is alive (same pid AND start time)."""
    me = state.navigator
    return any(p.pid == me.pid and same_start(me.started, p.started) for p in live)


def find_leftovers(state: LedgerFile, live: Sequence[LiveProcess], *,
                   protect_pids: frozenset[int] = frozenset(),
                   protect_sid: int = -1) -> list[Leftover]:
    """Recorded children still running, and the members of their sessions (see module)."""
    by_pid = {p.pid: p for p in live}
    found: dict[int, Leftover] = {}
    for entry in state.children:
        leader = by_pid.get(entry.pid)
        if leader is not None and not same_start(entry.started, leader.started):
            continue  # the pid was reused: neither it nor its session is ours
        for proc in live:
            if proc.pid in found or proc.pid in protect_pids or proc.sid == protect_sid:
                continue
            if proc.pid == entry.pid or (
                    proc.sid == entry.pid and proc.started >= entry.started - START_TOLERANCE):
                found[proc.pid] = Leftover(proc, entry)
    return list(found.values())


def looks_like_navigator(pid: int, cmdline: Sequence[str], started: float,
                         recorded: RecordedProcess | None) -> bool:
    """Is this process a navigator? The state file's record decides when it names this pid;
    otherwise the command line must run `navigator` (`python -m navigator`, the console
    script), which an unrelated process reusing a stale pid does not."""
    if recorded is not None and recorded.pid == pid:
        return same_start(recorded.started, started)
    return any(os.path.basename(arg) == "navigator" for arg in cmdline[:4])


# --- the ledger (the running server's state file) ----------------------------------------------
def read_state(path: Path) -> LedgerFile | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=LedgerFile)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError) as exc:
        log.warning("ignoring unreadable state file %s: %s", path, exc)
        return None


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class ChildLedger:
    """This server's state file: itself plus every recorded child, rewritten on change."""

    __slots__ = ("_children", "_me", "_warned", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        pid = os.getpid()
        self._me = RecordedProcess(pid, start_time(pid) or 0.0, "navigator")
        self._children: dict[int, RecordedProcess] = {}
        self._warned = False

    def open(self) -> None:
        """Write the file with no children yet (a failure is logged, not fatal)."""
        self._write()

    def record(self, name: str, pid: int, argv: Sequence[str]) -> None:
        started = start_time(pid)
        if started is None:
            return  # already gone
        self._children[pid] = RecordedProcess(pid, started, name, tuple(argv))
        self._write()

    def forget(self, pid: int) -> None:
        if self._children.pop(pid, None) is not None:
            self._write()

    def close(self) -> None:
        """Clean shutdown: remove the file, or keep the entries of anything still running."""
        if self._children:
            self._write()
            return
        state = read_state(self.path)
        if state is None or state.navigator == self._me:  # not another server's file
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _write(self) -> None:
        data = msgspec.json.encode(LedgerFile(self._me, tuple(self._children.values())))
        temp = self.path.with_name(self.path.name + ".tmp")
        try:
            temp.write_bytes(data)
            os.replace(temp, self.path)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot write the state file %s: %s (children of a killed "
                            "navigator will not be swept at the next start)", self.path, exc)


# --- the start-up sweep --------------------------------------------------------------------------
def scan() -> list[LiveProcess]:
    """Every running process (zombies are dead already: they hold no memory or port)."""
    result = []
    for proc in psutil.process_iter(["create_time", "cmdline", "status"]):
        try:
            sid = os.getsid(proc.pid)
        except OSError:
            continue
        info = proc.info
        if info.get("create_time") is None or info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        result.append(LiveProcess(proc.pid, sid, info["create_time"],
                                  tuple(info.get("cmdline") or ())))
    return result


def stop_leftovers(path: Path, grace: float = SWEEP_GRACE) -> int:
    """Stop what a previous, killed navigator left running; returns how many were stopped."""
    state = read_state(path)
    if state is None:
        return 0
    if not state.children:  # nothing was running: no need to scan every process
        with contextlib.suppress(OSError):
            path.unlink()
        return 0
    live = scan()
    if state.navigator.pid != os.getpid() and previous_still_running(state, live):
        log.warning("navigator pid %d (state file %s) is still running: leaving its "
                    "processes alone", state.navigator.pid, path)
        return 0
    protect = frozenset({os.getpid(), os.getppid()})
    own_sid = os.getsid(0)
    found = find_leftovers(state, live, protect_pids=protect, protect_sid=own_sid)
    if found:
        for item in found:
            log.warning("stopping %s left by navigator pid %d (killed?): pid %d%s, %s",
                        _describe_owner(item), state.navigator.pid, item.process.pid,
                        _ports_text(item.process.pid), " ".join(item.process.cmdline)[:200])
        _terminate([item.process for item in found], grace)
        again = find_leftovers(state, scan(), protect_pids=protect, protect_sid=own_sid)
        if again:  # forked while we were stopping the others
            _terminate([item.process for item in again], 0.0)
        log.warning("stopped %d leftover process(es) of navigator pid %d", len(found),
                    state.navigator.pid)
    with contextlib.suppress(OSError):
        path.unlink()
    return len(found)


def _describe_owner(item: Leftover) -> str:
    owner = item.owner
    if item.process.pid == owner.pid:
        return f"process {owner.name!r}"
    return f"a process in the session of {owner.name!r} (pid {owner.pid})"


def _ports_text(pid: int) -> str:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        return ""
    ports = sorted({c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr})
    return f" holding port {', '.join(map(str, ports))}" if ports else ""


def _terminate(processes: Sequence[LiveProcess], grace: float) -> None:
    """SIGTERM, wait `grace`, SIGKILL; only processes whose start time still matches."""
    handles = []
    for item in processes:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(item.pid)
            if same_start(item.started, proc.create_time()):
                handles.append(proc)
    if grace > 0:
        for proc in handles:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        _, handles = psutil.wait_procs(handles, grace)
    for proc in handles:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(handles, KILL_WAIT)


# --- is the pid file's process navigator? ---------------------------------------------------------
def identify(pid: int, pid_file: Path) -> tuple[bool, str]:
    """(is navigator, what it is) for the pid read from `pid_file`; raises psutil.NoSuchProcess
    when the process is gone."""
    proc = psutil.Process(pid)
    try:
        cmdline = tuple(proc.cmdline())
    except psutil.AccessDenied:
        cmdline = ()
    state = read_state(state_path(pid_file))
    recorded = state.navigator if state is not None else None
    verdict = looks_like_navigator(pid, cmdline, proc.create_time(), recorded)
    return verdict, " ".join(cmdline)[:200] or proc.name()
