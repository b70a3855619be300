"""Cold start and added latency of the framework examples (examples/rails, django, fastapi).

    .venv/bin/python benchmarks/frameworks.py                 # all three
    .venv/bin/python benchmarks/frameworks.py fastapi -n 500

For each example: start navigator with the example's config (a private port and data
directory, as the tests do), then
- cold start: the first GET of <prefix>/up through navigator, from request to answer (the
  before_start hook that migrates, where the example has one, the process boot and the
  readiness probe);
- added latency: N GETs of <prefix>/up on one keep-alive connection through navigator and N
  directly to the tenant's port, alternating; median and p90 of each and their difference.

Needs what the tests need (Ruby with Debian's Rails for rails; the Python examples build
their venvs under build/example-venvs/).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import run_navigator
from tests.integration.frameworks import (
    EXAMPLES,
    example_config,
    example_venv,
    prepared_rails_app,
)


def timed_get(conn: http.client.HTTPConnection, path: str) -> float:
    start = time.perf_counter()
    conn.request("GET", path, headers={"Host": "127.0.0.1"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return elapsed * 1000


def measure(name: str, n: int, work: Path) -> dict[str, float]:
    env = {"PATH": os.environ["PATH"]}
    cwd = EXAMPLES / name
    if name == "rails":
        cwd = prepared_rails_app(work)
    else:
        env["PATH"] = f"{example_venv(name)}:{env['PATH']}"
    env[f"{name.upper()}_DATA"] = str(work / "data")
    config = example_config(name, work)
    path = f"/{name}/alpha/up"
    with run_navigator(config, env=env, cwd=cwd) as nav:
        via = http.client.HTTPConnection("127.0.0.1", nav.port, timeout=120)
        cold = timed_get(via, path)
        ready = nav.wait_for_output(rf"tenant {name}/alpha ready on port (\d+)")
        port = int(ready.group(1))
        direct = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(20):  # warm both paths (Rails' first requests are slower)
            timed_get(via, path)
            timed_get(direct, path)
        through: list[float] = []
        plain: list[float] = []
        for _ in range(n):
            through.append(timed_get(via, path))
            plain.append(timed_get(direct, path))
        via.close()
        direct.close()

    def p90(values: list[float]) -> float:
        return statistics.quantiles(values, n=10)[-1]

    return {"cold_ms": cold,
            "via_median": statistics.median(through), "direct_median": statistics.median(plain),
            "via_p90": p90(through), "direct_p90": p90(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("examples", nargs="*", default=["rails", "django", "fastapi"])
    parser.add_argument("-n", type=int, default=300, help="requests per path")
    args = parser.parse_args()
    print(f"{'example':8} {'cold':>8} {'direct p50':>11} {'via p50':>8} "
          f"{'added p50':>10} {'direct p90':>11} {'via p90':>8}   (ms)")
    for name in args.examples:
        with tempfile.TemporaryDirectory() as work:
            r = measure(name, args.n, Path(work))
        print(f"{name:8} {r['cold_ms']:8.0f} {r['direct_median']:11.2f} "
              f"{r['via_median']:8.2f} {r['via_median'] - r['direct_median']:10.2f} "
              f"{r['direct_p90']:11.2f} {r['via_p90']:8.2f}")


if __name__ == "__main__":
    main()
