"""`python benchmarks/run.py [--quick] [--only 100b,close,...]`: navigator vs nginx vs Caddy.

Room: benchmarks, CLI and run order. Starts the backends and every proxy once (only those the
chosen scenarios need), runs the one-shot measurements (config load and cold starts first,
idle-connection RSS last, each on processes of its own), and for each throughput scenario runs
the proxies interleaved (order rotated each round), collects `Sample`s and writes the report
(stdout + benchmarks/results/). A proxy that cannot start (navigator while the server is being
written) is skipped with a note instead of failing the suite; a one-shot that fails becomes a
FAILED note. Everything started is stopped in `finally`, by pid.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import chart, clients, measure, oneshots, pools, report, scenarios, servers, wrk
from benchmarks.progress import Progress
from benchmarks.scenarios import Scenario
from benchmarks.servers import Ports, Proxy, Workspace

PROXIES = ("nginx", "caddy", "navigator", "floor")
FLOOR_SCENARIOS = frozenset({"100b", "64k"})  # where the floor relay takes part
ROUTE_TENANTS = (10, 1000)  # navigator-10-tenants, navigator-1000-tenants (report.ROUTE_TABLES)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs, no warm-up")
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ",".join(
        [*(s.name for s in scenarios.SCENARIOS), *scenarios.ONESHOTS]))
    parser.add_argument("--proxies", default=",".join(PROXIES),
                        help="comma-separated subset of " + ",".join(PROXIES))
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per run (default 3 for proxy scenarios, 2 for the others;"
                        " wrk rounds to whole seconds)")
    parser.add_argument("--no-save", action="store_true", help="print only, write no files")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp workspace (configs, logs) for inspection")
    options = parser.parse_args(argv)
    options.rounds = options.rounds or (1 if options.quick else 3)
    if options.quick and options.duration is None:
        options.duration = 2.0
    options.warmup = not options.quick
    return options


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _calibration(iterations: int = 2_000_000) -> str:
    """CPU time of a fixed pure-Python loop (best of 3): this VM's speed for Python moved
    4x between two days with the same code, and nginx's much less, so a ratio is only
    comparable across runs together with this figure."""
    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        total = 0
        for i in range(iterations):
            total += i
        best = min(best, time.process_time() - began)
    return f"Python loop {best / iterations * 1e9:.0f} ns/iteration"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def start_proxies(ws: Workspace, ports: Ports | None, wanted: list[str], routes: bool,
                  rep: report.Report) -> list[Proxy]:
    """The proxies under test; without `ports` (no backends needed) only the route-lookup
    navigators, which are started only for the routes scenario."""
    starters: list[tuple[str, Callable[[], Proxy]]] = []
    if ports is not None:
        starters += [
            ("nginx", lambda: servers.start_nginx_proxy(ws, ports)),
            ("caddy", lambda: servers.start_caddy_proxy(ws, ports)),
            ("navigator", lambda: servers.start_navigator_proxy(ws, ports)),
            ("navigator-tenant", lambda: servers.start_navigator_tenant(ws)),
            ("floor", lambda: servers.start_floor_proxy(ws, ports)),
        ]
    if routes:
        starters += [(f"navigator-{count}-tenants",
                      functools.partial(servers.start_navigator_routes, ws, count))
                     for count in ROUTE_TENANTS]
    proxies: list[Proxy] = []
    for name, start in starters:
        if name.split("-")[0] not in wanted:
            continue
        try:
            proxies.append(start())
            if name.endswith("-tenants"):
                rss = measure.rss_bytes(proxies[-1].service.pids()) / measure.MIB
                rep.notes.append(f"routes: {name} RSS after start {rss:.1f} MiB")
        except servers.StartError as exc:
            first = str(exc).splitlines()
            note = f"SKIPPED {name}: did not start — {first[0]}"
            detail = " | ".join(line.strip() for line in first[-3:] if line.strip())
            rep.notes.append(f"{note} (log tail: {detail})" if len(first) > 1 else note)
            print(f"bench: {note}\n{exc}", file=sys.stderr, flush=True)
    return proxies


def targets(scenario: Scenario, proxies: list[Proxy]) -> list[tuple[str, Proxy, str]]:
    """(label, proxy, base URL) for every proxy that takes part in the scenario."""
    chosen = []
    for proxy in proxies:
        url = proxy.urls.get(scenario.kind)
        if url is None:
            continue
        label = proxy.name
        if proxy.name == "floor" and scenario.name not in FLOOR_SCENARIOS:
            continue  # a keep-alive measuring stick, not a server (benchmarks/floor.py)
        if proxy.name == "navigator-tenant":
            if scenario.kind == "static":
                label = "navigator"
            elif not scenario.tenant:
                continue
        chosen.append((label, proxy, url))
    return chosen


def cold_start(proxies: list[Proxy], rep: report.Report) -> None:
    for proxy in proxies:
        if proxy.name != "navigator-tenant":
            continue
        try:
            status, seconds = clients.timed_get(proxy.urls["proxy"] + "/100b", timeout=30)
        except (OSError, clients.ClientError) as exc:
            rep.notes.append(f"navigator-tenant cold start failed: {exc}")
            continue
        rep.notes.append(f"navigator-tenant cold start (first request, tenant nginx started "
                         f"by navigator): {seconds * 1e3:.0f} ms, status {status}")


ROUTES_IN_PROCESS = "routing.route() timed in-process (bench_routes.py), 10 vs 1,000 tenants"


def run_oneshot(name: str, ws: Workspace, rep: report.Report) -> None:
    """One one-shot measurement (`routes` = the in-process half of the routes scenario)."""
    runners: dict[str, Callable[[], list[report.Check]]] = {
        "coldstart": lambda: oneshots.cold_start(ws),
        "config": oneshots.config_load,
        "idle-rss": lambda: oneshots.idle_rss(ws),
        "routes": oneshots.route_lookup,
        "pools": lambda: pools.pool_checks(ws),
    }
    print(f"bench: {name}: {scenarios.ONESHOTS.get(name, ROUTES_IN_PROCESS)}",
          file=sys.stderr, flush=True)
    try:
        checks = runners[name]()
    except (servers.StartError, clients.ClientError, OSError, ValueError,
            subprocess.SubprocessError) as exc:
        rep.notes.append(f"FAILED {name}: {type(exc).__name__}: {exc}")
        print(f"bench:   {name} failed: {exc}", file=sys.stderr, flush=True)
        return
    rep.checks.extend(checks)
    for check in checks:
        value = "-" if check.value is None else f"{check.value:.2f}"
        print(f"bench:   {check.figure}: {value} {check.unit} (target {check.target})",
              file=sys.stderr, flush=True)


def run_scenario(scenario: Scenario, proxies: list[Proxy], options: argparse.Namespace,
                 rep: report.Report, dead: set[str], progress: Progress, place: str) -> None:
    """Probe, then run every participating proxy `options.rounds` times, interleaved.

    `dead` collects proxies that did not answer a probe at all; they are skipped from then on.
    `place` ("3/10") and `progress` are for the progress lines on stderr.
    """
    active = []
    planned = targets(scenario, proxies)
    for label, proxy, url in planned:
        if proxy.name in dead:
            continue
        if not proxy.service.alive():
            dead.add(proxy.name)
            rep.notes.append(f"FAILED {proxy.name}: process exited "
                             f"({proxy.service.process.returncode}) before {scenario.name}: "
                             f"{servers.tail(proxy.service.log, 3)}")
            continue
        problem, fatal = scenarios.probe(scenario, url)
        if problem:
            rep.notes.append(f"SKIPPED {scenario.name}/{label}: probe {url}{scenario.path} "
                             f"{problem}" + ("; not measured further" if fatal else ""))
            if fatal:
                dead.add(proxy.name)
            continue
        active.append((label, proxy, url))
    progress.drop((len(planned) - len(active)) * options.rounds)
    print(f"bench: [{place}] {scenario.name}: {scenario.description} "
          f"[{', '.join(label for label, _, _ in active)}]; {progress.status()}",
          file=sys.stderr, flush=True)
    failed: set[str] = set()
    seconds = options.duration or scenario.default_seconds
    for round_ in range(1, options.rounds + 1):
        shift = (round_ - 1) % max(1, len(active))
        for label, proxy, url in active[shift:] + active[:shift]:
            if label in failed:
                progress.drop(1)
                continue
            try:
                if options.warmup and round_ == 1 and scenario.warm_up:
                    scenarios.warm_up(scenario, url)
                sample = scenarios.run_once(scenario, label, proxy.service, url, round_,
                                            seconds)
            except (wrk.WrkError, clients.ClientError, OSError) as exc:
                failed.add(label)
                rep.notes.append(f"FAILED {scenario.name}/{label}: {exc}")
                progress.step()
                continue
            rep.samples.append(sample)
            progress.step()
            print(f"bench:   [{place}] round {round_}/{options.rounds} {label:17} "
                  f"{sample.throughput:12,.1f} {sample.unit}  cpu "
                  f"{sample.cpu_us_per_op or 0:8.1f} µs/{sample.op}  ({progress.status()})",
                  file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    chosen, singles = scenarios.by_name([n for n in options.only.split(",") if n]) \
        if options.only else (list(scenarios.SCENARIOS), list(scenarios.ONESHOTS))
    wanted = [p for p in options.proxies.split(",") if p]
    if "navigator" not in wanted:
        singles = []  # every one-shot measures navigator (nginx only as the yardstick)
    routes = any(s.kind == "routes" for s in chosen) and "navigator" in wanted
    classic = any(s.kind != "routes" for s in chosen)
    started = time.monotonic()
    missing = servers.ensure_tools()
    if "wrk" in missing or "nginx" in missing:
        print("bench: wrk and nginx are required (load generator and backend)", file=sys.stderr)
        return 2
    if "caddy" in missing:
        wanted = [p for p in wanted if p != "caddy"]
    servers.raise_fd_limit()
    if servers.cores_available():
        os.sched_setaffinity(0, {servers.LOAD_CORE})
    stamp = datetime.now(UTC)
    rep = report.Report(meta={
        "started": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "calibration": _calibration(),
        "versions": "; ".join([_version([sys.executable, "-m", "navigator", "--version"]),
                               _version(["nginx", "-v"]), _version(["caddy", "version"]),
                               _version(["wrk", "--version"]),
                               f"Python {platform.python_version()}"]),
        "mode": f"{options.rounds} round(s) x "
                + (f"{options.duration:g} s" if options.duration else "3 s (proxy) / 2 s (other)")
                + (", 1 s warm-up before c1000 and routes" if options.warmup else ", no warm-up"),
        "pinning": f"proxy on core {servers.PROXY_CORE}, wrk + backends + harness on core "
                   f"{servers.LOAD_CORE}" if servers.cores_available() else "not pinned",
        "scenarios": {**{s.name: s.description for s in chosen},
                      **{name: scenarios.ONESHOTS[name] for name in singles}},
    })
    if "caddy" in missing:
        rep.notes.append("SKIPPED caddy: not installed")
    if not servers.cores_available():
        rep.notes.append("WARNING: fewer than 2 cores or no taskset: nothing is pinned")
    ws = Workspace(keep=options.keep)
    try:
        for name in singles:
            if name != "idle-rss":
                run_oneshot(name, ws, rep)
        if routes:
            run_oneshot("routes", ws, rep)
        ports = None
        if classic:
            backend = servers.start_backend(ws)
            python_backends = servers.start_python_backends(ws)
            ports = Ports(files=backend.port, sink=python_backends.sink_port,
                          ws=python_backends.ws_port)
        proxies = start_proxies(ws, ports, wanted, routes, rep)
        cold_start(proxies, rep)
        dead: set[str] = set()
        progress = Progress(sum(len(targets(s, proxies)) for s in chosen) * options.rounds)
        for index, scenario in enumerate(chosen, 1):
            run_scenario(scenario, proxies, options, rep, dead, progress,
                         f"{index}/{len(chosen)}")
        if "idle-rss" in singles:
            run_oneshot("idle-rss", ws, rep)
    except servers.StartError as exc:
        print(f"bench: backend did not start: {exc}", file=sys.stderr)
        return 1
    finally:
        ws.close()
        if options.keep:
            print(f"bench: workspace kept at {ws.root}", file=sys.stderr)
    rep.meta["elapsed_s"] = round(time.monotonic() - started, 1)
    rep.notes.append(f"suite took {rep.meta['elapsed_s']} s")
    sys.stdout.write(report.markdown(rep))
    if not options.no_save:
        name = stamp.strftime("%Y-%m-%d-%H%M%S")
        for path in [*report.save(rep, name), *chart.save(rep, name)]:
            print(f"bench: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
