"""Aggregate benchmark samples into medians, ratios to nginx, a markdown table and JSON.

Room: benchmarks, reporting. Pure functions over `Sample` lists plus `save()`, which writes
`results/<stamp>.md`, `results/<stamp>.json` and `results/latest.md` / `latest.json`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
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


@dataclass(slots=True)
class Report:
    meta: dict[str, object]
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
        "- proxy CPU % = proxy CPU time ÷ wall time; below ~95 % the proxy was not the "
        "bottleneck (wrk and the backend share the other core), so compare CPU/op, not only "
        "throughput",
        "",
        "| scenario | proxy | throughput | p50 ms | p99 ms | CPU µs/op | proxy CPU % | RSS MiB "
        "| peak Δ MiB | thr ÷ nginx | CPU ÷ nginx | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {row.scenario} | {row.proxy} | {_num(row.throughput)} {row.unit} "
        f"| {_num(row.p50_ms, 3)} | {_num(row.p99_ms, 3)} "
        f"| {_num(row.cpu_us_per_op)}/{row.op} | {row.cpu_percent:.0f} | {_num(row.rss_mib)} "
        f"| {_num(row.peak_growth_mib)} | {_ratio(row.throughput_vs_nginx)} "
        f"| {_ratio(row.cpu_vs_nginx)} | {row.errors} |"
        for row in summarize(report.samples))
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    return json.dumps({
        "meta": report.meta,
        "summary": [asdict(row) for row in summarize(report.samples)],
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
