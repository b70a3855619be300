"""Progress of a long benchmark run on stderr: which scenario, which round, time left.

Room: benchmarks, reporting. Counts measured runs (one proxy, one round) against the planned
number and estimates the time left linearly from the runs done (probes, warm-ups and one-shots
make the real end somewhat later). The clock is injected so the arithmetic is testable.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def duration(seconds: float | None) -> str:
    """`1h02m`, `4m05s` or `12s`; `?` when unknown."""
    if seconds is None:
        return "?"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Measured runs done out of planned, with elapsed time and an estimate of what is left."""

    def __init__(self, planned: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.planned = planned
        self.done = 0
        self._clock = clock
        self._started = clock()

    def step(self) -> None:
        """One run finished (or failed: it took its time all the same)."""
        self.done += 1

    def drop(self, runs: int) -> None:
        """Runs that will not happen (a proxy skipped or failed)."""
        self.planned = max(self.done, self.planned - runs)

    def elapsed(self) -> float:
        return self._clock() - self._started

    def remaining(self) -> float | None:
        if not self.done:
            return None
        return self.elapsed() / self.done * (self.planned - self.done)

    def status(self) -> str:
        return (f"{self.done}/{self.planned} runs, elapsed {duration(self.elapsed())}, "
                f"eta {duration(self.remaining())}")
