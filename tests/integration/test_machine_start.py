"""Smarter replay end to end: a tenant's machine is stopped, a request for it arrives on
another machine, navigator sees the machine missing from the private DNS, starts it through
a fake Machines API (which really starts the second navigator and publishes its DNS name),
and replays once it answers; through the test edge, as Fly's proxy would.

Two machines on loopback (m-iad 127.0.0.1, m-ord 127.0.0.2, one port), the DNS responder
and the edge of `test_stamps`; m-ord starts stopped (no process, no DNS name). Every test
records a timeline from the rig's own clocks (client, DNS responder, API, edge) and prints
it (`pytest -s` shows it; the report quotes one).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    request,
    run_navigator,
    wait_until,
    write_config,
)
from tests.integration.fake_machines_api import FakeMachinesApi, fake_machines_api
from tests.integration.stamps_dns import DnsResponder, dns_responder
from tests.integration.stamps_edge import Edge, Machine, running_edge
from tests.integration.test_stamps import shared_port

pytestmark = pytest.mark.timeout(120)

APP = "stampapp"
HOSTS = {"m-iad": ("iad", "127.0.0.1"), "m-ord": ("ord", "127.0.0.2")}
ORD_NAME = f"m-ord.vm.{APP}.internal"
MAINTENANCE_MARK = b"maintenance"


def config_text(listen: str, dns: str, api: Path, start_port: int, timeout: str) -> str:
    return f"""
server:
  listen: "{listen}"
stamps:
  dns_servers: ["{dns}"]
  machine_start: {{enabled: true, timeout: {timeout}, backoff: 30s, fly_api_socket: "{api}"}}
  users:
    sally: {{machine: m-ord, tenants: ["/sally/*"]}}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  startup_timeout: 20s
  pools:
    start_port: {start_port}
  tenants:
    - path: /sally/a/
    - path: /sally/b/
    - path: /solo/
      prefer_instance: m-ord
    - path: /everywhere/
"""


@dataclass
class Rig:
    edge: Edge
    dns: DnsResponder
    api: FakeMachinesApi
    navs: dict[str, Navigator]
    stack: ExitStack
    marks: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self, what: str) -> None:
        with self.lock:
            self.marks.append((time.monotonic(), what))

    def get(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        self.mark(f"client sends GET {path} to m-iad")
        resp = request(self.edge.ports["m-iad"], "GET", path, timeout=60)
        self.mark(f"client got {resp.status} for {path}")
        return resp.status, resp.body, {k.lower(): v for k, v in resp.headers}

    def post_chunked(self, path: str, body: bytes) -> tuple[int, bytes]:
        """A chunked POST (never replayable: navigator proxies it over the private network)."""
        self.mark(f"client sends chunked POST {path} to m-iad")
        head = (f"POST {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        with connect(self.edge.ports["m-iad"], 60) as sock:
            sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            resp = Reader(sock).response()
        self.mark(f"client got {resp.status} for {path}")
        return resp.status, resp.body

    def timeline(self) -> list[tuple[float, str]]:
        """Every event the rig saw, in order, in seconds since the first."""
        events = list(self.marks)
        events += [(at, f"DNS {'answer' if found else 'miss (NXDOMAIN)'} {name} "
                        f"{'AAAA' if qtype == 28 else 'A'}")
                   for at, name, qtype, found in self.dns.events if name == ORD_NAME]
        events += [(call.at, f"Machines API {call.method} {call.path}") for call in self.api.calls]
        events += [(at, f"edge: {what} ({machine})") for at, what, machine in self.edge.events]
        events.sort()
        start = events[0][0]
        return [(at - start, what) for at, what in events]

    def print_timeline(self, title: str) -> None:
        print(f"\n--- {title}")
        for at, what in self.timeline():
            print(f"{at * 1000:8.1f} ms  {what}")


def start_rig(stack: ExitStack, tmp_path: Path, *, timeout: str = "20s",
              boots: bool = True, api_status: int = 200) -> Rig:
    dns = stack.enter_context(dns_responder({
        f"m-iad.vm.{APP}.internal": ["127.0.0.1"], f"iad.{APP}.internal": ["127.0.0.1"]}))
    port = shared_port()
    start_port = 20000 + 101 * (port % 190)
    api_path = tmp_path / "api.sock"
    configs = {}
    for machine_id, (_, host) in HOSTS.items():
        folder = tmp_path / machine_id
        folder.mkdir()
        configs[machine_id] = write_config(folder, config_text(f"{host}:{port}", dns.address,
                                                               api_path, start_port, timeout))
    navs: dict[str, Navigator] = {}
    rig_box: list[Rig] = []

    def boot(machine_id: str) -> None:
        """What "start" means here: run the machine's navigator, then publish its name."""
        if not boots or machine_id != "m-ord":
            return
        rig = rig_box[0]
        rig.mark("m-ord: navigator process starting")
        navs[machine_id] = stack.enter_context(run_navigator(configs[machine_id], env=env(
            machine_id)))
        rig.mark("m-ord: navigator listening")
        dns.publish(ORD_NAME, ["127.0.0.2"])
        dns.publish(f"ord.{APP}.internal", ["127.0.0.2"])
        rig.mark("m-ord: running (DNS name published)")

    api = stack.enter_context(fake_machines_api(api_path, boot, api_status))
    navs["m-iad"] = stack.enter_context(run_navigator(configs["m-iad"], env=env("m-iad")))
    machines = [Machine(m, region, host, port) for m, (region, host) in HOSTS.items()]
    edge = stack.enter_context(running_edge(machines, APP, replay_timeout=2.0))
    rig = Rig(edge, dns, api, navs, stack)
    rig_box.append(rig)
    return rig


def env(machine_id: str) -> dict[str, str]:
    return {"FLY_APP_NAME": APP, "FLY_REGION": HOSTS[machine_id][0],
            "FLY_MACHINE_ID": machine_id, "LOG_LEVEL": "info"}


def in_threads(count: int, call: Callable[[], tuple[int, bytes, dict[str, str]]]
               ) -> list[tuple[int, bytes, dict[str, str]]]:
    results: list[tuple[int, bytes, dict[str, str]]] = []
    lock = threading.Lock()

    def run() -> None:
        answer = call()
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(results) == count
    return results


def test_request_for_a_stopped_machine_starts_it_once_then_replays(tmp_path: Path) -> None:
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path)
        answers = in_threads(5, lambda: rig.get("/sally/a/env?name=FLY_MACHINE_ID"))
        for status, body, headers in answers:
            assert (status, body) == (200, b"m-ord"), body[:200]
            assert headers["x-edge-path"] == "m-iad>m-ord"  # one replay, straight home
        assert len(rig.api.starts("m-ord")) == 1  # five waiting requests, one start
        metrics = request(rig.navs["m-iad"].port, "GET", "/_navigator/metrics").body
        assert b'navigator_machine_starts_total{machine="m-ord",result="accepted"} 1' in metrics
        rig.print_timeline("5 concurrent requests, m-ord stopped")
        order = [what for _, what in rig.timeline()]
        first = {key: next(i for i, w in enumerate(order) if w.startswith(key))
                 for key in ("client sends", "DNS miss", "Machines API POST",
                             "m-ord: running", "edge: replay answer", "client got 200")}
        assert list(first.values()) == sorted(first.values()), order

        # The machine runs now and its name is cached: the next request pays no lookup.
        asked = len(rig.dns.events)
        status, body, _ = rig.get("/sally/b/env?name=FLY_MACHINE_ID")
        assert (status, body) == (200, b"m-ord")
        assert len(rig.dns.events) == asked
        assert len(rig.api.starts("m-ord")) == 1


def test_start_that_never_completes_gives_maintenance_after_the_timeout(tmp_path: Path) -> None:
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path, timeout="2s", boots=False)
        status, body, headers = rig.get("/sally/a/x")
        assert status == 503
        assert MAINTENANCE_MARK in body.lower()
        assert headers["retry-after"] == "30"  # the back-off: when a new start may be tried
        assert headers["x-edge-path"] == "m-iad"  # never replayed, so never looped
        assert len(rig.api.starts("m-ord")) == 1
        rig.print_timeline("start accepted, machine never comes up (timeout 2s)")
        # Within the back-off a second request waits again but makes no second start call.
        status, _, _ = rig.get("/sally/b/x")
        assert status == 503
        assert len(rig.api.starts("m-ord")) == 1
        assert "machine m-ord not running" in rig.navs["m-iad"].output()


def test_failed_start_backs_off(tmp_path: Path) -> None:
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path, timeout="1s", api_status=500)
        for _ in range(2):
            status, body, _ = rig.get("/sally/a/x")
            assert status == 503
            assert MAINTENANCE_MARK in body.lower()
        assert len(rig.api.starts("m-ord")) == 1
        assert "Machines API start of m-ord answered 500" in rig.navs["m-iad"].output()
        metrics = request(rig.navs["m-iad"].port, "GET", "/_navigator/metrics").body
        assert b'navigator_machine_starts_total{machine="m-ord",result="refused"} 1' in metrics


def test_preferred_machine_that_stays_down_falls_back_to_another(tmp_path: Path) -> None:
    """prefer_instance: after the timeout the replay goes out anyway; the edge (as Fly) finds
    m-ord down and falls back to m-iad, which serves it (the replay marker stops a loop)."""
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path, timeout="1s", boots=False)
        status, body, headers = rig.get("/solo/env?name=FLY_MACHINE_ID")
        assert (status, body) == (200, b"m-iad")
        assert headers["x-edge-path"] == "m-iad>m-ord!>m-iad"
        assert len(rig.api.starts("m-ord")) == 1
        rig.print_timeline("prefer_instance, machine never comes up (timeout 1s)")


def test_running_machine_is_replayed_to_without_a_start(tmp_path: Path) -> None:
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path)
        rig.api.on_start("m-ord")  # as if it had been started earlier
        wait_until(lambda: "m-ord" in rig.navs, 30, message="m-ord to run")
        status, body, headers = rig.get("/solo/env?name=FLY_MACHINE_ID")
        assert (status, body) == (200, b"m-ord")
        assert headers["x-edge-path"] == "m-iad>m-ord"
        assert rig.api.starts("m-ord") == []


def test_upload_too_large_to_replay_starts_the_machine_then_is_proxied(tmp_path: Path) -> None:
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path)
        status, body = rig.post_chunked("/sally/a/env?name=FLY_MACHINE_ID", b"u" * 5000)
        assert (status, body) == (200, b"m-ord")
        assert len(rig.api.starts("m-ord")) == 1
        assert [e for e in rig.edge.events if e[1] == "replay answer"] == []  # proxied
        rig.print_timeline("chunked upload, m-ord stopped")


def test_machine_being_deployed_is_waited_for_without_a_second_start(tmp_path: Path) -> None:
    """Mid-deploy the API refuses the start (409) but the machine comes up by itself: the
    request keeps watching DNS and is replayed once it answers."""
    with ExitStack() as stack:
        rig = start_rig(stack, tmp_path, api_status=409)
        answers: list[tuple[int, bytes, dict[str, str]]] = []
        client = threading.Thread(
            target=lambda: answers.append(rig.get("/sally/a/env?name=FLY_MACHINE_ID")))
        client.start()
        wait_until(lambda: rig.api.starts("m-ord"), 30, message="the start call")
        rig.mark("deploy: new m-ord comes up")
        rig.api.on_start("m-ord")  # the deploy's new machine, not our start call
        client.join(60)
        assert [(status, body) for status, body, _ in answers] == [(200, b"m-ord")]
        assert answers[0][2]["x-edge-path"] == "m-iad>m-ord"
        assert len(rig.api.starts("m-ord")) == 1
        rig.print_timeline("start refused (409, deploy), machine comes up by itself")
