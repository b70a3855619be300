"""Starting another machine: the back-off ledger (pure, plain numbers) and the shared bring-up
(`MachineStarts`, with fake "does it run" looks and start calls: no DNS, no sockets)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from navigator.proxy.machinestart import MachineStarts
from navigator.proxy.startledger import StartLedger, poll_delays, start_accepted

pytestmark = pytest.mark.timeout(30)
KEY = ("app", "m1")


# --- the ledger ------------------------------------------------------------------------------
def test_failed_start_backs_off_then_allows_again() -> None:
    ledger = StartLedger()
    assert ledger.may_start(KEY, 100.0)
    ledger.record(KEY, False, 100.0, backoff=10.0)
    assert not ledger.may_start(KEY, 105.0)
    assert ledger.may_start(("app", "m2"), 105.0)  # per machine
    assert ledger.may_start(KEY, 110.0)
    assert ledger.blocked() == 0  # forgotten once the back-off is over


def test_accepted_start_clears_the_back_off() -> None:
    ledger = StartLedger()
    ledger.record(KEY, False, 0.0, backoff=10.0)
    ledger.record(KEY, True, 1.0, backoff=10.0)
    assert ledger.may_start(KEY, 1.0)


def test_poll_delays_grow_to_a_cap() -> None:
    assert list(itertools.islice(poll_delays(0.05, 0.5), 6)) == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


@pytest.mark.parametrize(("status", "accepted"), [(200, True), (202, True), (409, False),
                                                   (412, False), (500, False)])
def test_start_accepted(status: int, accepted: bool) -> None:
    assert start_accepted(status) is accepted


# --- the shared bring-up ---------------------------------------------------------------------
class FakeMachine:
    """Runs once started (after `boot` looks), unless the start call fails."""

    def __init__(self, *, running: bool = False, accept: bool = True, boot: int = 2) -> None:
        self.running = running
        self.accept = accept
        self.boot = boot
        self.looks = 0
        self.starts = 0

    async def look(self, deadline: float) -> bool:
        self.looks += 1
        if self.starts and self.accept and self.boot > 0:
            self.boot -= 1
            self.running = self.boot == 0
        return self.running

    async def start(self, deadline: float) -> bool:
        self.starts += 1
        return self.accept


async def _bring_up_many(machine: FakeMachine, starts: MachineStarts, count: int,
                         budget: float = 5.0, backoff: float = 10.0) -> list[bool]:
    tasks = [starts.bring_up(KEY, machine.look, machine.start, timeout=budget, backoff=backoff)
             for _ in range(count)]
    return list(await asyncio.gather(*tasks))


def test_concurrent_requests_share_one_start() -> None:
    async def main() -> None:
        machine = FakeMachine()
        starts = MachineStarts(asyncio.get_running_loop())
        assert await _bring_up_many(machine, starts, 20) == [True] * 20
        assert machine.starts == 1
        assert starts.start_calls == 1

    asyncio.run(main())


def test_a_running_machine_is_not_started() -> None:
    async def main() -> None:
        machine = FakeMachine(running=True)
        starts = MachineStarts(asyncio.get_running_loop())
        assert await _bring_up_many(machine, starts, 3) == [True] * 3
        assert machine.starts == 0

    asyncio.run(main())


def test_failed_start_ends_false_and_is_not_repeated_during_back_off() -> None:
    async def main() -> None:
        machine = FakeMachine(accept=False)
        starts = MachineStarts(asyncio.get_running_loop())
        assert await _bring_up_many(machine, starts, 3, budget=0.3) == [False] * 3
        assert machine.starts == 1
        assert await _bring_up_many(machine, starts, 1, budget=0.2) == [False]
        assert machine.starts == 1  # backing off: the second bring-up only looked
        assert machine.looks > 2

    asyncio.run(main())


def test_a_look_that_raises_ends_the_bring_up_false() -> None:
    async def broken(deadline: float) -> bool:
        raise RuntimeError("boom")

    async def main() -> None:
        starts = MachineStarts(asyncio.get_running_loop())
        task = starts.bring_up(KEY, broken, broken, timeout=1.0, backoff=1.0)
        assert await task is False

    asyncio.run(main())


def test_close_cancels_bring_ups_under_way() -> None:
    async def never(deadline: float) -> bool:
        return False

    async def main() -> None:
        starts = MachineStarts(asyncio.get_running_loop())
        task = starts.bring_up(KEY, never, never, timeout=60.0, backoff=1.0)
        await asyncio.sleep(0)
        await starts.close()
        assert task.cancelled()

    asyncio.run(main())


def test_accepted_start_that_never_runs_backs_off_too() -> None:
    async def main() -> None:
        machine = FakeMachine(boot=10**6)  # accepted, never running
        starts = MachineStarts(asyncio.get_running_loop())
        assert await _bring_up_many(machine, starts, 2, budget=0.2) == [False] * 2
        assert await _bring_up_many(machine, starts, 1, budget=0.1) == [False]
        assert machine.starts == 1

    asyncio.run(main())


def test_running_clears_the_back_off() -> None:
    async def main() -> None:
        machine = FakeMachine(boot=1)
        starts = MachineStarts(asyncio.get_running_loop())
        starts.ledger.record(KEY, False, -100.0, backoff=1.0)  # an old failure, expired
        assert await _bring_up_many(machine, starts, 1) == [True]
        assert starts.ledger.blocked() == 0

    asyncio.run(main())
