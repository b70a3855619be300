"""On-demand helper processes: a reverse-proxy `process` block resolved into a hidden tenant,
and routed only through its route."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from navigator.config import runtime as rt
from navigator.config.helpers import HELPER_PATH_ROOT, helper_name
from navigator.config.loader import ConfigError, load_config, summarize
from navigator.web.decision import ProxyTenant, RequestInfo
from navigator.web.routing import route
from navigator.web.snapshot import build_snapshot

CONFIG = """
applications:
  startup_timeout: 7s
  framework: {port_env_var: APP_PORT}
  tenants:
    - path: /cable/
      name: cable
      args: [x]
routes:
  reverse_proxies:
    - name: cable
      prefix: /ws/
      strip_path: true
      headers: {X-Via: helper}
      response_headers: {X-Served: helper}
      process:
        command: anycable-go
        args: ["--port", "{{port}}", "${HOME}"]
        env: {REDIS: "${REDIS_URL:-redis://localhost}"}
        working_dir: sub
        health_check: health
        idle_timeout: 90s
        memory_limit: 64M
"""


def load(tmp_path: Path, text: str) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, {"HOME": "/home/x"}, cwd=tmp_path)


def req(path: str) -> RequestInfo:
    return RequestInfo(method="GET", path=path, query="", host="h", peer_ip="127.0.0.1")


def test_process_block_becomes_a_hidden_tenant(tmp_path: Path) -> None:
    config = load(tmp_path, CONFIG)
    proxy = config.reverse_proxies[0]
    helper = proxy.helper
    assert helper is not None
    assert config.tenants[-1] is helper
    assert helper.name == "cable-2"  # unique among tenant names (logs, metrics, cgroups)
    assert helper.path == f"{HELPER_PATH_ROOT}cable-2/"
    assert helper.helper_route == "cable"
    assert helper.argv == ("anycable-go", "--port", rt.PORT_PLACEHOLDER, "${HOME}")
    assert helper.env == (("REDIS", "redis://localhost"),)
    assert helper.root == tmp_path / "sub"
    assert helper.port_env_var == "APP_PORT"
    assert helper.health_path == "/health"
    assert helper.startup_timeout == 7.0
    assert helper.capacity.idle_timeout == 90.0
    assert helper.memory_limit == 64 * 1024 * 1024
    assert helper.track_websockets


def test_check_lists_a_helper_with_its_route_not_as_a_tenant(tmp_path: Path) -> None:
    text = summarize(load(tmp_path, CONFIG))
    assert "tenants 1 " in text
    assert HELPER_PATH_ROOT not in text
    assert "  cable: /ws/ -> on-demand process cable-2: anycable-go --port {port} ${HOME}" \
        in text


def test_helper_is_reached_only_through_its_route(tmp_path: Path) -> None:
    config = load(tmp_path, CONFIG)
    snapshot = build_snapshot(config)
    helper = config.reverse_proxies[0].helper
    assert helper is not None
    decision = route(snapshot, req("/ws/socket"))
    assert decision == ProxyTenant(helper, "/socket", (("X-Via", "helper"),),
                                   (("X-Served", "helper"),))
    assert not isinstance(route(snapshot, req(helper.path + "x")), ProxyTenant)
    assert snapshot.routes.find_tenant(helper.path + "x") is None


@pytest.mark.parametrize(("block", "reason"), [
    ("target: http://127.0.0.1:9\n      process: {command: x}", "has no 'target'"),
    ("process: {args: [x]}", "command"),
    ("process: {command: ' '}", "missing required key 'command'"),
    ("{}", "missing required key 'target' (or 'process')"),
])
def test_bad_process_blocks_name_the_key(tmp_path: Path, block: str, reason: str) -> None:
    text = f"""
routes:
  reverse_proxies:
    - prefix: /x/
      {block}
"""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text.replace("- prefix: /x/\n      {}", "- prefix: /x/"))
    assert "routes.reverse_proxies[0]" in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(("route_name", "taken", "expected"), [
    ("/cable/", set(), "cable"),
    ("/a/b", set(), "a-b"),
    ("/", set(), "helper"),
    ("cable", {"cable"}, "cable-2"),
    ("cable", {"cable", "cable-2"}, "cable-3"),
])
def test_helper_names(route_name: str, taken: set[str], expected: str) -> None:
    assert helper_name(route_name, taken) == expected
