"""Child processes: spawn, stream output, stop the whole tree, reap.

Room: supervisor I/O helper. Used by the supervisor (tenants, managed processes) and by hooks.
Nothing here decides *when* to start or stop; it only does it safely.

Invariants:
- every child gets its own session (`start_new_session=True`, so its own process group):
  signalling the group never reaches the server, and the orphan reaper can tell our direct
  children (session leaders) from adopted orphans. `process_group=0` is NOT used: it raises
  on uvloop;
- output is read in chunks and split into lines here (no StreamReader line limit), one log
  record per line on `navigator.output` with `source`/`stream` extras; the last TAIL_LINES
  lines are kept for crash reports;
- stop = SIGTERM to the group, wait `grace`, SIGKILL the group and any descendant that left
  it, then reap. A process already gone is not an error;
- a direct child is only ever reaped by the event loop (`await proc.wait()`); psutil is used
  to find and wait for grandchildren only (psutil waiting on a direct asyncio child makes the
  loop's own wait hang);
- memory limits use cgroups v1 or v2 (`navigator.tenants.cgroups`); the child joins its
  group in `preexec_fn`, before exec. Anything unavailable is logged once by the caller and
  skipped;
- every child dies with navigator, SIGKILL included: the preexec_fn ends by arming the
  parent-death signal (`navigator.tenants.lifeline`, caveats there). Spawn from the loop
  thread only;
- with a `ChildLedger`, each child is recorded (pid, start time, argv) until reaped, so the
  next navigator can stop what outlived a killed one (`navigator.tenants.leftovers`).

Must not touch: routing, sockets, configuration objects beyond what SpawnSpec carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from navigator.tenants.cgroups import MemoryCgroup
from navigator.tenants.leftovers import ChildLedger
from navigator.tenants.lifeline import child_setup

log = logging.getLogger("navigator.procs")
output_log = logging.getLogger("navigator.output")

TAIL_LINES = 20
READ_CHUNK = 65536
MAX_LINE = 64 * 1024
DRAIN_AFTER_EXIT = 1.0  # seconds to finish reading pipes still held open by grandchildren


@dataclass(frozen=True, slots=True)
class SpawnSpec:
    """Everything needed to start one child."""

    name: str  # log source
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | None = None
    user: str = ""
    group: str = ""
    cgroup: MemoryCgroup | None = None


class ChildProcess:
    """A running child: its asyncio process, output readers, tail and stop logic."""

    __slots__ = ("_readers", "_waiter", "cgroup", "name", "pid", "proc", "started", "tail")

    def __init__(self, name: str, proc: asyncio.subprocess.Process,
                 cgroup: MemoryCgroup | None) -> None:
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.started = time.monotonic()
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.cgroup = cgroup
        self._readers: list[asyncio.Task[None]] = []
        self._waiter: asyncio.Task[int] | None = None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def _start_readers(self) -> None:
        loop = asyncio.get_running_loop()
        for stream, label in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            if stream is not None:
                self._readers.append(loop.create_task(self._pump(stream, label)))

    async def _pump(self, stream: asyncio.StreamReader, label: str) -> None:
        pending = b""
        extra = {"source": self.name, "stream": label}
        while True:
            try:
                chunk = await stream.read(READ_CHUNK)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                if pending:
                    self._emit(pending, extra)
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._emit(raw, extra)
            if len(pending) > MAX_LINE:
                self._emit(pending, extra)
                pending = b""

    def _emit(self, raw: bytes, extra: dict[str, str]) -> None:
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        self.tail.append(line)
        output_log.info("%s", line, extra=extra)

    def wait(self) -> asyncio.Task[int]:
        """One shared task: the exit status once the child is reaped and its output read."""
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_task(self._wait())
        return self._waiter

    async def _wait(self) -> int:
        status = await self.proc.wait()
        if self._readers:
            _, pending = await asyncio.wait(self._readers, timeout=DRAIN_AFTER_EXIT)
            for task in pending:  # a grandchild still holds the pipe open
                task.cancel()
        return status

    async def stop(self, grace: float) -> int:
        """SIGTERM the group, wait `grace`, SIGKILL group and strays; returns the status."""
        waiter = self.wait()
        if self.returncode is not None:  # no group signal: the pid may be reused by now
            return await waiter
        strays = descendants(self.pid)
        signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), grace)
        if self.returncode is None:
            signal_group(self.pid, signal.SIGKILL)
        status = await waiter
        await _stop_strays(self.pid, strays, max(0.0, deadline - time.monotonic()))
        return status

    def describe_exit(self, status: int) -> str:
        if status < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-status).name}"
            return f"killed by signal {-status}"
        return f"exit status {status}"


def signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


KILL_WAIT = 2.0
"""Seconds to wait for SIGKILLed strays to disappear (bounded; they cannot refuse)."""


async def _stop_strays(pgid: int, strays: Sequence[psutil.Process], grace: float) -> None:
    """Kill what outlived the leader: group members and descendants that changed group."""
    signal_group(pgid, signal.SIGKILL)
    alive = []
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    if not alive:
        return
    if grace > 0:
        _, alive = await asyncio.to_thread(psutil.wait_procs, alive, grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if alive:  # SIGKILL is asynchronous: let them actually go before we report "stopped"
        await asyncio.to_thread(psutil.wait_procs, alive, KILL_WAIT)


async def spawn(spec: SpawnSpec, ledger: ChildLedger | None = None) -> ChildProcess:
    """Start a child in its own session with piped output; it dies with navigator even on
    SIGKILL (`navigator.tenants.lifeline`). With a ledger, the child is recorded until reaped so a
    later navigator can sweep what survives a crash. Must run on the event-loop thread.
    Raises OSError (or subprocess.SubprocessError / ValueError / KeyError) when it cannot
    be launched."""
    if not spec.argv:
        raise ValueError("empty command")
    ids = credentials(spec.user, spec.group) if (spec.user or spec.group) else None
    join = spec.cgroup.join_function() if spec.cgroup is not None else None
    preexec = child_setup(join, _drop_privileges(ids) if ids is not None else None)
    proc = await asyncio.create_subprocess_exec(
        *spec.argv, env=dict(spec.env), cwd=spec.cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=preexec)
    child = ChildProcess(spec.name, proc, spec.cgroup)
    child._start_readers()
    if ledger is not None:
        ledger.record(spec.name, proc.pid, spec.argv)
        pid = proc.pid
        child.wait().add_done_callback(lambda _: ledger.forget(pid))
    return child


def credentials(user: str, group: str) -> tuple[int | None, int | None]:
    """(uid, gid) to run as; the group defaults to the user's primary group."""
    uid: int | None = None
    gid: int | None = None
    if user:
        entry = pwd.getpwnam(user)
        uid, gid = entry.pw_uid, entry.pw_gid
    if group:
        gid = grp.getgrnam(group).gr_gid
    return uid, gid


def _drop_privileges(ids: tuple[int | None, int | None]) -> Callable[[], None]:
    """A preexec step: drop privileges (supplementary groups first: root's groups must not
    leak). Done here rather than with subprocess `user=`/`group=` because uvloop rejects
    those arguments and because the cgroup must be joined before the uid changes."""

    def drop() -> None:
        uid, gid = ids
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)

    return drop


class OrphanReaper:
    """Reaps adopted orphans when the server runs as PID 1 (plain Docker).

    A child we spawned is always a session leader (sid == pid) and is reaped by the event
    loop; an adopted orphan from a tenant's tree is not (double-forked daemons included), so
    only zombies whose session id differs from their pid are collected here. Polls every
    `interval` seconds instead of handling SIGCHLD, which the event loop owns.
    Every spawn in navigator must therefore use `start_new_session=True`.
    """

    __slots__ = ("_handle", "interval")

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if os.getpid() == 1 and self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self.reap_orphans()
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    @staticmethod
    def reap_orphans() -> int:
        reaped = 0
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return 0
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE or os.getsid(child.pid) == child.pid:
                    continue
                pid, _ = os.waitpid(child.pid, os.WNOHANG)
            except (psutil.Error, OSError):
                continue
            if pid:
                reaped += 1
        return reaped


async def kill_pidfile(path: Path, root: Path) -> None:
    """[legacy: Rails pid files] Stop what a stale app pid file names, then delete the file.

    A pid file outlives reboots and pid reuse, so the pid is stopped (SIGTERM, 100 ms,
    SIGKILL) only when it still looks like this tenant's server: a live process, not us,
    running in the tenant's root. Anything else only loses the file (Puma refuses to boot
    while the file names a live pid, whoever owns it)."""
    pid = _read_pid(path)
    if pid is not None and pid > 1 and pid != os.getpid() and _runs_in(pid, root):
        log.warning("stopping pid %d named by stale pid file %s", pid, path)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
    _unlink(path)


def _runs_in(pid: int, root: Path) -> bool:
    """True when `pid` is alive and its working directory is `root`."""
    try:
        return Path(psutil.Process(pid).cwd()).resolve() == root.resolve()
    except (psutil.Error, OSError):
        return False


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def spawn_failure_reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class OnceLog:
    """Log a given message key only once per owner (e.g. 'cgroups unavailable')."""

    seen: set[str] = field(default_factory=set)

    def warning(self, key: str, msg: str, *args: object) -> None:
        if key not in self.seen:
            self.seen.add(key)
            log.warning(msg, *args)
