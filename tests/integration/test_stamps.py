"""Deployment stamps end to end: three navigator machines, a test edge, a test DNS server.

Every machine runs the same config (only the listen address differs, as each machine has its
own private address): tenants carry a placement (`region:` or `machine:`), and a request that
lands on any machine must reach its tenant's home machine — replayed through the edge when
Fly could replay it, proxied over the "private network" (loopback addresses found through
our DNS responder) when it could not. Failures and loops end in the 503 maintenance page.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    request,
    run_navigator,
    write_config,
)
from tests.integration.stamps_dns import TYPE_A, TYPE_AAAA, DnsResponder, dns_responder
from tests.integration.stamps_edge import Edge, Machine, running_edge

pytestmark = pytest.mark.timeout(120)

APP = "stampapp"
MAINTENANCE_MARK = b"maintenance"
# (machine id, region, private address): ams is reached over IPv6 (AAAA), the others via A.
MACHINES = [("m-iad", "iad", "127.0.0.1"), ("m-ord", "ord", "127.0.0.2"),
            ("m-ams", "ams", "::1")]


def shared_port() -> int:
    """A port free on every machine's address (each machine binds its own address)."""
    for _ in range(50):
        port = random.randrange(20000, 60000)
        try:
            for _, _, host in MACHINES:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family, socket.SOCK_STREAM) as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on all loopback addresses")


def config_text(listen: str, dns: str, start_port: int, placements: str) -> str:
    return f"""
server:
  listen: "{listen}"
stamps:
  dns_servers: ["{dns}"]
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  startup_timeout: 20s
  pools:
    start_port: {start_port}
  tenants:
{placements}
"""


PLACEMENTS = """
    - path: /sam/
      region: ord
    - path: /sally/
      machine: m-ams
    - path: /sally/shared/
    - path: /everywhere/
    - path: /nowhere/
      region: syd
"""


def dns_table() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for machine_id, region, host in MACHINES:
        table.setdefault(f"{region}.{APP}.internal", []).append(host)
        table[f"{machine_id}.vm.{APP}.internal"] = [host]
        table.setdefault(f"{APP}.internal", []).append(host)
    return table


@dataclass
class Cluster:
    edge: Edge
    dns: DnsResponder
    navs: dict[str, Navigator]
    port: int

    def get(self, entry: str, path: str, method: str = "GET", *,
            headers: dict[str, str] | None = None,
            body: bytes = b"") -> tuple[int, bytes, dict[str, str]]:
        """One request landing on machine `entry` through the edge."""
        resp = request(self.edge.ports[entry], method, path, headers=headers, body=body,
                       timeout=30)
        return resp.status, resp.body, {k.lower(): v for k, v in resp.headers}

    def chunked(self, entry: str, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """A chunked request (never replayable, whatever its size) landing on `entry`.

        Failure cases use small bodies: a machine that answers early (503) and closes with a
        large body still unread resets the connection (no lingering close yet), which can
        lose its answer before the client reads it.
        """
        head = (f"{method} {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        with connect(self.edge.ports[entry], 30) as sock:
            sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            resp = Reader(sock).response()
        return resp.status, resp.body


def start_cluster(stack: ExitStack, tmp_path: Path, placements: dict[str, str]) -> Cluster:
    """Machines (same config text apart from listen), the DNS responder and the edge."""
    dns = stack.enter_context(dns_responder(dns_table()))
    port = shared_port()
    start_port = random.randrange(20000, 32000, 101)
    navs = {}
    for machine_id, region, host in MACHINES:
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        folder = tmp_path / machine_id
        folder.mkdir()
        path = write_config(folder, config_text(listen, dns.address, start_port,
                                                placements.get(machine_id, PLACEMENTS)))
        navs[machine_id] = stack.enter_context(run_navigator(path, env={
            "FLY_APP_NAME": APP, "FLY_REGION": region, "FLY_MACHINE_ID": machine_id,
            "LOG_LEVEL": "info"}))
    machines = [Machine(m, r, h, port) for m, r, h in MACHINES]
    edge = stack.enter_context(running_edge(machines, APP, replay_timeout=2.0))
    return Cluster(edge, dns, navs, port)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ExitStack() as stack:
        yield start_cluster(stack, tmp_path_factory.mktemp("stamps"), {})


def served_by(cluster: Cluster, entry: str, path: str) -> str:
    status, body, _ = cluster.get(entry, path + "env?name=FLY_MACHINE_ID")
    assert status == 200, body
    return body.decode()


@pytest.mark.parametrize("entry", ["m-iad", "m-ord", "m-ams"])
def test_every_entry_reaches_the_home_machine(cluster: Cluster, entry: str) -> None:
    assert served_by(cluster, entry, "/sam/") == "m-ord"  # placed by region
    assert served_by(cluster, entry, "/sally/") == "m-ams"  # placed by machine
    assert served_by(cluster, entry, "/sally/shared/") == entry  # nested, not placed
    assert served_by(cluster, entry, "/everywhere/") == entry


def test_replay_carries_authorization_and_markers(cluster: Cluster) -> None:
    status, body, headers = cluster.get("m-iad", "/sam/echo",
                                        headers={"Authorization": "Basic c2FtOnNlY3JldA=="})
    assert status == 200
    seen = {name.lower(): value for name, value in json.loads(body)["headers"]}
    assert seen["authorization"] == "Basic c2FtOnNlY3JldA=="  # dropped by the edge, re-set
    assert seen["x-navigator-retry"] == "true"
    assert seen["fly-replay-src"].startswith("instance=m-iad;region=iad;t=")
    assert headers["x-edge-path"] == "m-iad>m-ord"


@pytest.mark.parametrize(("entry", "tenant", "home"), [
    ("m-iad", "/sam/", "m-ord"),  # region name, A record
    ("m-iad", "/sally/", "m-ams"),  # machine name, AAAA record
    ("m-ord", "/sally/", "m-ams"),
])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_large_upload_is_proxied_with_its_body_intact(cluster: Cluster, entry: str,
                                                      tenant: str, home: str,
                                                      framing: str) -> None:
    body = random.randbytes(5 * 1024 * 1024)
    headers = {"Content-Type": "application/octet-stream"}
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        data = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        headers["Content-Length"] = str(len(body))
        data = body
    head = f"POST {tenant}echo HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n" + \
        "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with connect(cluster.edge.ports[entry], 30) as sock:
        sock.sendall(head.encode() + data)
        resp = Reader(sock).response()
    assert resp.status == 200, resp.body[:300]
    echo = json.loads(resp.body)
    assert echo["body_length"] == len(body)
    assert echo["sha256"] == hashlib.sha256(body).hexdigest()
    seen = {name.lower(): value for name, value in echo["headers"]}
    assert seen["x-navigator-retry"] == "true"  # the loop guard of the private-network hop
    assert seen["x-forwarded-host"] == "app.example"
    assert "fly-replay-src" not in seen  # proxied by navigator, not replayed by the edge
    assert resp.header("x-edge-path") == entry  # the edge saw no replay
    status, served, _ = cluster.get(entry, tenant + "env?name=FLY_MACHINE_ID")
    assert (status, served.decode()) == (200, home)


def test_names_were_resolved_aaaa_first(cluster: Cluster) -> None:
    body = b"x" * (2 * 1024 * 1024)
    status, _, _ = cluster.get("m-iad", "/sam/echo", method="PUT", body=body)
    assert status == 200
    assert cluster.dns.asked(f"ord.{APP}.internal", TYPE_AAAA) >= 1  # no AAAA record: then A
    assert cluster.dns.asked(f"ord.{APP}.internal", TYPE_A) >= 1


def test_region_without_machines_gives_maintenance_page(cluster: Cluster) -> None:
    status, body, headers = cluster.get("m-ord", "/nowhere/x")
    assert status == 503
    assert MAINTENANCE_MARK in body.lower()
    assert headers["x-edge-path"] == "m-ord>m-ord(fallback)"
    status, body = cluster.chunked("m-ord", "POST", "/nowhere/x", b"y" * 100)
    assert status == 503  # syd.<app>.internal does not resolve: no hang, the page
    assert MAINTENANCE_MARK in body.lower()


def test_placement_loop_ends_in_maintenance_page(tmp_path: Path) -> None:
    """Mid-deploy, m-ord still runs a config that places /sam/ in iad: no endless chain."""
    stale = PLACEMENTS.replace("region: ord", "region: iad")
    with ExitStack() as stack:
        cluster = start_cluster(stack, tmp_path, {"m-ord": stale})
        status, body, headers = cluster.get("m-iad", "/sam/x")
        assert status == 503
        assert MAINTENANCE_MARK in body.lower()
        assert headers["x-edge-path"] == "m-iad>m-ord"  # replayed once, then stopped
        status, body = cluster.chunked("m-iad", "POST", "/sam/x", b"z" * 100)
        assert status == 503, body  # proxied once with the loop guard, which m-ord refuses
        assert MAINTENANCE_MARK in body.lower()


def test_machine_down_falls_back_then_maintenance(tmp_path: Path) -> None:
    with ExitStack() as stack:
        cluster = start_cluster(stack, tmp_path, {})
        assert served_by(cluster, "m-iad", "/sally/") == "m-ams"
        cluster.navs["m-ams"].stop()
        status, body, headers = cluster.get("m-iad", "/sally/x")
        assert status == 503
        assert MAINTENANCE_MARK in body.lower()
        assert headers["x-edge-path"] == "m-iad>m-ams!>m-iad(fallback)"
        for method in ("POST", "PUT"):  # PUT retries with back-off, POST does not; both end
            status, body = cluster.chunked("m-iad", method, "/sally/x", b"w" * 100)
            assert status == 503
            assert MAINTENANCE_MARK in body.lower()
