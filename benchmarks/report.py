"""Aggregate benchmark samples into medians, ratios to nginx, a markdown table and JSON.

Also the one-off figures (`Check`: cold start, config load, idle RSS, route lookup) with their
issue-7 targets, shown as a second table.

Room: benchmarks, reporting. Pure functions over `Sample` lists plus `save()`, which writes
`results/<stamp>.md`, `results/<stamp>.json` and `results/latest.md` / `latest.json`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "nginx"


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured run of one proxy in one scenario."""

    scenario: str
    proxy: str
    round: int
    throughput: float
    unit: str  # "req/s", "MiB/s", "rt/s"
    cpu_us_per_op: float | None  # proxy CPU (utime+stime) per request / MiB / round trip
    op: str  # "req", "MiB", "rt"
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mib: float = 0.0  # at the end of the run
    peak_growth_mib: float = 0.0  # peak RSS during the run minus RSS at its start
    errors: int = 0  # socket errors + non-2xx/3xx answers
    cpu_percent: float = 0.0  # proxy CPU time / wall time (100 = one core saturated)


@dataclass(slots=True)
class Summary:
    scenario: str
    proxy: str
    rounds: int
    throughput: float
    unit: str
    cpu_us_per_op: float | None
    op: str
    p50_ms: float | None
    p99_ms: float | None
    rss_mib: float
    peak_growth_mib: float
    errors: int
    cpu_percent: float
    throughput_vs_nginx: float | None = None
    cpu_vs_nginx: float | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A figure measured once per suite rather than as a throughput run (cold start, config
    load, idle RSS, route lookup), with its issue-7 target: met when `value` ≤ `limit`
    (|value| ≤ limit when `two_sided`, for differences that may go either way)."""

    scenario: str
    figure: str
    value: float | None  # navigator's figure; None = could not be measured
    unit: str
    limit: float | None = None
    nginx: float | None = None  # nginx's figure for the same measurement, when it has one
    detail: str = ""
    two_sided: bool = False

    @property
    def met(self) -> bool | None:
        if self.value is None or self.limit is None:
            return None
        return (abs(self.value) if self.two_sided else self.value) <= self.limit

    @property
    def target(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'±' if self.two_sided else '≤ '}{self.limit:g} {self.unit}"


@dataclass(slots=True)
class Report:
    meta: dict[str, object]
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


def percent_difference(base: float, other: float) -> float:
    """(other - base) ÷ base in percent: +3.0 means `other` costs 3 % more."""
    return (other - base) / base * 100.0


def pairwise_overheads(totals: Sequence[float], boots: Sequence[float]) -> list[float]:
    """Per-pair differences of interleaved runs (pair i = boot i, then cold start i)."""
    if len(totals) != len(boots):
        raise ValueError(f"{len(totals)} cold starts but {len(boots)} standalone boots")
    return [total - boot for total, boot in zip(totals, boots, strict=True)]


def per_connection_kib(rss_before: int, rss_after: int, connections: int) -> float:
    """RSS growth per held connection, in KiB."""
    return (rss_after - rss_before) / connections / 1024


ROUTES_SCENARIO = "routes"
ROUTES_LIMIT_PERCENT = 5.0


def route_check(rows: Sequence[Summary], small: str, large: str) -> Check | None:
    """CPU per request of the `large`-table navigator against the `small` one (routes rows)."""
    found = {row.proxy: row for row in rows if row.scenario == ROUTES_SCENARIO}
    base, other = found.get(small), found.get(large)
    if base is None or other is None:
        return None
    if not base.cpu_us_per_op or other.cpu_us_per_op is None:
        return Check(ROUTES_SCENARIO, f"CPU/req {large} vs {small}", None, "%",
                     ROUTES_LIMIT_PERCENT, two_sided=True, detail="no CPU figure")
    return Check(
        ROUTES_SCENARIO, f"CPU/req difference, {large} vs {small}",
        percent_difference(base.cpu_us_per_op, other.cpu_us_per_op), "%", ROUTES_LIMIT_PERCENT,
        two_sided=True,
        detail=f"{base.cpu_us_per_op:.1f} vs {other.cpu_us_per_op:.1f} µs/req; "
               f"{base.throughput:,.0f} vs {other.throughput:,.0f} req/s "
               f"(medians of {min(base.rounds, other.rounds)} round(s))")


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(samples: Sequence[Sample]) -> list[Summary]:
    """Median per (scenario, proxy), in first-seen order, with ratios to the nginx row."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.scenario, sample.proxy), []).append(sample)
    rows: list[Summary] = []
    for (scenario, proxy), runs in groups.items():
        rows.append(Summary(
            scenario=scenario, proxy=proxy, rounds=len(runs),
            throughput=statistics.median(r.throughput for r in runs), unit=runs[0].unit,
            cpu_us_per_op=_median([r.cpu_us_per_op for r in runs]), op=runs[0].op,
            p50_ms=_median([r.p50_ms for r in runs]), p99_ms=_median([r.p99_ms for r in runs]),
            rss_mib=statistics.median(r.rss_mib for r in runs),
            peak_growth_mib=max(r.peak_growth_mib for r in runs),
            errors=sum(r.errors for r in runs),
            cpu_percent=statistics.median(r.cpu_percent for r in runs)))
    baseline = {row.scenario: row for row in rows if row.proxy == BASELINE}
    for row in rows:
        base = baseline.get(row.scenario)
        if base is None:
            continue
        if base.throughput:
            row.throughput_vs_nginx = row.throughput / base.throughput
        if row.cpu_us_per_op is not None and base.cpu_us_per_op:
            row.cpu_vs_nginx = row.cpu_us_per_op / base.cpu_us_per_op
    return rows


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def route_time_check(figures: Mapping[str, Mapping[str, float]], small: str = "10",
                     large: str = "1000") -> Check:
    """In-process `route()` µs per call by table size and request (bench_routes.py output):
    the figure is the largest difference over the requests, sign kept."""
    diffs = {name: percent_difference(figures[small][name], figures[large][name])
             for name in figures[small]}
    worst = max(diffs, key=lambda name: abs(diffs[name]))
    detail = "; ".join(f"{name} {figures[small][name]:.2f} vs {figures[large][name]:.2f} µs"
                       for name in figures[small])
    return Check(ROUTES_SCENARIO, f"routing.route() per call, {large} vs {small} tenants "
                 f"(in-process, largest difference: {worst})", diffs[worst], "%",
                 ROUTES_LIMIT_PERCENT, two_sided=True, detail=detail)


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    signed = f"{value:+.1f}" if unit == "%" else _num(value)
    return f"{signed} {unit}"


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


ROUTE_TABLES = ("navigator-10-tenants", "navigator-1000-tenants")


def all_checks(report: Report, rows: Sequence[Summary]) -> list[Check]:
    """The report's own checks plus the ones derived from throughput rows (route lookup)."""
    checks = list(report.checks)
    derived = route_check(rows, *ROUTE_TABLES)
    if derived is not None:  # next to the in-process routes figure when there is one
        at = max((i + 1 for i, c in enumerate(checks) if c.scenario == ROUTES_SCENARIO),
                 default=len(checks))
        checks.insert(at, derived)
    return checks


def markdown(report: Report) -> str:
    meta = report.meta
    lines = [
        f"# navigator benchmark — {meta.get('started', '')}",
        "",
        f"- host: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores; "
        f"{meta.get('versions', '')}",
        f"- mode: {meta.get('mode', '')}; medians over rounds; {meta.get('pinning', '')}; "
        "one worker each (Caddy GOMAXPROCS=1)",
        "- CPU/op = utime+stime of the proxy process(es) per request (per MiB for transfers, "
        "per round trip for websocket); nginx counts master+worker, navigator its own pid only",
        "- peak Δ = highest RSS sampled during the run minus RSS at its start (max over rounds)",
        *([f"- machine speed: {meta['calibration']} (the same loop on another day tells how "
           "much of a ratio's change is the machine's)"] if meta.get("calibration") else []),
        "- proxy CPU % = proxy CPU time ÷ wall time; below ~95 % the proxy was not the "
        "bottleneck (wrk and the backend share the other core), so compare CPU/op, not only "
        "throughput",
    ]
    rows = summarize(report.samples)
    if rows:
        lines += [
            "",
            "| scenario | proxy | throughput | p50 ms | p99 ms | CPU µs/op | proxy CPU % "
            "| RSS MiB | peak Δ MiB | thr ÷ nginx | CPU ÷ nginx | errors |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    lines.extend(
        f"| {row.scenario} | {row.proxy} | {_num(row.throughput)} {row.unit} "
        f"| {_num(row.p50_ms, 3)} | {_num(row.p99_ms, 3)} "
        f"| {_num(row.cpu_us_per_op)}/{row.op} | {row.cpu_percent:.0f} | {_num(row.rss_mib)} "
        f"| {_num(row.peak_growth_mib)} | {_ratio(row.throughput_vs_nginx)} "
        f"| {_ratio(row.cpu_vs_nginx)} | {row.errors} |"
        for row in rows)
    checks = all_checks(report, rows)
    if checks:
        lines += ["", "## Measured once (targets from issue 7)", "",
                  "| scenario | figure | navigator | nginx | target | met | details |",
                  "|---|---|---:|---:|---:|:---:|---|"]
        lines.extend(
            f"| {check.scenario} | {check.figure} | {_value(check.value, check.unit)} "
            f"| {_value(check.nginx, check.unit)} | {check.target} | {_verdict(check.met)} "
            f"| {check.detail} |"
            for check in checks)
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    rows = summarize(report.samples)
    return json.dumps({
        "meta": report.meta,
        "summary": [asdict(row) for row in rows],
        "checks": [{**asdict(check), "target": check.target, "met": check.met}
                   for check in all_checks(report, rows)],
        "samples": [asdict(sample) for sample in report.samples],
        "notes": report.notes,
    }, indent=2) + "\n"


def save(report: Report, stamp: str, folder: Path = RESULTS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    text, data = markdown(report), to_json(report)
    written = []
    for name, content in ((f"{stamp}.md", text), (f"{stamp}.json", data),
                          ("latest.md", text), ("latest.json", data)):
        path = folder / name
        path.write_text(content)
        written.append(path)
    return written
