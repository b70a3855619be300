"""CPU per access-log line in-process: `AccessLogger.log` plus its batched writes.

    .venv/bin/python benchmarks/bench_accesslog_lines.py            # /dev/null and a pipe
    .venv/bin/python benchmarks/bench_accesslog_lines.py --lines 200000

Room: benchmarks. The part of the access log that the end-to-end `bench_accesslog.py` cannot
separate from the run-to-run noise of a shared machine: one `log(AccessRecord(...))` per line
(the record, formatting, buffering) and one write per 64 KiB batch through the never-blocking
stdout writer, to /dev/null (written directly) and to a pipe that a `cat` drains (the
non-blocking path of a container's log pipe). The timer never fires, as under load: batches
go out by size. Best of five runs of `--lines` lines, CPU time of this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

if __package__ in (None, ""):  # run as a script: make `navigator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from navigator.ops.accesslog import AccessLogger, AccessRecord

RECORD: tuple[Any, ...] = (
    1_700_000_000.5, "203.0.113.9", "", "GET", "/files/100b", "HTTP/1.1", 200, 100, "",
    0.0012, "", "wrk/4.1", "", "", "proxy", "", "", "", "")


class _NoTimer:
    def cancel(self) -> None:
        pass


class IdleLoop:
    """A loop whose timers never fire: batches are written when they reach 64 KiB."""

    def call_later(self, delay: float, callback: Callable[[], object], /) -> _NoTimer:
        return _NoTimer()


def per_line(target: IO[bytes], lines: int) -> float:
    logger = AccessLogger(target, True, None, loop=IdleLoop())
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(lines):
            logger.log(AccessRecord(*RECORD))
        logger.flush()
        best = min(best, (time.process_time() - start) / lines)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    options = parser.parse_args(argv)
    with open(os.devnull, "wb") as devnull:
        print(f"| /dev/null | {per_line(devnull, options.lines):.2f} µs/line |")
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert cat.stdin is not None
    try:
        print(f"| drained pipe | {per_line(cat.stdin, options.lines):.2f} µs/line |")
    finally:
        cat.stdin.close()
        cat.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
