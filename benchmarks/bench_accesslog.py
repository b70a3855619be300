"""What the access log costs: navigator as a reverse proxy with `logging.access_log` on vs off.

    .venv/bin/python benchmarks/bench_accesslog.py              # 2 rounds of 3 s runs, ~20 s
    .venv/bin/python benchmarks/bench_accesslog.py --rounds 3 --duration 5
    .venv/bin/python benchmarks/bench_accesslog.py --stdout pipe   # stdout on a drained pipe

Room: benchmarks. Two navigators with the same reverse-proxy config (the suite's
`configs.navigator_proxy`, prefix `/` to an nginx serving 100 B), one with the access log on
(one JSON line per request to its stdout, which the harness sends to a file, or with
`--stdout pipe` through a pipe a `cat` empties into that file) and one with it off, both
pinned to the proxy core; wrk (50 connections, keep-alive) on the load core. Runs are
interleaved (off, on, then on, off, ...) so drift hits both alike; medians are reported with
requests/s and CPU time of the navigator process per request, and the on/off ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import configs, servers, wrk
from benchmarks.measure import UsageMeter

PATH = "/100b"
CONNECTIONS = 50


@dataclass
class Variant:
    name: str
    service: servers.Service
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.port}{PATH}"


def start(ws: servers.Workspace, ports: servers.Ports, access_log: bool,
          stdout_pipe: bool = False) -> Variant:
    name = "accesslog-on" if access_log else "accesslog-off"
    port = servers.free_port()
    text = configs.navigator_proxy(ws.dir(name), port, ports)
    assert "access_log: false" in text
    if access_log:
        text = text.replace("access_log: false", "access_log: true")
    return Variant(name, servers.start_navigator(ws, name, text, port,
                                                 stdout_pipe=stdout_pipe))


def measure(variant: Variant, duration: float) -> None:
    with UsageMeter(variant.service.pids) as meter:
        result = wrk.run(variant.url, connections=CONNECTIONS, duration=duration,
                         core=servers.LOAD_CORE if servers.cores_available() else None)
    assert meter.usage is not None
    if result.socket_errors or result.non_2xx:
        raise SystemExit(f"{variant.name}: {result.socket_errors} socket errors, "
                         f"{result.non_2xx} non-2xx answers")
    variant.rps.append(result.requests_per_second)
    variant.cpu_us.append(meter.usage.cpu_seconds / result.requests * 1e6)


def report(off: Variant, on: Variant, log_lines: int) -> str:
    rows = [f"| {variant.name} | {statistics.median(variant.rps):,.0f} | "
            f"{statistics.median(variant.cpu_us):.1f} | "
            f"{', '.join(f'{r:,.0f}' for r in variant.rps)} |" for variant in (off, on)]
    rps_ratio = statistics.median(on.rps) / statistics.median(off.rps)
    cpu_ratio = statistics.median(on.cpu_us) / statistics.median(off.cpu_us)
    return "\n".join([
        f"access log on vs off: navigator reverse proxy, GET {PATH} from nginx, "
        f"{CONNECTIONS} keep-alive connections, {len(off.rps)} interleaved runs each",
        "",
        "| variant | req/s (median) | CPU µs/req (median) | req/s per run |",
        "|---|---:|---:|---|",
        *rows,
        "",
        f"on/off: requests/s x{rps_ratio:.3f} ({(rps_ratio - 1) * 100:+.1f}%), "
        f"CPU per request x{cpu_ratio:.3f} ({(cpu_ratio - 1) * 100:+.1f}%)",
        f"access-log lines written by the 'on' server: {log_lines:,}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--keep", action="store_true", help="keep the workspace in /tmp")
    parser.add_argument("--stdout", choices=("file", "pipe"), default="file",
                        help="navigator's stdout: the log file, or a pipe drained into it")
    options = parser.parse_args(argv)
    missing = servers.ensure_tools(("nginx", "wrk"))
    if missing:
        print(f"bench_accesslog: needs {' '.join(missing)}", file=sys.stderr)
        return 2
    servers.raise_fd_limit()
    ws = servers.Workspace(keep=options.keep)
    try:
        backend = servers.start_backend(ws)
        ports = servers.Ports(files=backend.port, sink=0, ws=0)
        pipe = options.stdout == "pipe"
        off = start(ws, ports, access_log=False, stdout_pipe=pipe)
        on = start(ws, ports, access_log=True, stdout_pipe=pipe)
        for variant in (off, on):  # warm up: connection pools, code paths
            wrk.run(variant.url, connections=CONNECTIONS, duration=1)
        warm_lines = _lines(on.service.log)
        for round_ in range(options.rounds):
            for variant in ((off, on) if round_ % 2 == 0 else (on, off)):
                measure(variant, options.duration)
        print(report(off, on, _lines(on.service.log) - warm_lines))
    finally:
        ws.close()
    return 0


def _lines(log: Path) -> int:
    with open(log, "rb") as handle:
        return sum(1 for line in handle if line.startswith(b"{"))


if __name__ == "__main__":
    sys.exit(main())
