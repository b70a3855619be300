"""Unit tests for navigator.ops.metrics: rendering parsed back by prometheus_client,
status table."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from navigator.ops.metrics import (
    COLD_START_BUCKETS,
    REQUEST_BUCKETS,
    TENANT_STATES,
    Counter,
    Gauge,
    Histogram,
    Metrics,
    Registry,
    format_bytes,
    format_duration,
    format_status_table,
    format_value,
    parse_samples,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(body: bytes) -> tuple[dict[str, str], Samples]:
    """Family name -> type, and (sample name, sorted labels) -> value."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def key(metric: str, /, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return metric, tuple(sorted(labels.items()))


def test_all_series_declared_with_types() -> None:
    types, _ = parse(Metrics().render())
    assert types == {
        "navigator_requests": "counter",
        "navigator_request_duration_seconds": "histogram",
        "navigator_tenant_starts": "counter",
        "navigator_tenant_stops": "counter",
        "navigator_tenant_crashes": "counter",
        "navigator_cold_start_seconds": "histogram",
        "navigator_tenant_state": "gauge",
        "navigator_open_connections": "gauge",
        "navigator_open_websockets": "gauge",
        "navigator_machine_idle": "gauge",
        "navigator_config_reloads": "counter",
        "navigator_machine_starts": "counter",
        "navigator_log_lines_dropped": "counter",
        "navigator_tenant_info": "gauge",
        "navigator_tenant_started_timestamp_seconds": "gauge",
        "navigator_tenant_last_request_timestamp_seconds": "gauge",
        "navigator_tenant_in_flight_requests": "gauge",
        "navigator_tenant_processes": "gauge",
        "navigator_tenant_busy_processes": "gauge",
        "navigator_tenant_idle_processes": "gauge",
        "navigator_tenant_queue_length": "gauge",
        "navigator_tenant_queued": "counter",
        "navigator_tenant_queue_wait_seconds": "counter",
        "navigator_tenant_queue_full": "counter",
        "navigator_tenant_queue_timeouts": "counter",
        "navigator_tenant_recycles": "counter",
    }


def test_help_and_type_lines() -> None:
    text = Metrics().render().decode()
    assert "# HELP navigator_open_connections Client connections currently open.\n" in text
    assert "# TYPE navigator_requests_total counter\n" in text
    assert "# TYPE navigator_cold_start_seconds histogram\n" in text
    assert text.endswith("\n")


def test_request_counters_and_histogram() -> None:
    metrics = Metrics()
    metrics.request_done("a", 200, 0.004)
    metrics.request_done("a", 204, 0.2)
    metrics.request_done("a", 503, 7.0)
    metrics.request_done("", 404, 0.001)
    metrics.request_done("b", 101, 120.0)
    _, samples = parse(metrics.render())
    assert samples[key("navigator_requests_total", tenant="a", status_class="2xx")] == 2
    assert samples[key("navigator_requests_total", tenant="a", status_class="5xx")] == 1
    assert samples[key("navigator_requests_total", tenant="", status_class="4xx")] == 1
    assert samples[key("navigator_requests_total", tenant="b", status_class="1xx")] == 1
    h = "navigator_request_duration_seconds"
    assert samples[key(f"{h}_bucket", tenant="a", le="0.005")] == 1
    assert samples[key(f"{h}_bucket", tenant="a", le="0.25")] == 2
    assert samples[key(f"{h}_bucket", tenant="a", le="5.0")] == 2
    assert samples[key(f"{h}_bucket", tenant="a", le="10.0")] == 3
    assert samples[key(f"{h}_bucket", tenant="a", le="+Inf")] == 3
    assert samples[key(f"{h}_count", tenant="a")] == 3
    assert samples[key(f"{h}_sum", tenant="a")] == pytest.approx(7.204)
    assert samples[key(f"{h}_bucket", tenant="b", le="60.0")] == 0
    assert samples[key(f"{h}_bucket", tenant="b", le="+Inf")] == 1
    buckets = [s for s in samples if s[0] == f"{h}_bucket" and ("tenant", "a") in s[1]]
    assert len(buckets) == len(REQUEST_BUCKETS) + 1


def test_histogram_boundary_is_inclusive() -> None:
    hist = Histogram("h_seconds", "h", (), (0.1, 1.0))
    hist.observe(0.1)
    hist.observe(1.0)
    hist.observe(1.0000001)
    assert hist.count() == 3
    registry = Registry()
    registry.register(hist)
    _, samples = parse(registry.render())
    assert samples[key("h_seconds_bucket", le="0.1")] == 1
    assert samples[key("h_seconds_bucket", le="1.0")] == 2
    assert samples[key("h_seconds_bucket", le="+Inf")] == 3


def test_tenant_lifecycle_and_reloads() -> None:
    metrics = Metrics()
    metrics.tenant_started("a")
    metrics.tenant_ready("a", 1.5)
    metrics.tenant_started("a")
    metrics.tenant_stopped("a", "idle")
    metrics.tenant_stopped("a", "idle")
    metrics.tenant_stopped("a", "shutdown")
    metrics.tenant_crashed("a")
    metrics.config_reloaded(True)
    metrics.config_reloaded(False)
    metrics.config_reloaded(True)
    _, samples = parse(metrics.render())
    assert samples[key("navigator_tenant_starts_total", tenant="a")] == 2
    assert samples[key("navigator_tenant_stops_total", tenant="a", reason="idle")] == 2
    assert samples[key("navigator_tenant_stops_total", tenant="a", reason="shutdown")] == 1
    assert samples[key("navigator_tenant_crashes_total", tenant="a")] == 1
    assert samples[key("navigator_cold_start_seconds_count", tenant="a")] == 1
    assert samples[key("navigator_cold_start_seconds_bucket", tenant="a", le="2.0")] == 1
    assert samples[key("navigator_cold_start_seconds_bucket", tenant="a", le="1.0")] == 0
    assert samples[key("navigator_config_reloads_total", result="success")] == 2
    assert samples[key("navigator_config_reloads_total", result="failure")] == 1
    assert len([s for s in samples if s[0] == "navigator_cold_start_seconds_bucket"]) == \
        len(COLD_START_BUCKETS) + 1


def test_plain_gauges() -> None:
    metrics = Metrics()
    _, samples = parse(metrics.render())
    assert samples[key("navigator_open_connections")] == 0
    metrics.open_connections.inc()
    metrics.open_connections.inc()
    metrics.open_connections.dec()
    metrics.open_websockets.set(4)
    metrics.machine_idle.set(1)
    _, samples = parse(metrics.render())
    assert samples[key("navigator_open_connections")] == 1
    assert samples[key("navigator_open_websockets")] == 4
    assert samples[key("navigator_machine_idle")] == 1


def test_gauges_read_at_render_time() -> None:
    metrics = Metrics()
    open_now = [1, 2, 3]
    metrics.open_connections.set_function(lambda: len(open_now))
    _, samples = parse(metrics.render())
    assert samples[key("navigator_open_connections")] == 3
    open_now.pop()
    _, samples = parse(metrics.render())
    assert samples[key("navigator_open_connections")] == 2


def test_tenant_states_match_the_supervisor() -> None:
    from navigator.tenants.tenantstate import TenantState

    assert set(TENANT_STATES) == {state.value for state in TenantState}


def test_tenant_state_from_callback_at_render_time() -> None:
    states = {"a": "ready", "b/c": "stopped"}
    metrics = Metrics(tenant_states=lambda: states)
    _, samples = parse(metrics.render())
    assert samples[key("navigator_tenant_state", tenant="a", state="ready")] == 1
    assert samples[key("navigator_tenant_state", tenant="a", state="starting")] == 0
    assert samples[key("navigator_tenant_state", tenant="b/c", state="stopped")] == 1
    assert len([s for s in samples if s[0] == "navigator_tenant_state"]) == \
        2 * len(TENANT_STATES)
    states["a"] = "unheard-of"  # a state we did not list still shows
    _, samples = parse(metrics.render())
    assert samples[key("navigator_tenant_state", tenant="a", state="unheard-of")] == 1
    assert samples[key("navigator_tenant_state", tenant="a", state="ready")] == 0


def test_label_escaping_round_trips() -> None:
    counter = Counter("odd_total", "help with \\ and\nnewline", ("name",))
    tricky = 'quote " backslash \\ newline \n end'
    counter.inc(tricky)
    counter.inc(tricky, amount=2.5)
    registry = Registry()
    registry.register(counter)
    text = registry.render().decode()
    assert "# HELP odd_total help with \\\\ and\\nnewline\n" in text
    _, samples = parse(text.encode())
    assert samples[key("odd_total", name=tricky)] == 3.5


def test_label_count_is_checked() -> None:
    counter = Counter("c_total", "c", ("a", "b"))
    with pytest.raises(ValueError, match="expected labels"):
        counter.inc("only-one")
    gauge = Gauge("g", "g", ("a",), source=lambda: [(("x", "y"), 1.0)])
    with pytest.raises(ValueError, match="expected labels"):
        gauge.samples()
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "h", ("le",))


def test_duplicate_registration_rejected() -> None:
    registry = Registry()
    registry.register(Counter("x_total", "x"))
    with pytest.raises(ValueError, match="duplicate"):
        registry.register(Gauge("x_total", "x"))


@pytest.mark.parametrize(("value", "text"), [
    (0.0, "0"), (3.0, "3"), (0.25, "0.25"), (1e20, "1e+20"), (math.inf, "+Inf"),
    (-math.inf, "-Inf"), (math.nan, "NaN"),
])
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


# ------------------------------------------------------------------------------ status table

@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59.9, "59s"), (60, "1m00s"), (185, "3m05s"), (3600 * 2 + 420, "2h07m"),
    (86400 * 4 + 3 * 3600, "4d03h"), (-5, "0s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [
    (0, "0B"), (1023, "1023B"), (1024, "1.0KiB"), (150 * 1024 * 1024, "150.0MiB"),
    (3 * 1024**3, "3.0GiB"), (5 * 1024**4, "5120.0GiB"),
])
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text


def test_status_table() -> None:
    table = format_status_table([
        {"tenant": "2025/boston", "path": "/2025/boston/", "state": "ready", "pid": 4242,
         "port": 4001,
         "uptime": 3725, "memory": 157286400, "last_request": 12, "processes": 3,
         "busy": 2, "queue": 5, "refusals": 7, "recycled": 1},
        {"tenant": "a", "state": "stopped", "pid": None, "port": None},
        {"tenant": "b", "state": "starting", "pid": 77, "port": 4002, "uptime": "just now"},
    ])
    assert table.splitlines() == [
        "TENANT       PATH           STATE     PID   PORT  UPTIME    MEMORY    LAST REQUEST"
        "  PROCS  BUSY  QUEUE  503S  RECYCLED",
        "2025/boston  /2025/boston/  ready     4242  4001  1h02m     150.0MiB  12s ago     "
        "  3      2     5      7     1",
        "a            -              stopped   -     -     -         -         -       "
        "      -      -     -      -     -",
        "b            -              starting  77    4002  just now  -         -       "
        "      -      -     -      -     -",
    ]


def test_status_table_empty() -> None:
    assert format_status_table([]) == \
        "TENANT  PATH  STATE  PID  PORT  UPTIME  MEMORY  LAST REQUEST  PROCS  BUSY  QUEUE  " \
        "503S  RECYCLED\n"


def test_parse_samples_reads_back_what_render_writes() -> None:
    metrics = Metrics()
    metrics.request_done("a", 200, 0.01)
    tricky = 'odd " \\ \n tenant'
    metrics.tenant_started(tricky)
    parsed = list(parse_samples(metrics.render().decode()))
    assert ("navigator_requests_total", {"tenant": "a", "status_class": "2xx"}, 1.0) in parsed
    assert ("navigator_tenant_starts_total", {"tenant": tricky}, 1.0) in parsed
    assert ("navigator_request_duration_seconds_bucket", {"tenant": "a", "le": "+Inf"},
            1.0) in parsed
    expected = {(name, tuple(sorted(labels.items()))): value
                for name, labels, value in parsed}
    assert expected == parse(metrics.render())[1]


def test_status_rows_from_tenant_rows() -> None:
    from navigator.ops.status import rows_from_metrics

    metrics = Metrics()
    metrics.set_tenant_rows(lambda: [
        {"name": "a", "path": "/a/", "state": "ready", "pid": 42, "port": 4001,
         "started_at": 1000.0, "last_request": 1090.0, "in_flight": 0, "retired": False},
        {"name": "b", "path": "/b/", "state": "stopped", "pid": None, "port": None,
         "started_at": None, "last_request": 1050.0, "in_flight": 0, "retired": False},
        {"name": "a", "path": "/a/", "state": "draining", "pid": 7, "port": 4000,
         "started_at": 900.0, "last_request": None, "in_flight": 1, "retired": True},
    ])
    metrics.request_done("a", 200, 0.01)
    metrics.request_done("a", 503, 0.01)  # requests are summed over status classes
    metrics.request_done("", 404, 0.01)  # reached no tenant: no row
    metrics.tenant_started("a")
    metrics.tenant_crashed("b")
    rows = rows_from_metrics(parse_samples(metrics.render().decode()), now=1100.0)
    assert rows == [
        {"tenant": "a", "state": "ready", "path": "/a/", "pid": 42, "port": "4001",
         "uptime": 100.0, "last_request": 10.0, "in_flight": 0, "requests": 2, "starts": 1},
        {"tenant": "b", "state": "stopped", "path": "/b/", "pid": None, "port": None,
         "last_request": 50.0, "in_flight": 0, "crashes": 1},
    ]
    table = format_status_table(rows).splitlines()
    assert table[1].split()[:9] == ["a", "/a/", "ready", "42", "4001", "1m40s", "-", "10s",
                                    "ago"]
    assert table[2].split()[:9] == ["b", "/b/", "stopped", "-", "-", "-", "-", "50s", "ago"]


@pytest.mark.parametrize(("reason", "label"), [
    ("idle", "idle"), ("shutdown", "shutdown"), ("replaced by reload", "reload"),
    ("removed by reload", "reload"), ("evicted (pool full)", "evicted"),
    ("not ready", "not_ready"), ("something new", "other"),
])
def test_stop_reasons_become_a_small_label_set(reason: str, label: str) -> None:
    from navigator.tenants.tenantstate import stop_label

    assert stop_label(reason) == label


def test_every_stop_reason_the_supervisor_uses_has_a_label() -> None:
    import inspect
    import re

    from navigator.tenants import processes, supervisor
    from navigator.tenants.tenantstate import STOP_LABELS

    source = inspect.getsource(supervisor) + inspect.getsource(processes)
    used = set(re.findall(r'(?:terminate|stop_with_hooks|_replace|_retire)\([^"()]*?'
                          r'"([^"]+)"\)', source))
    assert used
    assert used <= set(STOP_LABELS)


def test_log_drops_are_read_from_their_owner_at_scrape_time() -> None:
    from navigator.ops.status import dropped_log_lines

    counts = {"stdout": 0.0, "file": 3.0}
    metrics = Metrics()
    metrics.log_lines_dropped.set_source(
        lambda: [((name,), value) for name, value in counts.items()])
    counts["stdout"] = 1842.0  # the writer counted more since the source was set
    types, samples = parse(metrics.render())
    assert types["navigator_log_lines_dropped"] == "counter"
    assert samples[key("navigator_log_lines_dropped_total", destination="stdout")] == 1842
    assert samples[key("navigator_log_lines_dropped_total", destination="file")] == 3
    text = metrics.render().decode()
    assert dropped_log_lines(parse_samples(text)) == "log lines dropped: stdout 1842, file 3"
    assert dropped_log_lines(parse_samples(Metrics().render().decode())) == ""


def test_the_bucket_scan_agrees_with_bisect() -> None:
    from bisect import bisect_left

    from navigator.ops.metrics import REQUEST_BUCKETS, _bucket
    values = [-1.0, 0.0, *REQUEST_BUCKETS, *(b * 1.0001 for b in REQUEST_BUCKETS), 1e9]
    for value in values:
        assert _bucket(REQUEST_BUCKETS, value) == bisect_left(REQUEST_BUCKETS, value), value
