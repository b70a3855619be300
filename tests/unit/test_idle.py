"""Machine idle state machine under a fake clock (reference section 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from navigator.config.runtime import IdleSettings, StampSettings
from navigator.tenants.hooks import HookResult
from navigator.tenants.idle import TRANSITIONS, FlyMachineAction, MachineIdle, Phase, make_action


@dataclass
class Timer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeClock:
    now: float = 1000.0
    timers: list[Timer] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(when, callback)
        self.timers.append(timer)
        return timer

    def armed(self) -> list[Timer]:
        return [t for t in self.timers if not t.cancelled]

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in sorted(self.armed(), key=lambda t: t.when):
            if timer.when <= self.now and not timer.cancelled:
                timer.cancelled = True
                timer.callback()


@dataclass
class Harness:
    clock: FakeClock
    idle: MachineIdle
    actions: list[str]
    hooks: list[str]
    hook_gate: dict[str, asyncio.Event]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def make(action: Literal["suspend", "stop"] = "suspend", *, ok: bool = True,
         count_websockets: bool = True, gate: tuple[str, ...] = ()) -> Harness:
    clock = FakeClock()
    actions: list[str] = []
    hooks: list[str] = []
    gates = {name: asyncio.Event() for name in gate}

    async def do_action() -> bool:
        actions.append(action)
        return ok

    async def run_hooks(which: Literal["idle", "resume"]) -> HookResult:
        hooks.append(which)
        if which in gates:
            await gates[which].wait()
        return HookResult(True)

    settings = IdleSettings(action, 10.0, count_websockets=count_websockets)
    idle = MachineIdle(settings, clock, do_action, run_hooks)
    return Harness(clock, idle, actions, hooks, gates)


def phase_of(h: Harness) -> Phase:
    return h.idle.phase


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_transition_table_covers_every_phase() -> None:
    assert set(TRANSITIONS) == set(Phase)
    for targets in TRANSITIONS.values():
        assert targets <= set(Phase)


def test_timer_armed_at_boot_fires_after_timeout() -> None:
    async def body() -> None:
        h = make()
        h.idle.start()
        assert len(h.clock.armed()) == 1
        h.clock.advance(9.9)
        await settle()
        assert h.actions == []
        h.clock.advance(0.2)
        await settle()
        assert h.hooks == ["idle"]
        assert h.actions == ["suspend"]
        assert phase_of(h) is Phase.SUSPENDED
    run(body)


def test_request_start_disarms_and_finish_rearms_from_finish_time() -> None:
    async def body() -> None:
        h = make()
        h.idle.start()
        h.clock.advance(5)
        h.idle.request_started()
        assert h.clock.armed() == []
        h.clock.advance(30)  # a long request is never cut off
        await settle()
        assert h.actions == []
        h.idle.request_finished()
        assert [t.when for t in h.clock.armed()] == [h.clock.now + 10]
        h.clock.advance(10)
        await settle()
        assert h.actions == ["suspend"]
    run(body)


def test_overlapping_requests_keep_machine_up_until_last_finishes() -> None:
    async def body() -> None:
        h = make()
        h.idle.start()
        h.idle.request_started()
        h.idle.request_started()
        h.idle.request_finished()
        assert h.clock.armed() == []
        h.idle.request_finished()
        assert len(h.clock.armed()) == 1
    run(body)


@pytest.mark.parametrize(("count", "expect_action"), [(True, False), (False, True)])
def test_websockets_count_only_when_configured(count: bool, expect_action: bool) -> None:
    async def body() -> None:
        h = make(count_websockets=count)
        h.idle.start()
        h.idle.request_started()
        h.idle.websocket_opened()
        h.idle.request_finished()  # connection taken over by the websocket
        h.clock.advance(20)
        await settle()
        assert bool(h.actions) is expect_action
    run(body)


def test_request_during_idle_hooks_cancels_the_action() -> None:
    async def body() -> None:
        h = make(gate=("idle",))
        h.idle.start()
        h.clock.advance(10)
        await settle()
        assert phase_of(h) is Phase.IDLE_HOOKS
        h.idle.request_started()
        h.idle.request_finished()
        h.hook_gate["idle"].set()
        await settle()
        assert h.actions == []
        assert phase_of(h) is Phase.ACTIVE
        assert len(h.clock.armed()) == 1
    run(body)


def test_resume_holds_requests_until_hooks_finish() -> None:
    async def body() -> None:
        h = make(gate=("resume",))
        h.idle.start()
        h.clock.advance(10)
        await settle()
        assert phase_of(h) is Phase.SUSPENDED
        h.idle.request_started()  # first request after the suspend
        assert h.idle.resuming
        first = asyncio.ensure_future(h.idle.wait_resumed())
        h.idle.request_started()
        second = asyncio.ensure_future(h.idle.wait_resumed())
        await settle()
        assert not first.done()
        assert not second.done()
        h.hook_gate["resume"].set()
        await settle()
        assert first.done()
        assert second.done()
        assert h.hooks == ["idle", "resume"]
        assert phase_of(h) is Phase.ACTIVE
        assert not h.idle.resuming
    run(body)


def test_failed_action_rearms_and_never_resumes() -> None:
    async def body() -> None:
        h = make(ok=False)
        h.idle.start()
        h.clock.advance(10)
        await settle()
        assert h.actions == ["suspend"]
        assert phase_of(h) is Phase.ACTIVE
        h.idle.request_started()
        assert not h.idle.resuming
        h.idle.request_finished()
        h.clock.advance(10)
        await settle()
        assert h.actions == ["suspend", "suspend"]
        assert h.hooks.count("resume") == 0
    run(body)


def test_stop_action_does_not_run_resume_hooks() -> None:
    async def body() -> None:
        h = make("stop")
        h.idle.start()
        h.clock.advance(10)
        await settle()
        assert h.actions == ["stop"]
        h.idle.request_started()
        await h.idle.wait_resumed()
        assert "resume" not in h.hooks
    run(body)


def test_disabled_settings_never_arm() -> None:
    clock = FakeClock()

    async def never() -> bool:
        raise AssertionError("action must not run")

    async def no_hooks(which: Literal["idle", "resume"]) -> HookResult:
        return HookResult(True)

    idle = MachineIdle(IdleSettings("", 10.0), clock, never, no_hooks)
    idle.start()
    idle.request_started()
    idle.request_finished()
    assert clock.armed() == []


def test_stop_cancels_timer_and_releases_waiters() -> None:
    async def body() -> None:
        h = make()
        h.idle.start()
        h.idle.stop()
        assert h.clock.armed() == []
        assert phase_of(h) is Phase.OFF
    run(body)


def test_fly_action_without_machine_identity_logs_and_fails(
        caplog: pytest.LogCaptureFixture) -> None:
    action = FlyMachineAction("suspend", "/nonexistent.sock", "", "")
    assert asyncio.run(action()) is False
    assert "FLY_APP_NAME" in caplog.text


def test_make_action_picks_fly_identity_from_stamp() -> None:
    action = make_action(IdleSettings("suspend", 1.0, fly_api_socket="/x.sock"),
                         StampSettings(app="app", machine_id="m1"), {}, asyncio.Event())
    assert isinstance(action, FlyMachineAction)
    assert (action.app, action.machine_id, action.verb) == ("app", "m1", "suspend")


def test_exit_action_sets_event() -> None:
    async def body() -> None:
        event = asyncio.Event()
        action = make_action(IdleSettings("exit", 1.0), StampSettings(), {}, event)
        assert await action() is True
        assert event.is_set()
    run(body)
