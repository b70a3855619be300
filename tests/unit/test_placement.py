"""One machine per user: `prefer_instance` placement, `stamps.users`, and what routing makes
of a replay when `stamps.machine_start` checks the destination first."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from navigator.config import runtime as rt
from navigator.config.loader import ConfigError, load_config, summarize
from navigator.config.stamps import path_glob, placement_rules
from navigator.web.decision import (
    Destination,
    ProxyExternal,
    ProxyTenant,
    ReplayWhenUp,
    RequestInfo,
    Respond,
)
from navigator.web.routing import route
from navigator.web.rules import MAINTENANCE, RuleList
from navigator.web.snapshot import build_snapshot

CONFIG = """
server: {listen: 3000}
stamps:
  users:
    raleigh: {prefer_instance: m-ral, tenants: ["/showcase/*/raleigh/*"]}
    boston: {machine: m-bos, tenants: ["/showcase/2025/boston/*"]}
applications:
  tenants:
    - path: /showcase/2025/raleigh/disney/
    - path: /showcase/2024/raleigh/spring/
    - path: /showcase/2025/raleigh/own/
      region: ord
    - path: /showcase/2025/boston/fall/
    - path: /solo/
      prefer_instance: m-solo
    - path: /forced/
      machine: m-f
      prefer_instance: m-ignored
    - path: /everywhere/
"""
FLY = {"FLY_APP_NAME": "smooth", "FLY_REGION": "iad", "FLY_MACHINE_ID": "m-iad"}
START = "  machine_start: {enabled: true, timeout: 7s, backoff: 3s}\n"


def load(tmp_path: Path, text: str = CONFIG, environ: Mapping[str, str] = FLY) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, environ, cwd=tmp_path)


def with_start(text: str = CONFIG) -> str:
    return text.replace("stamps:\n", "stamps:\n" + START, 1)


def req(path: str, method: str = "GET", **kwargs: object) -> RequestInfo:
    return RequestInfo(method=method, path=path, query="", host="h", peer_ip="10.0.0.9",
                       **kwargs)  # type: ignore[arg-type]


def placement_of(config: rt.Config) -> dict[str, tuple[str, str, str]]:
    return {t.path: (t.region, t.machine, t.prefer_instance) for t in config.tenants}


# --- the compile step ------------------------------------------------------------------------
def test_users_place_their_tenants_and_own_keys_win(tmp_path: Path) -> None:
    assert placement_of(load(tmp_path)) == {
        "/showcase/2025/raleigh/disney/": ("", "", "m-ral"),
        "/showcase/2024/raleigh/spring/": ("", "", "m-ral"),
        "/showcase/2025/raleigh/own/": ("ord", "", ""),  # its own placement wins
        "/showcase/2025/boston/fall/": ("", "m-bos", ""),
        "/solo/": ("", "", "m-solo"),
        "/forced/": ("", "m-f", "m-ignored"),
        "/everywhere/": ("", "", ""),
    }


def test_placement_rules_carry_prefer_instance_and_machine_wins() -> None:
    tenants = [rt.Tenant(name="a", path="/a/", root=Path("/"), argv=("x",), env=(),
                         region="ord", prefer_instance="m1"),
               rt.Tenant(name="b", path="/b/", root=Path("/"), argv=("x",), env=(),
                         machine="m2", prefer_instance="m3")]
    assert [r.replay for r in placement_rules(tenants)] == [
        rt.ReplayTarget(prefer_instance="m1", placement="/a/"),
        rt.ReplayTarget(machine="m2", placement="/b/")]


@pytest.mark.parametrize(("glob", "path", "matches"), [
    ("/showcase/*/raleigh/*", "/showcase/2025/raleigh/disney/", True),
    ("/showcase/*/raleigh/*", "/showcase/2025/raleigh/", False),
    ("/showcase/*/raleigh/*", "/showcase/2025/x/raleigh/disney/", False),  # * is one segment
    ("/showcase/*/raleigh/*/", "/showcase/2025/raleigh/a/", True),
    ("/t?/", "/t1/", True),
    ("/t?/", "/t12/", False),
    ("/a.b/", "/axb/", False),  # regex characters are literal
    ("solo", "/solo/", True),
])
def test_path_glob(glob: str, path: str, matches: bool) -> None:
    assert bool(path_glob(glob).match(path)) is matches


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("stamps: {users: {u: {tenants: ['/a/']}}}", "stamps.users.u",
     "needs a region, machine or prefer_instance"),
    ("stamps: {users: {u: {prefer_instance: 'm.1', tenants: ['/a/']}}}",
     "stamps.users.u.prefer_instance", "valid Fly machine name"),
    ("stamps: {users: {u: {machine: m1, tenants: ['/a/']}, v: {machine: m2, tenants: ['/*/']}}}",
     "stamps.users.v.tenants[0]", "also user 'u'"),
    ("applications: {tenants: [{path: /a/, prefer_instance: 'x y'}]}",
     "tenants[0].prefer_instance", "valid Fly machine name"),
    ("routes: {fly: {replay: [{path: ^/x, prefer_instance: 'a_b'}]}}",
     "routes.fly.replay[0].prefer_instance", "valid Fly machine name"),
])
def test_bad_placements_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    full = text if "applications" in text else text + "\napplications: {tenants: [{path: /a/}]}"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, full)
    assert key in str(info.value)
    assert reason in str(info.value)


def test_replay_rule_region_is_not_checked_as_a_label(tmp_path: Path) -> None:
    config = load(tmp_path, "routes: {fly: {replay: [{path: ^/x, region: 'sjc,any'}]}}")
    assert [r.replay.region for r in config.rules if r.replay] == ["sjc,any"]


def test_user_glob_matching_nothing_is_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "stamps: {users: {u: {machine: m1, tenants: ['/nope/*']}}}\n"
                            "applications: {tenants: [{path: /a/}]}")
    assert any("stamps.users.u.tenants[0]" in w and "matches no tenant" in w
               for w in config.warnings)


def test_machine_start_settings(tmp_path: Path) -> None:
    default = load(tmp_path).stamp.machine_start
    assert default == rt.MachineStart(False, 30.0, 10.0, "/.fly/api")
    config = load(tmp_path, with_start().replace(
        "server: {listen: 3000}", "server: {listen: 3000, idle: {fly_api_socket: /run/f.sock}}"))
    assert config.stamp.machine_start == rt.MachineStart(True, 7.0, 3.0, "/run/f.sock")


def test_summary_names_preferred_machines_and_machine_start(tmp_path: Path) -> None:
    assert "replay   ^/solo/ -> m-solo (preferred)" in summarize(load(tmp_path))
    assert "machine start" not in summarize(load(tmp_path))
    assert ("machine start before replay: wait 7s, back-off 3s, API /.fly/api"
            in summarize(load(tmp_path, with_start())))


# --- what each machine does ------------------------------------------------------------------
def replay_body(decision: object) -> dict[str, object]:
    assert isinstance(decision, Respond), decision
    assert decision.response_type == "fly-replay"
    body: dict[str, object] = json.loads(decision.body)
    return body


def test_prefer_instance_replay_body_exact(tmp_path: Path) -> None:
    decision = route(build_snapshot(load(tmp_path)), req("/solo/x"))
    assert isinstance(decision, Respond)
    assert decision.body == (
        b'{"app": "smooth", "prefer_instance": "m-solo", "timeout": "30s", "fallback": '
        b'"force_self", "transform": {"set_headers": [{"name": "X-Navigator-Retry", '
        b'"value": "true"}]}}')


@pytest.mark.parametrize(("machine", "path", "expected"), [
    ("m-iad", "/showcase/2025/raleigh/disney/x", {"prefer_instance": "m-ral"}),
    ("m-iad", "/showcase/2025/boston/fall/x", {"instance": "m-bos"}),
    ("m-iad", "/forced/x", {"instance": "m-f"}),
    ("m-ral", "/showcase/2024/raleigh/spring/x", "local"),  # the preferred machine serves
    ("m-iad", "/everywhere/x", "local"),
])
def test_decision_per_machine(tmp_path: Path, machine: str, path: str,
                              expected: object) -> None:
    config = load(tmp_path, environ={**FLY, "FLY_MACHINE_ID": machine})
    decision = route(build_snapshot(config), req(path))
    if expected == "local":
        assert isinstance(decision, ProxyTenant)
        return
    assert isinstance(expected, dict)
    body = replay_body(decision)
    assert {k: body[k] for k in expected} == expected
    assert body["app"] == "smooth"


@pytest.mark.parametrize("kwargs", [{"fly_replay_failed": True}, {"navigator_retry": True},
                                    {"navigator_retry": True, "chunked": True}])
def test_preferred_request_fly_sent_elsewhere_is_served_there(
        tmp_path: Path, kwargs: dict[str, object]) -> None:
    """Fly fell back from the preferred machine to this one: serving here is the contract;
    a forced machine keeps the maintenance page (no replay loop either way)."""
    table = RuleList.build(load(tmp_path))
    method = "POST" if kwargs.get("chunked") else "GET"
    preferred = "/showcase/2025/raleigh/disney/x"
    assert table.run(preferred, req(preferred, method, **kwargs))[1] is None
    assert table.run("/forced/x", req("/forced/x", method, **kwargs))[1] is MAINTENANCE


def test_preferred_large_upload_is_proxied_to_the_preferred_machine(tmp_path: Path) -> None:
    decision = route(build_snapshot(load(tmp_path)), req("/solo/up", "POST", chunked=True))
    assert isinstance(decision, ProxyExternal)
    assert decision.target.host == "m-solo.vm.smooth.internal"


# --- with stamps.machine_start ---------------------------------------------------------------
@pytest.mark.parametrize(("path", "machine", "forced"), [
    ("/solo/x", "m-solo", False),
    ("/forced/x", "m-f", True),
    ("/showcase/2025/boston/fall/x", "m-bos", True),
])
def test_machine_replays_wait_for_their_machine(tmp_path: Path, path: str, machine: str,
                                                forced: bool) -> None:
    snapshot = build_snapshot(load(tmp_path, with_start()))
    decision = route(snapshot, req(path))
    assert isinstance(decision, ReplayWhenUp)
    assert decision.destination == Destination("smooth", machine,
                                               f"{machine}.vm.smooth.internal", 3000, forced)
    assert replay_body(decision.answer)["app"] == "smooth"
    with_auth = route(snapshot, req(path, authorization="Bearer t"))
    assert isinstance(with_auth, ReplayWhenUp)
    assert b'"Bearer t"' in with_auth.answer.body
    assert with_auth.destination == decision.destination


def test_region_replays_and_local_tenants_are_not_checked(tmp_path: Path) -> None:
    text = with_start().replace("      region: ord", "      region: ams")
    snapshot = build_snapshot(load(tmp_path, text))
    assert replay_body(route(snapshot, req("/showcase/2025/raleigh/own/x")))["region"] == "ams"
    local = build_snapshot(load(tmp_path, with_start(), {**FLY, "FLY_MACHINE_ID": "m-solo"}))
    assert isinstance(route(local, req("/solo/x")), ProxyTenant)


def test_replayed_request_is_never_checked_again(tmp_path: Path) -> None:
    snapshot = build_snapshot(load(tmp_path, with_start()))
    assert route(snapshot, req("/forced/x", navigator_retry=True)) is snapshot.maintenance
    assert isinstance(route(snapshot, req("/solo/x", navigator_retry=True)), ProxyTenant)


def test_not_on_fly_nothing_is_checked(tmp_path: Path) -> None:
    snapshot = build_snapshot(load(tmp_path, with_start(), {}))
    assert isinstance(route(snapshot, req("/forced/x")), ProxyTenant)


def test_large_upload_waits_for_the_machine_too(tmp_path: Path) -> None:
    snapshot = build_snapshot(load(tmp_path, with_start()))
    decision = route(snapshot, req("/forced/up", "POST", chunked=True))
    assert isinstance(decision, ProxyExternal)
    assert decision.target.host == "m-f.vm.smooth.internal"
    assert decision.destination == Destination("smooth", "m-f", "m-f.vm.smooth.internal",
                                               3000, True)
    plain = route(build_snapshot(load(tmp_path)), req("/forced/up", "POST", chunked=True))
    assert isinstance(plain, ProxyExternal)
    assert plain.destination is None
