"""The measurements taken once per suite: tenant cold starts, config load, idle-connection RSS
and the in-process route lookup timing.

Room: benchmarks, measurement orchestration for figures that are not throughput runs. Each
runner starts what it needs in the workspace, measures, stops it again (by pid, through
`Workspace.stop`) and returns `Check`s with the issue-7 targets; the arithmetic lives in
`report`. A runner that cannot measure raises `servers.StartError`, `clients.ClientError`
or `OSError`; `run.py` turns that into a note.

Method notes:
- cold start: tenant i of navigator is requested once (fresh tenant each time, nothing to
  idle-stop); right before, the same tenant command is run standalone by the harness and
  polled every 0.5 ms until it answers. Overhead = navigator's time to the first answer minus
  the standalone boot-to-answer time, per interleaved pair; the median is the figure.
- idle RSS: fresh nginx and navigator on the proxy core; RSS after start, then after a few
  warm-up requests, then with N connections each holding one finished keep-alive request;
  the open descriptors of the server are counted too, to show the connections were still
  held when RSS was read.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import clients, servers
from benchmarks.measure import MIB, rss_bytes
from benchmarks.report import Check, pairwise_overheads, per_connection_kib, route_time_check
from benchmarks.servers import Service, Workspace

COLD_STARTS = 10
IDLE_CONNECTIONS = 10_000
COLD_LIMIT_MS = 50.0
CONFIG_LIMIT_MS = 200.0
START_RSS_LIMIT_MIB = 40.0
PER_CONNECTION_LIMIT_KIB = 10.0
CONFIG_SCRIPT = Path(__file__).resolve().parent / "bench_config.py"
ROUTES_SCRIPT = Path(__file__).resolve().parent / "bench_routes.py"


def cold_start(ws: Workspace, count: int = COLD_STARTS) -> list[Check]:
    setup = servers.start_navigator_cold(ws, count)
    boots: list[float] = []
    totals: list[float] = []
    try:
        for index in range(count):
            port = servers.free_port()
            started = time.perf_counter()
            alone = servers.spawn_tenant(ws, f"cold-standalone-{index}", setup.script, port)
            try:
                boots.append(clients.first_answer(f"http://127.0.0.1:{port}/up", started,
                                                  timeout=15.0))
            finally:
                ws.stop(alone)
            status, seconds = clients.timed_get(setup.base + servers.cold_path(index),
                                                timeout=30.0)
            if status != 200:
                raise clients.ClientError(f"cold start of tenant {index} answered {status}: "
                                          f"{servers.tail(setup.service.log, 3)}")
            totals.append(seconds)
    finally:
        ws.stop(setup.service)
    overheads = [o * 1e3 for o in pairwise_overheads(totals, boots)]
    ms = [t * 1e3 for t in totals]
    boot_ms = [b * 1e3 for b in boots]
    return [Check(
        "coldstart", f"first answer minus the tenant's own boot, median of {count}",
        statistics.median(overheads), "ms", COLD_LIMIT_MS,
        detail=f"through navigator median {statistics.median(ms):.1f} ms "
               f"(min {min(ms):.1f}, max {max(ms):.1f}); tenant alone median "
               f"{statistics.median(boot_ms):.1f} ms; overhead min {min(overheads):.1f}, "
               f"max {max(overheads):.1f} ms; tenant = sh script exec'ing nginx")]


def _bench_script(script: Path) -> str:
    """Run `script --json` in a fresh interpreter on the proxy core; its last stdout line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(servers.REPO), os.environ.get("PYTHONPATH", "")]))}
    argv = servers.pinned([sys.executable, str(script), "--json"], servers.PROXY_CORE)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env=env, cwd=servers.REPO)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise OSError(f"{script.name} exited {done.returncode}: "
                      f"{(done.stderr or done.stdout).strip()[-300:]}")
    return lines[-1]


def config_load() -> list[Check]:
    figures = json.loads(_bench_script(CONFIG_SCRIPT))
    median, first = figures["config_load_1000_tenants_ms"], \
        figures["config_load_1000_tenants_first_ms"]
    return [Check("config", "load_config, 1,000 tenants (first load of a fresh process)",
                  first, "ms", CONFIG_LIMIT_MS,
                  detail=f"median of 5 further loads (a reload) {median:.1f} ms; "
                         "showcase-like file: env template, rules, hooks")]


def route_lookup() -> list[Check]:
    figures = json.loads(_bench_script(ROUTES_SCRIPT))
    return [route_time_check(figures)]


@dataclass(frozen=True, slots=True)
class IdleFigures:
    rss_start: int  # right after the server listens
    rss_before: int  # after warm-up requests, no connection held
    rss_after: int  # with `connections` idle keep-alive connections held
    fds_added: int  # open descriptors gained while holding them
    connections: int
    seconds: float  # time to open them all


def _fds(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return total


def _settled_rss(service: Service, timeout: float = 3.0) -> int:
    """RSS once two readings 100 ms apart agree within 64 KiB (or at the deadline)."""
    deadline = time.monotonic() + timeout
    last = rss_bytes(service.pids())
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_bytes(service.pids())
        if abs(now - last) < 64 * 1024:
            return now
        last = now
    return last


def _hold_idle(service: Service, url: str, count: int) -> IdleFigures:
    rss_start = rss_bytes(service.pids())
    for _ in range(20):
        clients.timed_get(url, timeout=10.0)
    rss_before = _settled_rss(service)
    fds_before = _fds(service.pids())
    started = time.perf_counter()
    with clients.idle_connections(url, count):
        seconds = time.perf_counter() - started
        rss_after = _settled_rss(service)
        fds_added = _fds(service.pids()) - fds_before
    return IdleFigures(rss_start, rss_before, rss_after, fds_added, count, seconds)


def idle_rss(ws: Workspace, count: int = IDLE_CONNECTIONS) -> list[Check]:
    nginx, navigator = servers.start_static_pair(ws)
    path = "/1k.bin"
    try:
        ngx = _hold_idle(nginx, f"http://127.0.0.1:{nginx.port}{path}", count)
        nav = _hold_idle(navigator, f"http://127.0.0.1:{navigator.port}{path}", count)
    finally:
        ws.stop(navigator)
        ws.stop(nginx)
    for name, figures in (("nginx", ngx), ("navigator", nav)):
        if figures.fds_added < count * 0.95:  # the server dropped connections before the read
            raise clients.ClientError(f"{name} held only {figures.fds_added:,} of {count:,} "
                                      "idle connections when RSS was read")
    nav_kib = per_connection_kib(nav.rss_before, nav.rss_after, count)
    ngx_kib = per_connection_kib(ngx.rss_before, ngx.rss_after, count)
    return [
        Check("idle-rss", "RSS at start (static-file config, listening, no request yet)",
              nav.rss_start / MIB, "MiB", START_RSS_LIMIT_MIB, nginx=ngx.rss_start / MIB,
              detail=f"after 20 warm-up requests: navigator {nav.rss_before / MIB:.1f} MiB, "
                     f"nginx {ngx.rss_before / MIB:.1f} MiB (master + worker)"),
        Check("idle-rss", f"RSS per idle keep-alive connection ({count:,} held)", nav_kib,
              "KiB", PER_CONNECTION_LIMIT_KIB, nginx=ngx_kib,
              detail=f"navigator {nav.rss_before / MIB:.1f} → {nav.rss_after / MIB:.1f} MiB, "
                     f"+{nav.fds_added:,} fds, opened in {nav.seconds:.1f} s; nginx "
                     f"{ngx.rss_before / MIB:.1f} → {ngx.rss_after / MIB:.1f} MiB, "
                     f"+{ngx.fds_added:,} fds; one GET {path} on each"),
    ]
