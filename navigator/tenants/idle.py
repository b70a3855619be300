"""Machine idle: suspend or stop the whole machine when nothing happens (reference section 13).

Room: I/O (timers; the actions talk to the Fly API socket, run a command or end the server).
The clock, the action and the hook runner are injected, so the whole state machine runs under
a fake clock in unit tests.

Invariants:
- one phase field driven by a transition table (ACTIVE → IDLE_HOOKS → ACTING → SUSPENDED →
  RESUMING → ACTIVE; a request during IDLE_HOOKS aborts back to ACTIVE);
- at most one timer: armed at boot and whenever in-flight work drops to zero, disarmed by any
  request start; it fires `timeout` seconds after the last activity ended;
- before the action runs, requests that arrived during the idle hooks are re-checked;
- resume hooks run only after a *successful* suspend; every request that arrives while they
  run (the first one included) waits in `wait_resumed()`;
- health probes answered with a synthetic response are invisible here: the protocol simply
  does not call `request_started` for them, so a platform health checker never keeps the
  machine awake.

Must not touch: tenants, routing, configuration loading.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

from navigator.config.runtime import Hook, IdleSettings, StampSettings
from navigator.tenants.hooks import HookResult, run_hook

log = logging.getLogger("navigator.idle")

FLY_API_TIMEOUT = 10.0


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """The event loop satisfies this (`loop.time`, `loop.call_at`)."""

    def time(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


IdleAction = Callable[[], Awaitable[bool]]
"""Performs the idle action; True on success."""
HooksRunner = Callable[[Literal["idle", "resume"]], Awaitable[HookResult]]
"""Runs the server's idle/resume hook list of the *current* config."""


class Phase(enum.Enum):
    OFF = "off"
    ACTIVE = "active"
    IDLE_HOOKS = "idle_hooks"
    ACTING = "acting"
    SUSPENDED = "suspended"
    RESUMING = "resuming"


TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.OFF: frozenset({Phase.ACTIVE}),
    Phase.ACTIVE: frozenset({Phase.IDLE_HOOKS, Phase.OFF}),
    Phase.IDLE_HOOKS: frozenset({Phase.ACTING, Phase.ACTIVE, Phase.OFF}),
    Phase.ACTING: frozenset({Phase.SUSPENDED, Phase.ACTIVE, Phase.OFF}),
    Phase.SUSPENDED: frozenset({Phase.RESUMING, Phase.OFF}),
    Phase.RESUMING: frozenset({Phase.ACTIVE, Phase.OFF}),
}


class MachineIdle:
    """In-flight accounting plus the idle timer and the suspend/resume sequence."""

    __slots__ = ("_action", "_activity", "_clock", "_handle", "_hooks", "_last_quiet",
                 "_resumed", "_tasks", "in_flight", "phase", "settings", "websockets")

    def __init__(self, settings: IdleSettings, clock: Clock, action: IdleAction,
                 hooks_runner: HooksRunner) -> None:
        self.settings = settings
        self._clock = clock
        self._action = action
        self._hooks = hooks_runner
        self.phase = Phase.OFF
        self.in_flight = 0
        self.websockets = 0
        self._activity = 0  # bumped at every request start; detects requests during hooks
        self._last_quiet = clock.time()
        self._handle: Cancellable | None = None
        self._resumed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.settings.action != ""

    def start(self) -> None:
        """Arm the timer at boot (when an action is configured)."""
        if self.enabled and self.phase is Phase.OFF:
            self._set(Phase.ACTIVE)
            self._last_quiet = self._clock.time()
            self._arm()

    def stop(self) -> None:
        """Shutdown: disarm; pending hook/action tasks are cancelled."""
        self._disarm()
        if self.phase is not Phase.OFF:
            self._set(Phase.OFF)
        for task in list(self._tasks):
            task.cancel()
        self._release_waiters()

    def configure(self, settings: IdleSettings, action: IdleAction) -> None:
        """Reload: new timeout/action; the timer restarts from now."""
        self.settings = settings
        self._action = action
        if not self.enabled:
            self.stop()
        elif self.phase is Phase.OFF:
            self.start()
        elif self.phase is Phase.ACTIVE and not self.busy:
            self._last_quiet = self._clock.time()
            self._arm()

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or (self.settings.count_websockets and self.websockets > 0)

    # --- accounting (hot path: a few integer operations) --------------------------------------
    def request_started(self) -> None:
        self.in_flight += 1
        self._activity += 1
        if self._handle is not None:
            self._disarm()
        if self.phase is Phase.SUSPENDED:
            self._begin_resume()

    def request_finished(self) -> None:
        if self.in_flight > 0:
            self.in_flight -= 1
        self._quiet_check()

    def websocket_opened(self) -> None:
        self.websockets += 1
        self._activity += 1
        if self._handle is not None and self.settings.count_websockets:
            self._disarm()

    def websocket_closed(self) -> None:
        if self.websockets > 0:
            self.websockets -= 1
        self._quiet_check()

    @property
    def resuming(self) -> bool:
        return self._resumed is not None

    async def wait_resumed(self) -> None:
        """Hold a request while resume hooks run (returns at once otherwise)."""
        event = self._resumed
        if event is not None:
            await event.wait()

    # --- timer ---------------------------------------------------------------------------------
    def _quiet_check(self) -> None:
        if not self.busy:
            self._last_quiet = self._clock.time()
            if self.phase is Phase.ACTIVE and self._handle is None:
                self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._handle = self._clock.call_at(self._last_quiet + self.settings.timeout, self._fire)

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if self.phase is not Phase.ACTIVE or self.busy:
            return
        due = self._last_quiet + self.settings.timeout
        if due > self._clock.time():  # activity ended later than the timer assumed
            self._arm()
            return
        self._set(Phase.IDLE_HOOKS)
        self._spawn(self._go_idle())

    async def _go_idle(self) -> None:
        seen = self._activity
        log.info("machine idle for %gs: running idle hooks", self.settings.timeout)
        result = await self._hooks("idle")
        if not result.ok:
            log.warning("idle hooks failed; continuing with the idle action")
        if self._activity != seen or self.busy:
            log.info("request arrived during idle hooks: staying up")
            self._back_to_active()
            return
        self._set(Phase.ACTING)
        log.info("machine idle: performing %s", self.settings.action)
        try:
            ok = await self._action()
        except Exception:
            log.exception("idle action %s raised", self.settings.action)
            ok = False
        if ok and self.settings.action == "suspend":
            self._set(Phase.SUSPENDED)
            if self._activity != seen:  # a request slipped in while the API call ran
                self._begin_resume()
        else:
            if not ok:
                log.warning("idle action %s failed; timer re-armed", self.settings.action)
            self._back_to_active()

    def _back_to_active(self) -> None:
        self._set(Phase.ACTIVE)
        if not self.busy:
            self._last_quiet = self._clock.time()
            self._arm()

    # --- resume ----------------------------------------------------------------------------------
    def _begin_resume(self) -> None:
        self._set(Phase.RESUMING)
        self._resumed = asyncio.Event()
        self._spawn(self._resume())

    async def _resume(self) -> None:
        log.info("machine resumed: running resume hooks")
        try:
            await self._hooks("resume")
        finally:
            self._release_waiters()
            if self.phase is Phase.RESUMING:
                self._back_to_active()

    def _release_waiters(self) -> None:
        event, self._resumed = self._resumed, None
        if event is not None:
            event.set()

    # --- helpers ---------------------------------------------------------------------------------
    def _set(self, phase: Phase) -> None:
        if phase not in TRANSITIONS[self.phase]:
            raise RuntimeError(f"machine idle: {self.phase.value} -> {phase.value} not allowed")
        self.phase = phase

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# --- actions ---------------------------------------------------------------------------------

class FlyMachineAction:
    """POST /v1/apps/<app>/machines/<id>/<suspend|stop> to the Fly API over its Unix socket."""

    __slots__ = ("app", "machine_id", "socket_path", "timeout", "verb")

    def __init__(self, verb: Literal["suspend", "stop"], socket_path: str, app: str,
                 machine_id: str, timeout: float = FLY_API_TIMEOUT) -> None:
        self.verb = verb
        self.socket_path = socket_path
        self.app = app
        self.machine_id = machine_id
        self.timeout = timeout

    async def __call__(self) -> bool:
        if not self.app or not self.machine_id:
            log.error("idle %s needs FLY_APP_NAME and FLY_MACHINE_ID (not on Fly?): skipped",
                      self.verb)
            return False
        try:
            status = await asyncio.wait_for(self._post(), self.timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            log.error("Fly API %s failed: %s", self.verb, exc or type(exc).__name__)
            return False
        if 200 <= status < 300:
            log.info("Fly API %s accepted (%d)", self.verb, status)
            return True
        log.error("Fly API %s answered %d", self.verb, status)
        return False

    async def _post(self) -> int:
        reader, writer = await asyncio.open_unix_connection(self.socket_path)
        try:
            path = f"/v1/apps/{self.app}/machines/{self.machine_id}/{self.verb}"
            writer.write(f"POST {path} HTTP/1.1\r\nHost: flaps\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n".encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
        parts = status_line.split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ValueError(f"bad status line {status_line[:80]!r}")
        return int(parts[1])


class CommandAction:
    """Runs `server.idle.command` (a non-Fly host's own suspend/stop)."""

    __slots__ = ("argv", "env")

    def __init__(self, argv: tuple[str, ...], env: Mapping[str, str]) -> None:
        self.argv = argv
        self.env = env

    async def __call__(self) -> bool:
        if not self.argv:
            log.error("idle action 'command' has no command configured")
            return False
        return await run_hook(Hook(self.argv[0], self.argv[1:]), self.env)


class ExitAction:
    """Sets an event the server awaits to shut down gracefully."""

    __slots__ = ("event",)

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    async def __call__(self) -> bool:
        self.event.set()
        return True


def make_action(settings: IdleSettings, stamp: StampSettings, env: Mapping[str, str],
                exit_event: asyncio.Event) -> IdleAction:
    """The action for `server.idle.action` ('' → a no-op that reports failure)."""
    action = settings.action
    if action in ("suspend", "stop"):
        app = stamp.app or env.get("FLY_APP_NAME", "")
        machine = stamp.machine_id or env.get("FLY_MACHINE_ID", "")
        return FlyMachineAction("suspend" if action == "suspend" else "stop",
                                settings.fly_api_socket, app, machine)
    if action == "command":
        return CommandAction(settings.command, env)
    if action == "exit":
        return ExitAction(exit_event)
    return _no_action


async def _no_action() -> bool:
    return False

