"""Who the client is, through the real server, with `server.trust_proxy` off and on (issue 22).

Room: integration tests. One navigator per setting, a tenant and a reverse-proxy route both
running the echo backend. Per request we look at what the backend received (X-Forwarded-For,
X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, and a route header built from `$remote_addr`,
`$scheme`, `$host`) and at `client_ip` in the request's access-log line.

- trust_proxy off: the client is the socket peer, full stop. Incoming X-Forwarded-For,
  X-Real-IP, Fly-Client-IP, X-Forwarded-Proto and X-Forwarded-Host are not believed;
  X-Forwarded-For is passed on with the peer appended (never trusted).
- trust_proxy on: Fly-Client-IP, else the right-most X-Forwarded-For entry that is not an
  internal hop (loopback, private, link-local, CGNAT, ULA), else X-Real-IP, else the peer.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    run_backend_app,
    run_navigator,
    wait_until,
    write_config,
)
from tests.helpers import request as http_request

pytestmark = pytest.mark.timeout(60)

HOST = "site.example"
PEER = "127.0.0.1"


@dataclass
class Server:
    nav: Navigator
    trust: bool


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    with run_backend_app() as port:
        yield port


def config_text(root: Path, backend: int, trust: bool | None) -> str:
    setting = "" if trust is None else f"trust_proxy: {'true' if trust else 'false'}"
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  {setting}
routes:
  reverse_proxies:
    - name: api
      prefix: /api/
      target: http://127.0.0.1:{backend}
      headers:
        X-Client: "$remote_addr"
        X-Scheme: "$scheme"
        X-Host: "$host"
logging:
  access_log: true
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /b/
"""


@pytest.fixture(scope="module", params=["off", "on", "unset_on_fly"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           backend: int) -> Iterator[Server]:
    """trust_proxy written false or true, or left unset on a Fly machine (FLY_APP_NAME in
    the environment), where it is on: Fly's proxy is every connection's peer."""
    setting = {"off": False, "on": True, "unset_on_fly": None}[request.param]
    env = {"FLY_APP_NAME": "client-ip-test"} if setting is None else {}
    root = tmp_path_factory.mktemp(f"trust-{request.param}")
    with run_navigator(write_config(root, config_text(root, backend, setting)), env=env) as nav:
        wait_until(lambda: http_request(nav.port, "GET", "/b/warm", timeout=20).status == 200, 20,
                   message="tenant /b/ to answer")
        yield Server(nav, setting is not False)


def access_line(nav: Navigator, rid: str) -> dict[str, object]:
    def found() -> list[dict[str, object]]:
        with nav._lock:
            lines = list(nav.lines)
        docs = []
        for line in lines:
            if line.startswith("{"):
                doc = json.loads(line)
                if isinstance(doc, dict) and doc.get("request_id") == rid:
                    docs.append(doc)
        return docs

    matches = wait_until(found, 10, message=f"the access line of {rid}")
    assert isinstance(matches, list)
    assert len(matches) == 1, matches
    return matches[0]


def exchange(server: Server, path: str, headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """(headers the backend received, client_ip of the access line)."""
    rid = f"t-{uuid.uuid4().hex}"
    resp = http_request(server.nav.port, "GET", path,
                   headers={"Host": HOST, "X-Request-Id": rid, **headers}, timeout=20)
    assert resp.status == 200, resp
    received = {k.lower(): v for k, v in json.loads(resp.body)["headers"]}
    client_ip = access_line(server.nav, rid)["client_ip"]
    assert isinstance(client_ip, str)
    return received, client_ip


SPOOF = {"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.7", "Fly-Client-IP": "6.6.6.8",
         "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


@pytest.mark.parametrize("path", ["/b/echo", "/api/echo"], ids=["tenant", "reverse_proxy"])
def test_without_headers_the_client_is_the_peer(server: Server, path: str) -> None:
    received, client_ip = exchange(server, path, {})
    assert client_ip == PEER
    assert received["x-forwarded-for"] == PEER
    assert received["x-real-ip"] == PEER
    assert received["x-forwarded-proto"] == "http"
    assert received["x-forwarded-host"] == HOST
    if path.startswith("/api/"):
        assert (received["x-client"], received["x-scheme"], received["x-host"]) == (
            PEER, "http", HOST)


@pytest.mark.parametrize("path", ["/b/echo", "/api/echo"], ids=["tenant", "reverse_proxy"])
def test_forwarding_headers_believed_only_with_trust_proxy(server: Server, path: str) -> None:
    received, client_ip = exchange(server, path, SPOOF)
    # X-Forwarded-For is appended to either way: the backend can tell what the peer said.
    assert received["x-forwarded-for"] == f"6.6.6.6, {PEER}"
    if server.trust:
        client, scheme, host = "6.6.6.8", "https", "evil.example"  # Fly-Client-IP wins
    else:
        client, scheme, host = PEER, "http", HOST
    assert client_ip == client
    assert received["x-real-ip"] == client
    assert received["x-forwarded-proto"] == scheme
    assert received["x-forwarded-host"] == host
    assert received["fly-client-ip"] == "6.6.6.8"  # passed on untouched, never believed off
    if path.startswith("/api/"):
        assert (received["x-client"], received["x-scheme"]) == (client, scheme)


@pytest.mark.parametrize(("headers", "trusted_client"), [
    pytest.param({"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}, "203.0.113.7", id="right_most"),
    pytest.param({"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.0.0.2, 127.0.0.1"},
                 "203.0.113.7", id="internal_hops_skipped"),
    pytest.param({"X-Forwarded-For": "[2001:db8::1]:443, fd00::5"}, "2001:db8::1",
                 id="ipv6_with_port"),
    pytest.param({"X-Forwarded-For": "203.0.113.9:4711"}, "203.0.113.9", id="ipv4_with_port"),
    pytest.param({"X-Forwarded-For": "10.9.9.9, 10.1.2.3"}, "10.1.2.3", id="internal_client"),
    pytest.param({"X-Forwarded-For": "6.6.6.6, not-an-ip"}, PEER, id="garbage_entry"),
    pytest.param({"X-Real-IP": "198.51.100.8"}, "198.51.100.8", id="real_ip"),
    pytest.param({"X-Real-IP": "<script>"}, PEER, id="real_ip_garbage"),
    pytest.param({"X-Forwarded-For": "6.6.6.6", "Fly-Client-IP": "not-an-ip"}, "6.6.6.6",
                 id="fly_garbage_falls_back"),
])
def test_trusted_client_address(server: Server, headers: dict[str, str],
                                trusted_client: str) -> None:
    received, client_ip = exchange(server, "/api/echo", headers)
    expected = trusted_client if server.trust else PEER
    assert client_ip == expected
    assert received["x-real-ip"] == expected
    assert received["x-client"] == expected
