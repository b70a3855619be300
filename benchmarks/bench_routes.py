"""Route lookup cost in-process: `routing.route()` with 10 vs 1,000 tenants.

Room: benchmarks (routing). Run as `python benchmarks/bench_routes.py [--json]`; `run.py` runs
it in a fresh process on the proxy core for the `routes` rows. The end-to-end `routes`
scenario (wrk against two navigators) includes the whole request path, where a few
microseconds of lookup are hard to see on a noisy machine; this times the decision alone.

The configs are the ones the end-to-end scenario uses (tenants /t0000/ .. /t0999/, the last
`count` of them), without bot detection, and the requests are: a page of the last tenant
(→ ProxyTenant; nothing is started, `route()` is pure), the tenant path without its slash
(→ 302 from the synthesised slash redirects) and a path no tenant owns (→ 404). Figure: the
best of REPEATS timing loops, in microseconds per call (the minimum is the
least disturbed by other processes).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import configs
from benchmarks.servers import route_tenant_paths
from navigator.config.loader import load_config
from navigator.web.decision import RequestInfo
from navigator.web.routing import route
from navigator.web.snapshot import Snapshot, build_snapshot

TABLES = (10, 1000)
REQUESTS = {"tenant": "/t0999/page", "slash-redirect": "/t0999", "not-found": "/nope/a/b"}
LOOPS = 20_000
REPEATS = 5
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def snapshot(count: int, folder: Path) -> Snapshot:
    path = folder / f"navigator-{count}.yml"
    path.write_text(configs.navigator_tenants(
        folder, 3000, paths=route_tenant_paths(count), command="sh", args=["-c", "exit 1"],
        health_check="/up", start_port=20000))
    return build_snapshot(load_config(path, {}, cwd=folder))


def time_route(snap: Snapshot, path: str) -> float:
    """Microseconds per `route()` call: best of REPEATS loops of LOOPS calls."""
    req = RequestInfo(method="GET", path=path, query="", host="127.0.0.1",
                      peer_ip="127.0.0.1", user_agent=USER_AGENT)
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(LOOPS):
            route(snap, req)
        best = min(best, time.perf_counter() - started)
    return best / LOOPS * 1e6


def run() -> dict[str, dict[str, float]]:
    """{"10": {"tenant": µs, ...}, "1000": {...}}; the tables are timed interleaved."""
    with tempfile.TemporaryDirectory() as tmp:
        snaps = {count: snapshot(count, Path(tmp)) for count in TABLES}
    figures: dict[str, dict[str, float]] = {str(count): {} for count in TABLES}
    for name, path in REQUESTS.items():
        kinds = {count: type(route(snap, RequestInfo(
            method="GET", path=path, query="", host="127.0.0.1", peer_ip="127.0.0.1",
            user_agent=USER_AGENT))).__name__ for count, snap in snaps.items()}
        if len(set(kinds.values())) != 1:
            raise SystemExit(f"{path}: decisions differ between tables: {kinds}")
        for count, snap in snaps.items():
            figures[str(count)][name] = round(time_route(snap, path), 3)
    return figures


if __name__ == "__main__":
    result = run()
    if "--json" in sys.argv[1:]:
        print(json.dumps(result))
    else:
        for name in REQUESTS:
            small, large = (result[str(count)][name] for count in TABLES)
            print(f"route() {name:15} {TABLES[0]:>5} tenants {small:6.2f} µs   "
                  f"{TABLES[1]:>5} tenants {large:6.2f} µs   {(large - small) / small:+.1%}")
