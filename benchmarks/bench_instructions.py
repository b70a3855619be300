"""Instructions per request on the hot path, counted by callgrind: repeatable on a busy machine.

Runs `bench_hotpath.py --run SCENARIO` under `valgrind --tool=callgrind`, counting only inside
`functools.reduce`, which drives the measured calls after a warm-up: start-up, imports and
warm-up are left out. Wall-clock benches move with the machine's load; these counts move only
with the code and the build (run it once per build; the lambda that reduce calls adds a few
hundred instructions per request, the same for every build).

    .venv/bin/python benchmarks/bench_instructions.py                # every scenario
    .venv/bin/python benchmarks/bench_instructions.py proxy-100b static-1k
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HOTPATH = Path(__file__).resolve().parent / "bench_hotpath.py"
SCENARIOS = ("proxy-100b", "proxy-100b-browser", "tenant-100b-browser", "proxy-64k",
             "proxy-100b-close", "static-1k", "redirect")
_COLLECTED = re.compile(rb"Collected : (\d+)")


def instructions(scenario: str, count: int) -> float:
    """Instructions callgrind counted per call of `scenario`."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         "--collect-atstart=no", "--toggle-collect=functools_reduce",
         sys.executable, str(HOTPATH), "--run", scenario, "--count", str(count)],
        capture_output=True, check=True, timeout=900)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total for {scenario}: {done.stderr[-500:]!r}")
    return int(found.group(1)) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    print("| scenario | instructions/request |")
    print("|---|---:|")
    for name in args.scenarios:
        print(f"| {name} | {instructions(name, args.count):,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
