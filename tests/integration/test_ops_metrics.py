"""The metrics endpoint after a scripted life: requests, cold starts, a kill -9, a websocket,
a reload and an idle stop, read back with prometheus_client's parser."""

from __future__ import annotations

import os
import random
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    request,
    run_navigator,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def config_text(root: Path, *, timeout: str = "5m", b_label: str = "beta",
                extra_tenants: str = "", start_port: int = 0) -> str:
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  pools:
    start_port: {start_port or random.randrange(20000, 32000, 101)}
    timeout: {timeout}
  tenants:
    - path: /a/
    - path: /b/
      env:
        LABEL: {b_label}
{extra_tenants}
"""


def scrape(port: int) -> tuple[dict[str, str], Samples]:
    """Family types, and (sample name, labels) -> value."""
    response = request(port, "GET", "/_navigator/metrics")
    assert response.status == 200
    assert response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def at(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of `name` whose labels include `labels`."""
    return [(dict(key), value) for (sample, key), value in samples.items()
            if sample == name and set(labels.items()) <= key]


@pytest.fixture
def nav(tmp_path: Path) -> Iterator[Navigator]:
    config = tmp_path / "navigator.yml"
    config.write_text(config_text(tmp_path))
    with run_navigator(config) as server:
        yield server


def tenant_pid(nav: Navigator, tenant: str) -> int:
    response = request(nav.port, "GET", f"/{tenant}/pid")
    assert response.status == 200
    return int(response.body)


def test_requests_cold_starts_and_a_crash(nav: Navigator) -> None:
    for path in ("/a/one", "/a/two", "/a/three"):  # the first one cold-starts tenant a
        assert request(nav.port, "GET", path).status == 200
    assert request(nav.port, "GET", "/nowhere/at/all").status == 404
    first = tenant_pid(nav, "a")
    assert first in [child.pid for child in psutil.Process(nav.process.pid).children()]

    os.kill(first, signal.SIGKILL)
    nav.wait_for_output(r"tenant a exited unexpectedly")
    assert request(nav.port, "GET", "/a/after-crash").status == 200  # second cold start
    second = tenant_pid(nav, "a")
    assert second != first

    with connect(nav.port) as ws:  # a websocket held open through the tenant
        ws.sendall(b"GET /a/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Sec-WebSocket-Version: 13\r\n\r\n")
        reader = Reader(ws)
        assert reader.response().status == 101
        ws.sendall(b"ping")
        assert reader.read_exactly(4) == b"ping"
        types, samples = scrape(nav.port)

    assert types["navigator_requests"] == "counter"
    assert types["navigator_cold_start_seconds"] == "histogram"
    assert types["navigator_open_websockets"] == "gauge"
    # 3 plain + 2 pid + 1 after the crash; the 101 is logged when the tunnel opens
    assert at(samples, "navigator_requests_total", tenant="a", status_class="2xx") == 6
    assert at(samples, "navigator_requests_total", tenant="a", status_class="1xx") == 1
    assert at(samples, "navigator_requests_total", tenant="", status_class="4xx") == 1
    assert at(samples, "navigator_request_duration_seconds_count", tenant="a") == 7
    assert at(samples, "navigator_tenant_starts_total", tenant="a") == 2
    assert at(samples, "navigator_tenant_crashes_total", tenant="a") == 1
    assert series(samples, "navigator_tenant_stops_total") == []
    assert at(samples, "navigator_cold_start_seconds_count", tenant="a") == 2
    assert at(samples, "navigator_cold_start_seconds_bucket", tenant="a", le="+Inf") == 2
    assert (at(samples, "navigator_cold_start_seconds_sum", tenant="a") or 0) > 0
    assert at(samples, "navigator_tenant_state", tenant="a", state="ready") == 1
    assert at(samples, "navigator_tenant_state", tenant="a", state="stopped") == 0
    info = series(samples, "navigator_tenant_info", tenant="a")
    assert [(labels["path"], labels["pid"]) for labels, _ in info] == [("/a/", str(second))]
    assert at(samples, "navigator_tenant_in_flight_requests", tenant="a") == 0
    assert series(samples, "navigator_tenant_state", tenant="b") == []  # never requested
    assert at(samples, "navigator_open_websockets") == 1
    assert (at(samples, "navigator_open_connections") or 0) >= 2  # the tunnel, the scrape
    assert at(samples, "navigator_machine_idle") == 0

    # the tunnel closed: its gauge follows (the server notices the close on its own time)
    wait_until(lambda: at(scrape(nav.port)[1], "navigator_open_websockets") == 0,
               message="the websocket gauge to drop")
    _, later = scrape(nav.port)
    scrapes = at(later, "navigator_requests_total", tenant="", status_class="2xx")
    assert (scrapes or 0) >= 2  # scrapes are counted like any request


def test_stop_reasons_reload_and_idle(tmp_path: Path) -> None:
    config = tmp_path / "navigator.yml"
    start_port = random.randrange(20000, 32000, 101)
    config.write_text(config_text(tmp_path, start_port=start_port))
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/a/x").status == 200
        assert request(nav.port, "GET", "/b/x").status == 200
        # b's environment changes: its process is replaced; c is new and idles out in 1 s
        config.write_text(config_text(tmp_path, timeout="1s", b_label="changed",
                                      extra_tenants="    - path: /c/", start_port=start_port))
        nav.process.send_signal(signal.SIGHUP)
        nav.wait_for_output(r"configuration reloaded")
        nav.wait_for_output(r"tenant b stopped")
        assert request(nav.port, "GET", "/c/x").status == 200
        nav.wait_for_output(r"tenant c stopped", timeout=15)
        _, samples = scrape(nav.port)

    assert at(samples, "navigator_config_reloads_total", result="success") == 1
    assert at(samples, "navigator_tenant_stops_total", tenant="b", reason="reload") == 1
    assert at(samples, "navigator_tenant_stops_total", tenant="c", reason="idle") == 1
    assert series(samples, "navigator_tenant_stops_total", tenant="a") == []
    assert series(samples, "navigator_tenant_crashes_total") == []
    assert at(samples, "navigator_tenant_state", tenant="c", state="stopped") == 1
    info = series(samples, "navigator_tenant_info", tenant="c")  # stopped: path, no process
    assert [(labels["path"], labels["pid"], labels["port"]) for labels, _ in info] == \
        [("/c/", "", "")]
    # b's replacement starts with the reload (a rolling restart), not at its next request
    for tenant, starts in (("a", 1), ("b", 2), ("c", 1)):
        assert at(samples, "navigator_tenant_starts_total", tenant=tenant) == starts
        assert at(samples, "navigator_cold_start_seconds_count", tenant=tenant) == starts
