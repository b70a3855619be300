"""The benchmark chart (benchmarks/chart.py) and progress lines (benchmarks/progress.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from benchmarks import chart, report
from benchmarks.progress import Progress, duration
from benchmarks.report import Report, Sample

SVG = "{http://www.w3.org/2000/svg}"

# (scenario, proxy, CPU µs per op) for two rounds each; "routes" has no nginx row.
FIXED = [
    ("100b", "nginx", 29.0), ("100b", "caddy", 170.0), ("100b", "navigator", 107.0),
    ("100b", "navigator-tenant", 135.0),
    ("64k", "nginx", 78.0), ("64k", "caddy", 202.0), ("64k", "navigator", 229.0),
    ("c1000", "nginx", 57.5), ("c1000", "navigator", 190.5),
    ("routes", "navigator-10-tenants", 80.0), ("routes", "navigator-1000-tenants", 81.0),
]


def fixed_report() -> Report:
    samples = [Sample(scenario, proxy, round_, 1000.0, "req/s", cpu * (1 + round_ / 100), "req")
               for round_ in (1, 2) for scenario, proxy, cpu in FIXED]
    return Report(meta={"started": "2026-12-02 18:00 UTC"}, samples=samples)


def bars_of(text: str) -> list[ET.Element]:
    root = ET.fromstring(text)  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return [el for el in root.iter(f"{SVG}rect") if el.get("class") == "bar"]


def test_one_bar_per_scenario_and_proxy_with_a_ratio() -> None:
    rows = report.summarize(fixed_report().samples)
    bars = bars_of(chart.svg(rows, "CPU <per> request & more"))
    drawn = [(bar.get("data-scenario"), bar.get("data-proxy")) for bar in bars]
    expected = [(s, p) for s, p, _ in FIXED if s != "routes"]
    assert sorted(drawn) == sorted(expected)
    assert len(set(drawn)) == len(drawn)


def test_bar_heights_follow_the_ratios() -> None:
    rows = report.summarize(fixed_report().samples)
    heights = {(bar.get("data-scenario"), bar.get("data-proxy")): float(bar.get("height", 0))
               for bar in bars_of(chart.svg(rows, "t"))}
    nginx = heights[("100b", "nginx")]
    assert heights[("100b", "navigator")] / nginx == pytest.approx(107.0 / 29.0, rel=0.01)
    assert heights[("c1000", "nginx")] == pytest.approx(nginx, abs=0.1)  # 1.00x everywhere


def test_every_bar_says_its_ratio_on_hover() -> None:
    rows = report.summarize(fixed_report().samples)
    for bar in bars_of(chart.svg(rows, "t")):
        title = bar.find(f"{SVG}title")
        assert title is not None
        assert title.text is not None
        assert f"{bar.get('data-scenario')}, {bar.get('data-proxy')}: " in title.text


def test_no_rows_still_make_a_valid_chart() -> None:
    assert bars_of(chart.svg([], "empty")) == []


def test_save_writes_the_stamped_and_the_latest_chart(tmp_path: Path) -> None:
    written = chart.save(fixed_report(), "2026-12-02-180000", tmp_path)
    assert [path.name for path in written] == ["2026-12-02-180000.svg", "latest.svg"]
    assert len(bars_of(written[1].read_text())) == 9


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "?"), (0.4, "0s"), (12.0, "12s"), (245.0, "4m05s"), (3720.0, "1h02m"),
])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_progress_estimates_what_is_left_from_the_runs_done() -> None:
    now = [100.0]
    progress = Progress(10, clock=lambda: now[0])
    assert progress.status() == "0/10 runs, elapsed 0s, eta ?"
    now[0] += 30.0
    progress.step()
    progress.step()
    assert progress.status() == "2/10 runs, elapsed 30s, eta 2m00s"
    progress.drop(4)  # a proxy skipped for the rest of the run
    assert progress.status() == "2/6 runs, elapsed 30s, eta 1m00s"
    progress.drop(100)
    assert progress.planned == 2
