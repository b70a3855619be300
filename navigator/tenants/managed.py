"""Managed processes (reference section 15.1): started at boot, restarted, stopped last.

Room: I/O (processes, timers). Owned by the supervisor, which calls `apply` at boot and at
every reload and `stop_all` at shutdown after the tenants are gone.

Invariants:
- identity is the `name`; on reload removed names stop, new names start, and a changed
  definition under the same name is restarted (the reference leaves it running: a defect);
- `start_delay` delays that one process without blocking the others;
- `auto_restart` restarts after a NON-zero exit only, with a growing delay (1 s doubling,
  capped at 30 s, reset after a run of 60 s) and a restart counter; a process stopped on
  purpose is never restarted;
- the Vector log shipper (`logging.vector`) is one more managed process, first in the list,
  and its stale socket file is removed before each start.

Must not touch: tenants, routing, hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Mapping
from pathlib import Path

from navigator.config.runtime import Config, ManagedProcess
from navigator.tenants.leftovers import ChildLedger
from navigator.tenants.procs import ChildProcess, SpawnSpec, spawn, spawn_failure_reason
from navigator.tenants.tenantstate import SupervisorPolicy, describe_stop

log = logging.getLogger("navigator.supervisor")

VECTOR_NAME = "vector"


class ManagedState(enum.Enum):
    WAITING = "waiting"  # start_delay or restart back-off
    RUNNING = "running"
    EXITED = "exited"  # ended and not to be restarted
    STOPPING = "stopping"
    STOPPED = "stopped"


class ManagedRecord:
    __slots__ = ("child", "definition", "restarts", "state", "stop_socket", "task")

    def __init__(self, definition: ManagedProcess, stop_socket: str = "") -> None:
        self.definition = definition
        self.state = ManagedState.WAITING
        self.child: ChildProcess | None = None
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None
        self.stop_socket = stop_socket  # Vector: remove this stale socket before each start


def definitions(config: Config) -> list[tuple[ManagedProcess, str]]:
    """Configured processes, with the Vector shipper first when logging asks for it."""
    result: list[tuple[ManagedProcess, str]] = []
    vector = config.logging.vector
    names = {process.name for process in config.managed_processes}
    if vector.enabled and vector.config and VECTOR_NAME not in names:
        result.append((ManagedProcess(VECTOR_NAME, "vector", ("--config", vector.config),
                                      auto_restart=True), vector.socket))
    result.extend((process, "") for process in config.managed_processes)
    return result


def restart_delay(previous: float, run_time: float, policy: SupervisorPolicy) -> float:
    """Next restart delay: doubles from restart_first up to restart_cap; a long run resets."""
    if run_time >= policy.restart_reset_after or previous <= 0:
        return policy.restart_first
    return min(policy.restart_cap, previous * 2)


class ManagedProcesses:
    """All managed processes of the server, by name."""

    def __init__(self, environ: Mapping[str, str], policy: SupervisorPolicy,
                 ledger: ChildLedger | None = None) -> None:
        self._environ = environ
        self._policy = policy
        self._ledger = ledger
        self._records: dict[str, ManagedRecord] = {}

    async def apply(self, config: Config) -> None:
        """Boot and reload: start new names, stop removed ones, restart changed ones."""
        wanted = definitions(config)
        names = {definition.name for definition, _ in wanted}
        for name in [n for n in self._records if n not in names]:
            await self._stop(self._records.pop(name), self._policy.stop_grace)
        for definition, socket in wanted:
            record = self._records.get(definition.name)
            if record is not None and record.definition == definition:
                continue
            if record is not None:
                log.info("managed process %s changed: restarting", definition.name)
                await self._stop(record, self._policy.stop_grace)
            record = ManagedRecord(definition, socket)
            self._records[definition.name] = record
            record.task = asyncio.get_running_loop().create_task(self._run(record))

    async def stop_all(self, grace: float) -> None:
        records = list(self._records.values())
        self._records.clear()
        await asyncio.gather(*(self._stop(r, grace) for r in records), return_exceptions=True)

    def status(self) -> list[dict[str, object]]:
        return [{"name": name, "state": r.state.value,
                 "pid": r.child.pid if r.child is not None else None, "restarts": r.restarts}
                for name, r in self._records.items()]

    async def _run(self, record: ManagedRecord) -> None:
        definition = record.definition
        loop = asyncio.get_running_loop()
        if definition.start_delay > 0:
            await asyncio.sleep(definition.start_delay)
        delay = 0.0
        while record.state is ManagedState.WAITING:
            if record.stop_socket:
                _remove_stale(record.stop_socket)
            began = loop.time()
            status = await self._run_once(record)
            if _state(record) is not ManagedState.RUNNING:
                return  # stopped on purpose
            if status == 0 or not definition.auto_restart:
                record.state = ManagedState.EXITED
                return
            delay = restart_delay(delay, loop.time() - began, self._policy)
            record.restarts += 1
            record.state = ManagedState.WAITING
            log.warning("managed process %s will restart in %gs (restart #%d)",
                        definition.name, delay, record.restarts)
            await asyncio.sleep(delay)

    async def _run_once(self, record: ManagedRecord) -> int:
        definition = record.definition
        env = {**self._environ, **dict(definition.env)}
        spec = SpawnSpec(name=definition.name, argv=(definition.command, *definition.args),
                         env=env, cwd=definition.working_dir)
        record.state = ManagedState.RUNNING
        try:
            child = await spawn(spec, self._ledger)
        except (OSError, ValueError) as exc:
            log.error("managed process %s could not be started: %s", definition.name,
                      spawn_failure_reason(exc))
            return 127
        record.child = child
        log.info("managed process %s started: pid %d", definition.name, child.pid)
        status = await child.wait()
        record.child = None
        if _state(record) is ManagedState.RUNNING:
            log.warning("managed process %s exited: %s%s", definition.name,
                        child.describe_exit(status),
                        "".join(f"\n  | {line}" for line in child.tail) if status else "")
        return status

    async def _stop(self, record: ManagedRecord, grace: float) -> None:
        previous = record.state
        record.state = ManagedState.STOPPING
        child = record.child
        if child is not None:
            log.info("stopping managed process %s (pid %d)", record.definition.name, child.pid)
            status = await child.stop(grace)
            log.info("managed process %s %s", record.definition.name,
                     describe_stop(status, child.describe_exit(status)))
        task = record.task
        if task is not None and not task.done():
            if previous is not ManagedState.RUNNING or child is None:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        record.state = ManagedState.STOPPED


def _state(record: ManagedRecord) -> ManagedState:
    """Re-read after an await (keeps type checkers from narrowing across suspension)."""
    return record.state


def _remove_stale(path: str) -> None:
    with contextlib.suppress(OSError):
        Path(path).unlink()
