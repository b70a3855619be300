"""Unit tests for the pure parts of the benchmark suite: checks, medians, report output, and
the generated configs the route-lookup scenario relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import configs, report, scenarios
from benchmarks.report import Check, Report, Sample
from benchmarks.servers import route_tenant_paths
from navigator.config.loader import load_config
from navigator.web.decision import ProxyTenant, RequestInfo, Respond
from navigator.web.routing import route
from navigator.web.snapshot import Snapshot, build_snapshot


def sample(proxy: str, round_: int, cpu: float, throughput: float = 1000.0,
           scenario: str = "routes") -> Sample:
    return Sample(scenario, proxy, round_, throughput, "req/s", cpu, "req")


def test_check_one_sided_target() -> None:
    check = Check("coldstart", "overhead", 12.5, "ms", 50.0)
    assert check.met is True
    assert check.target == "≤ 50 ms"
    assert Check("coldstart", "overhead", 50.1, "ms", 50.0).met is False


def test_check_two_sided_target_uses_the_magnitude() -> None:
    assert Check("routes", "diff", -4.9, "%", 5.0, two_sided=True).met is True
    assert Check("routes", "diff", -5.1, "%", 5.0, two_sided=True).met is False
    assert Check("routes", "diff", 1.0, "%", 5.0, two_sided=True).target == "±5 %"


def test_check_without_value_or_limit_has_no_verdict() -> None:
    assert Check("idle-rss", "x", None, "KiB", 10.0).met is None
    assert Check("idle-rss", "x", 3.0, "KiB").met is None
    assert Check("idle-rss", "x", 3.0, "KiB").target == "-"


def test_arithmetic_helpers() -> None:
    assert report.percent_difference(50.0, 53.0) == pytest.approx(6.0)
    assert report.pairwise_overheads([0.020, 0.030], [0.015, 0.026]) == pytest.approx(
        [0.005, 0.004])
    assert report.per_connection_kib(10 * 1024 * 1024, 20 * 1024 * 1024, 1024) == 10.0
    with pytest.raises(ValueError, match="2 cold starts but 1"):
        report.pairwise_overheads([1.0, 2.0], [1.0])


def test_route_check_compares_medians_over_rounds() -> None:
    small, large = report.ROUTE_TABLES
    samples = [sample(small, 1, 50.0), sample(small, 2, 52.0), sample(small, 3, 90.0),
               sample(large, 1, 51.0), sample(large, 2, 53.0), sample(large, 3, 54.0)]
    check = report.route_check(report.summarize(samples), small, large)
    assert check is not None
    assert check.value == pytest.approx((53.0 - 52.0) / 52.0 * 100)
    assert check.met is True
    assert "52.0 vs 53.0 µs/req" in check.detail


def test_route_check_needs_both_tables() -> None:
    small, large = report.ROUTE_TABLES
    rows = report.summarize([sample(small, 1, 50.0)])
    assert report.route_check(rows, small, large) is None


def test_route_time_check_reports_the_largest_difference_with_its_sign() -> None:
    check = report.route_time_check({"10": {"tenant": 2.0, "not-found": 2.0},
                                     "1000": {"tenant": 2.02, "not-found": 1.8}})
    assert check.value == pytest.approx(-10.0)
    assert check.met is False
    assert "not-found" in check.figure
    assert "tenant 2.00 vs 2.02 µs" in check.detail


def test_markdown_shows_checks_and_derived_route_row() -> None:
    small, large = report.ROUTE_TABLES
    rep = Report(meta={"started": "now"},
                 samples=[sample(small, 1, 50.0), sample(large, 1, 60.0)],
                 checks=[Check("idle-rss", "per connection", 4.9, "KiB", 10.0, nginx=0.5)])
    text = report.markdown(rep)
    assert "## Measured once" in text
    assert "| idle-rss | per connection | 4.9 KiB | 0.5 KiB | ≤ 10 KiB | yes |" in text
    assert "| +20.0 % | - | ±5 % | NO |" in text
    assert "| routes | navigator-10-tenants |" in text


def test_markdown_without_samples_has_no_empty_throughput_table() -> None:
    rep = Report(meta={}, checks=[Check("config", "load", 130.0, "ms", 200.0)])
    text = report.markdown(rep)
    assert "| scenario | proxy |" not in text
    assert "| config | load | 130.0 ms | - | ≤ 200 ms | yes |" in text


def test_json_carries_checks_with_verdicts() -> None:
    rep = Report(meta={}, checks=[Check("coldstart", "overhead", 60.0, "ms", 50.0)])
    data = json.loads(report.to_json(rep))
    assert data["checks"] == [{
        "scenario": "coldstart", "figure": "overhead", "value": 60.0, "unit": "ms",
        "limit": 50.0, "nginx": None, "detail": "", "two_sided": False,
        "target": "≤ 50 ms", "met": False}]


def test_by_name_splits_throughput_scenarios_from_one_shots() -> None:
    chosen, singles = scenarios.by_name(["coldstart", "routes", "100b", "idle-rss"])
    assert [s.name for s in chosen] == ["routes", "100b"]
    assert singles == ["coldstart", "idle-rss"]
    with pytest.raises(SystemExit, match="unknown scenario"):
        scenarios.by_name(["routes", "nope"])


def _bench_snapshot(tmp_path: Path, count: int, reject_bots: bool) -> Snapshot:
    path = tmp_path / "navigator.yml"
    path.write_text(configs.navigator_tenants(
        tmp_path, 3000, paths=route_tenant_paths(count), command="sh", args=["-c", "exit 1"],
        health_check="/up", start_port=20000, reject_bots=reject_bots))
    return build_snapshot(load_config(path, {}, cwd=tmp_path))


def _request(path: str, user_agent: str = "") -> RequestInfo:
    return RequestInfo(method="GET", path=path, query="", host="127.0.0.1",
                       peer_ip="127.0.0.1", user_agent=user_agent)


@pytest.mark.parametrize("count", [10, 1000])
def test_route_scenario_request_is_refused_only_after_the_tenant_lookup(
        tmp_path: Path, count: int) -> None:
    snap = _bench_snapshot(tmp_path, count, reject_bots=True)
    assert len(snap.config.tenants) == count
    refused = route(snap, _request("/t0999/page", scenarios.CRAWLER))
    assert isinstance(refused, Respond)
    assert refused.status == 403
    # the 403 needs a tenant: the same crawler on a path no tenant owns gets a 404
    missing = route(snap, _request("/nope/page", scenarios.CRAWLER))
    assert isinstance(missing, Respond)
    assert missing.status == 404


def test_bench_routes_requests_reach_the_last_tenant(tmp_path: Path) -> None:
    snap = _bench_snapshot(tmp_path, 1000, reject_bots=False)
    decision = route(snap, _request("/t0999/page", "Mozilla/5.0"))
    assert isinstance(decision, ProxyTenant)
    assert decision.tenant.path == "/t0999/"
    redirect = route(snap, _request("/t0999"))
    assert isinstance(redirect, Respond)
    assert redirect.status == 302


def test_derived_route_check_sits_next_to_the_in_process_one() -> None:
    small, large = report.ROUTE_TABLES
    in_process = report.route_time_check({"10": {"tenant": 2.0}, "1000": {"tenant": 2.0}})
    idle = Check("idle-rss", "per connection", 4.9, "KiB", 10.0)
    rep = Report(meta={}, samples=[sample(small, 1, 50.0), sample(large, 1, 50.0)],
                 checks=[in_process, idle])
    checks = report.all_checks(rep, report.summarize(rep.samples))
    assert [c.scenario for c in checks] == ["routes", "routes", "idle-rss"]
    assert checks[1].value == 0.0
