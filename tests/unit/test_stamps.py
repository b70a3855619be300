"""The placement map: tenant `region:` / `machine:` compiled into replay rules, and what the
rule walk and routing make of them on each machine; plus the Fly request context helpers."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from navigator.config import runtime as rt
from navigator.config.loader import ConfigError, load_config, summarize
from navigator.config.stamps import placement_rules, valid_stamp_name
from navigator.web.decision import ProxyExternal, ProxyTenant, RequestInfo, Respond
from navigator.web.routing import route
from navigator.web.rules import FALLBACK_RETRIES, MAINTENANCE, ReplayFallback, RuleList
from navigator.web.snapshot import build_snapshot

CONFIG = """
server: {listen: 3000}
stamps: {dns_servers: ["127.0.0.1:5353", "[fdaa::3]:53", "10.0.0.1"]}
applications:
  tenants:
    - path: /sam/
      region: ord
    - path: /sally/
      machine: m-ams
      region: ams
    - path: /sally/shared/
    - path: /sam/list1/
      region: iad
    - path: /everywhere/
"""
FLY = {"FLY_APP_NAME": "smooth", "FLY_REGION": "iad", "FLY_MACHINE_ID": "m-iad"}


def load(tmp_path: Path, text: str = CONFIG, environ: Mapping[str, str] = FLY) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, environ, cwd=tmp_path)


def req(path: str, method: str = "GET", **kwargs: object) -> RequestInfo:
    return RequestInfo(method=method, path=path, query="", host="h", peer_ip="10.0.0.9",
                       **kwargs)  # type: ignore[arg-type]


def tenant(path: str, region: str = "", machine: str = "") -> rt.Tenant:
    return rt.Tenant(name=path.strip("/"), path=path, root=Path("/tmp"), argv=("x",), env=(),
                     region=region, machine=machine)


# --- the compile step ------------------------------------------------------------------------
def test_placement_rules_longest_path_first_with_targets() -> None:
    rules = placement_rules([tenant("/a/", region="ord"), tenant("/a/b/", machine="m1"),
                             tenant("/c/"), tenant("/a/b/c/"), tenant("/d/e/")])
    assert [(r.pattern.pattern, r.replay) for r in rules] == [
        (r"^/a/b/c/", rt.ReplayTarget(placement="/a/b/c/")),  # nested, unplaced: "here"
        (r"^/a/b/", rt.ReplayTarget(machine="m1", placement="/a/b/")),
        (r"^/a/", rt.ReplayTarget(region="ord", placement="/a/")),
    ]  # /c/ and /d/e/ live everywhere and are not nested in a placed tenant: no rule


def test_placement_rules_escape_the_path() -> None:
    (rule,) = placement_rules([tenant("/a.b+c/", region="ord")])
    assert rule.pattern.match("/a.b+c/x")
    assert not rule.pattern.match("/aXb+c/x")


def test_config_puts_placement_after_user_replays_and_slash_redirects(
        tmp_path: Path) -> None:
    config = load(tmp_path, CONFIG + "routes: {fly: {replay: [{path: ^/pdf/, app: pdf}]}}\n")
    kinds = [(r.kind, r.replay.placement if r.replay else r.exact) for r in config.rules]
    assert kinds == [
        ("replay", ""),
        ("redirect", "/sam"), ("redirect", "/sally"), ("redirect", "/sally/shared"),
        ("redirect", "/sam/list1"), ("redirect", "/everywhere"),
        ("replay", "/sally/shared/"), ("replay", "/sam/list1/"), ("replay", "/sally/"),
        ("replay", "/sam/"),
    ]
    assert config.tenants[1].machine == "m-ams"
    assert config.stamp.dns_servers == ("127.0.0.1:5353", "[fdaa::3]:53", "10.0.0.1")
    summary = summarize(config)
    assert "replay   ^/sam/ -> ord" in summary
    assert "replay   ^/sally/shared/ -> (lives everywhere)" in summary


@pytest.mark.parametrize(("text", "key"), [
    ("applications: {tenants: [{path: /a/, region: 'o rd'}]}", "tenants[0].region"),
    ("applications: {tenants: [{path: /a/, machine: m.1}]}", "tenants[0].machine"),
    ("stamps: {dns_servers: [dns.google:53]}", "stamps.dns_servers[0]"),
    ("stamps: {dns_servers: ['127.0.0.1:99999']}", "stamps.dns_servers[0]"),
    ("stamps: {dns_servers: ['[::1]x']}", "stamps.dns_servers[0]"),
])
def test_bad_stamp_names_are_config_errors(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert key in str(info.value)


@pytest.mark.parametrize(("name", "ok"), [
    ("ord", True), ("m-1a2b", True), ("148e21ea7e1578", True), ("", False), ("-x", False),
    ("x-", False), ("a.b", False), ("a b", False), ("x" * 63, True), ("x" * 64, False),
])
def test_valid_stamp_name(name: str, ok: bool) -> None:
    assert valid_stamp_name(name) is ok


# --- what each machine does ------------------------------------------------------------------
@pytest.mark.parametrize(("environ", "path", "expected"), [
    # on m-iad (region iad): /sam/ lives in ord, /sam/list1/ here, /sally/ on m-ams
    (FLY, "/sam/x", "replay:ord"),
    (FLY, "/sam/list1/x", "local"),
    (FLY, "/sam/list1", "redirect"),
    (FLY, "/sally/x", "replay:m-ams"),
    (FLY, "/sally/shared/x", "local"),  # nested tenant without placement: everywhere
    (FLY, "/everywhere/x", "local"),
    # on m-ams in ams: /sally/ is home, /sam/list1/ is in iad
    ({**FLY, "FLY_REGION": "ams", "FLY_MACHINE_ID": "m-ams"}, "/sally/x", "local"),
    ({**FLY, "FLY_REGION": "ams", "FLY_MACHINE_ID": "m-ams"}, "/sam/list1/x", "replay:iad"),
    # another machine in ams: /sally/ is placed on a machine, not a region
    ({**FLY, "FLY_REGION": "ams", "FLY_MACHINE_ID": "m-2"}, "/sally/x", "replay:m-ams"),
    # not on Fly (development): every tenant is served here
    ({}, "/sam/x", "local"),
    ({}, "/sally/x", "local"),
])
def test_decision_per_machine(tmp_path: Path, environ: Mapping[str, str], path: str,
                              expected: str) -> None:
    decision = route(build_snapshot(load(tmp_path, environ=environ)), req(path))
    if isinstance(decision, ProxyTenant):
        assert expected == "local"
        assert path.startswith(decision.tenant.path)
        return
    assert isinstance(decision, Respond)
    if decision.status == 302:
        assert expected == "redirect"
        return
    assert decision.response_type == "fly-replay"
    body = json.loads(decision.body)
    assert expected == f"replay:{body.get('region') or body.get('instance')}"


def test_placement_replay_bodies_exact(tmp_path: Path) -> None:
    snapshot = build_snapshot(load(tmp_path))
    region = route(snapshot, req("/sam/x", authorization="Bearer t"))
    machine = route(snapshot, req("/sally/x"))
    assert region == Respond(
        307, (("Content-Type", "application/vnd.fly.replay+json"),),
        b'{"region": "ord", "timeout": "30s", "fallback": "force_self", "transform": '
        b'{"set_headers": [{"name": "X-Navigator-Retry", "value": "true"}, '
        b'{"name": "Authorization", "value": "Bearer t"}]}}', "fly-replay")
    assert isinstance(machine, Respond)
    assert machine.body == (
        b'{"app": "smooth", "instance": "m-ams", "timeout": "30s", "fallback": "force_self", '
        b'"transform": {"set_headers": [{"name": "X-Navigator-Retry", "value": "true"}]}}')


@pytest.mark.parametrize(("method", "kwargs", "host", "retries"), [
    ("POST", {"content_length": 5 << 20}, "ord.smooth.internal", 0),
    ("PUT", {"chunked": True}, "ord.smooth.internal", FALLBACK_RETRIES),
    ("DELETE", {"content_length": 1 << 20}, "ord.smooth.internal", FALLBACK_RETRIES),
    ("PATCH", {"chunked": True}, "ord.smooth.internal", 0),
])
def test_ineligible_placed_request_is_proxied(tmp_path: Path, method: str,
                                              kwargs: dict[str, object], host: str,
                                              retries: int) -> None:
    decision = route(build_snapshot(load(tmp_path)), req("/sam/x", method, **kwargs))
    assert decision == ProxyExternal(rt.UpstreamTarget("http", host, 3000, ""), "/sam/x",
                                     (("X-Navigator-Retry", "true"),), (), None,
                                     "fly-replay-proxy", retries)


def test_machine_placement_proxies_to_the_machine_name(tmp_path: Path) -> None:
    decision = route(build_snapshot(load(tmp_path)), req("/sally/up", "POST", chunked=True))
    assert isinstance(decision, ProxyExternal)
    assert decision.target.host == "m-ams.vm.smooth.internal"


@pytest.mark.parametrize("kwargs", [{"fly_replay_failed": True}, {"navigator_retry": True},
                                    {"navigator_retry": True, "chunked": True}])
def test_placed_request_that_comes_back_gets_maintenance(tmp_path: Path,
                                                         kwargs: dict[str, object]) -> None:
    table = RuleList.build(load(tmp_path))
    method = "POST" if kwargs.get("chunked") else "GET"
    assert table.run("/sam/x", req("/sam/x", method, **kwargs))[1] is MAINTENANCE


def test_loop_markers_ignored_for_local_tenants(tmp_path: Path) -> None:
    table = RuleList.build(load(tmp_path))
    assert table.run("/sam/list1/x", req("/sam/list1/x", navigator_retry=True))[1] is None


def test_placement_block_is_one_lookup_not_a_scan(tmp_path: Path) -> None:
    lines = "\n".join(f"    - path: /t{i}/\n      region: r{i % 7}" for i in range(2000))
    config = load(tmp_path, f"applications:\n  tenants:\n{lines}\n")
    table = RuleList.build(config)
    placement_steps = [s for s in table.steps if s.placement is not None]
    assert len(placement_steps) == 1
    assert len(placement_steps[0].placement.plans) == 2000  # type: ignore[union-attr]
    _, terminal = table.run("/t1234/x", req("/t1234/x", "POST", chunked=True))
    assert isinstance(terminal, ReplayFallback)
    assert terminal.target.host == f"r{1234 % 7}.smooth.internal"
