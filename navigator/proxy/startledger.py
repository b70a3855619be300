"""When another machine may be asked to start, and how often to look whether it runs.

Room: PURE (no asyncio, no clock: the caller passes `now`). `proxy.machinestart` consults it
before every start call; the unit tests drive it with plain numbers.

Invariants:
- a start call that failed blocks further calls for that machine for `backoff` seconds
  (requests still wait and watch DNS meanwhile: a machine being deployed comes up by itself);
- a call that was accepted clears the back-off, so a machine that stops again later is
  started again on the next miss;
- the ledger holds only failed machines, and forgets them once their back-off is over, so it
  stays as small as the set of machines failing right now.
"""

from __future__ import annotations

from collections.abc import Iterator

POLL_FIRST = 0.05  # seconds before looking again whether a starting machine runs
POLL_CAP = 0.25  # a started machine is seen at most this late (one DNS query per look)


class StartLedger:
    """Per machine key: until when a failed start call may not be repeated."""

    __slots__ = ("_blocked_until",)

    def __init__(self) -> None:
        self._blocked_until: dict[tuple[str, str], float] = {}

    def may_start(self, key: tuple[str, str], now: float) -> bool:
        until = self._blocked_until.get(key)
        if until is None:
            return True
        if now >= until:
            del self._blocked_until[key]
            return True
        return False

    def record(self, key: tuple[str, str], accepted: bool, now: float,
               backoff: float) -> None:
        """The outcome of a start call (`backoff` from the current config)."""
        if accepted:
            self._blocked_until.pop(key, None)
        else:
            self._blocked_until[key] = now + backoff

    def blocked(self) -> int:
        """How many machines are in back-off (for logs and tests)."""
        return len(self._blocked_until)


def poll_delays(first: float = POLL_FIRST, cap: float = POLL_CAP) -> Iterator[float]:
    """Pauses between looks at a starting machine: first, 2x, 4x ... then `cap` forever."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


def start_accepted(status: int) -> bool:
    """The Machines API took the start: 2xx. (A 409/412 "already started" or "being
    replaced" is not an acceptance: the caller keeps watching DNS either way.)"""
    return 200 <= status < 300
