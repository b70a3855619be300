"""Process CPU time and memory, read straight from /proc.

Room: benchmarks, measurement only. Reads /proc/<pid>/stat and /proc/<pid>/status of the pids
it is given; never signals, starts or stops anything.

CPU is utime+stime in clock ticks (usually 10 ms), so a run must burn at least a few hundred
ticks for the per-request figure to mean anything; 2-5 s runs at full load do. A pid that has
gone away counts as zero rather than failing the run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of the given processes (not their children), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: split after the last ")".
        fields = raw[raw.rindex(b")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return ticks / CLOCK_TICKS


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size summed over the given processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass(frozen=True, slots=True)
class Usage:
    """What one measured run cost the proxy processes."""

    cpu_seconds: float
    rss_start: int
    rss_end: int
    rss_peak: int
    wall_seconds: float

    @property
    def cpu_percent(self) -> float:
        """Share of one core the proxy used during the run (100 = saturated)."""
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def rss_growth(self) -> int:
        return max(0, self.rss_peak - self.rss_start)


class UsageMeter:
    """Samples CPU before/after and RSS every `interval` seconds in a background thread.

    `pids` is a callable so that processes which fork workers (nginx) are re-read at start.
    Use as a context manager around the load; read `.usage` afterwards.
    """

    def __init__(self, pids: Callable[[], list[int]], interval: float = 0.05) -> None:
        self._pids_source = pids
        self._pids: list[int] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_start = 0.0
        self._rss_start = 0
        self._rss_peak = 0
        self._started = 0.0
        self.usage: Usage | None = None

    def __enter__(self) -> UsageMeter:
        self._pids = self._pids_source()
        self._cpu_start = cpu_seconds(self._pids)
        self._rss_start = self._rss_peak = rss_bytes(self._pids)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self._rss_peak = max(self._rss_peak, rss_bytes(self._pids))

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss_end = rss_bytes(self._pids)
        self.usage = Usage(
            cpu_seconds=cpu_seconds(self._pids) - self._cpu_start,
            rss_start=self._rss_start,
            rss_end=rss_end,
            rss_peak=max(self._rss_peak, rss_end),
            wall_seconds=wall,
        )
