"""The benchmark scenarios and how one run of one scenario against one proxy is measured.

Room: benchmarks, measurement orchestration for a single run. Knows the scenario table,
drives wrk or a Python client, wraps the load in a `UsageMeter` on the proxy's pids and
returns a `Sample`. Does not start or stop processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from benchmarks import clients, wrk
from benchmarks.measure import MIB, UsageMeter
from benchmarks.report import Sample
from benchmarks.servers import LOAD_CORE, Service, cores_available

Kind = Literal["proxy", "static", "upload", "download", "ws", "routes"]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: Kind
    path: str
    description: str
    connections: int = 50
    headers: tuple[str, ...] = ()
    tenant: bool = False  # also measure navigator's tenant path (navigator-tenant)
    warm_up: bool = False  # one unmeasured 1 s run first (opening 1,000 connections)
    size: int = 0  # upload size in bytes
    status: int = 200  # the answer every request must get (a 4xx is then not an error)

    @property
    def default_seconds(self) -> float:
        """Run length when none is given: 3 s for the proxy scenarios, 2 s for the rest
        (keeps the whole suite under five minutes)."""
        return 3.0 if self.kind == "proxy" else 2.0


UPLOAD_SIZE = 100 * MIB
CRAWLER = "Googlebot/2.1"  # short: the bot regex matches at once and costs ~0.3 µs

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("100b", "proxy", "/100b", "100 B responses, keep-alive, 50 connections",
             tenant=True),
    Scenario("64k", "proxy", "/64k", "64 KiB responses, keep-alive, 50 connections"),
    Scenario("1m", "proxy", "/1m", "1 MiB responses, keep-alive, 50 connections"),
    Scenario("close", "proxy", "/100b", "100 B responses, `Connection: close` (new TCP "
             "connection per request)", headers=("Connection: close",)),
    Scenario("c1000", "proxy", "/100b", "100 B responses, 1,000 concurrent keep-alive "
             "connections", connections=1000, warm_up=True),
    Scenario("download-100m", "download", "/100m", "100 MiB responses, one connection",
             connections=1),
    Scenario("upload-100m", "upload", "/upload", "100 MiB POST streamed through the proxy "
             "to a Python sink (repeated for the run's duration, new connection each)",
             size=UPLOAD_SIZE),
    Scenario("static-1k", "static", "/1k.bin", "1 KiB file served by the proxy itself"),
    Scenario("static-1m", "static", "/1m.bin", "1 MiB file served by the proxy itself"),
    Scenario("websocket", "ws", "/ws", "WebSocket echo round trips (32 B text frames) "
             "through the proxy to a Python echo backend, one connection, one message in flight"),
    Scenario("routes", "routes", "/t0999/page", "route lookup: navigator with 10 vs 1,000 "
             "tenants (none started); a crawler's request for the last tenant walks the rule "
             "list and the tenant table and is refused (403 by bot detection), 50 connections; "
             "also routing.route() timed in-process (bench_routes.py)",
             headers=(f"User-Agent: {CRAWLER}",), warm_up=True, status=403),
)

# Measured once per suite, not as throughput runs (benchmarks/oneshots.py); same --only names.
ONESHOTS: dict[str, str] = {
    "coldstart": "repeated tenant cold starts through navigator minus the same tenant command's "
                 "own boot (run standalone by the harness, polled every 0.5 ms), interleaved",
    "config": "load_config of a 1,000-tenant file in a fresh process on the proxy core",
    "pools": "a single-threaded 50 ms/request tenant behind 1 vs 4 processes (wrk, 50 "
             "connections): req/s and p99; overload (200 clients, queue 20): time to the "
             "first 503 and p99 of the served requests",
    "idle-rss": "RSS at start and per idle keep-alive connection (10,000 connections, one "
                "request each), fresh navigator and nginx serving the same static file",
}


def by_name(names: list[str]) -> tuple[list[Scenario], list[str]]:
    """(throughput scenarios, one-shot names) in the order given; exits on unknown names."""
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known and n not in ONESHOTS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; "
                         f"known: {', '.join([*known, *ONESHOTS])}")
    return [known[n] for n in names if n in known], [n for n in names if n in ONESHOTS]


def _core() -> int | None:
    return LOAD_CORE if cores_available() else None


def run_once(scenario: Scenario, proxy: str, service: Service, url: str, round_: int,
             duration: float) -> Sample:
    """Measure one run; raises wrk.WrkError / clients.ClientError on failure."""
    if scenario.kind == "upload":
        with UsageMeter(service.pids) as meter:
            upload = clients.uploads_for(url + scenario.path, scenario.size, duration)
        usage = meter.usage
        assert usage is not None
        mib = upload.size / MIB
        return Sample(scenario.name, proxy, round_, upload.mib_per_second, "MiB/s",
                      usage.cpu_seconds * 1e6 / mib, "MiB", rss_mib=usage.rss_end / MIB,
                      peak_growth_mib=usage.rss_growth / MIB, cpu_percent=usage.cpu_percent)
    if scenario.kind == "ws":
        with UsageMeter(service.pids) as meter:
            trips = clients.websocket_round_trips(url + scenario.path, duration)
        usage = meter.usage
        assert usage is not None
        return Sample(scenario.name, proxy, round_, trips.per_second, "rt/s",
                      usage.cpu_seconds * 1e6 / trips.count, "rt",
                      p50_ms=trips.percentile(50), p99_ms=trips.percentile(99),
                      rss_mib=usage.rss_end / MIB, peak_growth_mib=usage.rss_growth / MIB,
                      cpu_percent=usage.cpu_percent)
    with UsageMeter(service.pids) as meter:
        result = wrk.run(url + scenario.path, connections=scenario.connections,
                         duration=duration, headers=scenario.headers, core=_core())
    usage = meter.usage
    assert usage is not None
    if scenario.status >= 400:  # every answer should be that error: count the others
        errors = result.socket_errors + max(0, result.requests - result.non_2xx)
    else:
        errors = result.socket_errors + result.non_2xx
    if scenario.kind == "download":
        mib = result.bytes_read / MIB
        return Sample(scenario.name, proxy, round_, result.bytes_per_second / MIB, "MiB/s",
                      usage.cpu_seconds * 1e6 / mib if mib else None, "MiB",
                      p50_ms=result.latency_ms.get(50), p99_ms=result.latency_ms.get(99),
                      rss_mib=usage.rss_end / MIB, peak_growth_mib=usage.rss_growth / MIB,
                      errors=errors, cpu_percent=usage.cpu_percent)
    return Sample(scenario.name, proxy, round_, result.requests_per_second, "req/s",
                  usage.cpu_seconds * 1e6 / result.requests if result.requests else None,
                  "req", p50_ms=result.latency_ms.get(50), p99_ms=result.latency_ms.get(99),
                  rss_mib=usage.rss_end / MIB, peak_growth_mib=usage.rss_growth / MIB,
                  errors=errors, cpu_percent=usage.cpu_percent)


def warm_up(scenario: Scenario, url: str) -> None:
    """One short unmeasured run so pools, caches and the JIT-less interpreter settle."""
    if scenario.kind in ("upload", "ws"):
        return
    wrk.run(url + scenario.path, connections=scenario.connections, duration=1,
            headers=scenario.headers, core=_core())


def probe(scenario: Scenario, url: str, timeout: float = 10.0) -> tuple[str | None, bool]:
    """Check the target answers correctly before measuring.

    Returns (problem or None, fatal): fatal means the proxy did not answer at all (refused,
    reset, timed out), so later scenarios need not wait on it again.
    """
    if scenario.kind in ("upload", "ws"):
        return None, False
    try:
        status, _ = clients.timed_get(url + scenario.path, timeout=timeout,
                                      headers=scenario.headers)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}", True
    except clients.ClientError as exc:
        return f"ClientError: {exc}", False
    return (None if status == scenario.status else f"answered {status}, "
            f"expected {scenario.status}"), False
