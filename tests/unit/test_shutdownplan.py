"""Shutdown budget arithmetic (issue 22 item 6): drain + stop hooks + graces fit the budget."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from navigator.__main__ import main
from navigator.config.loader import load_config
from navigator.config.runtime import (
    Config,
    Hook,
    Limits,
    ListenAddress,
    ManagedProcess,
    ServerHooks,
    Tenant,
    TenantHooks,
)
from navigator.config.shutdownplan import (
    ShutdownPlan,
    budget_warnings,
    fly_kill_timeout,
    kill_timeout_warnings,
    phase_window,
    plan_shutdown,
)


def config(**kwargs: Any) -> Config:
    base = Config(source=Path("/tmp/navigator.yml"), listen=ListenAddress("", 3000))
    return replace(base, **kwargs)


def tenant(path: str, *stop: Hook) -> Tenant:
    return Tenant(name=path.strip("/"), path=path, root=Path("/tmp"), argv=("app",), env=(),
                  hooks=TenantHooks(stop=stop))


HANG = Hook("backup")  # no timeout of its own: stop_hook_timeout (10s by default)
QUICK = Hook("notify", timeout=2.0)


@pytest.mark.parametrize(("cfg", "expected"), [
    (config(), ShutdownPlan(30.0, 0.0, 0.0, 0.0, 0.0)),
    (config(tenants=(tenant("/a/"),)), ShutdownPlan(30.0, 0.0, 0.0, 5.0, 0.0)),
    (config(server_hooks=ServerHooks(stop=(HANG, QUICK)),
            tenant_hooks=TenantHooks(stop=(QUICK,)),
            tenants=(tenant("/a/"), tenant("/b/", HANG)),
            managed_processes=(ManagedProcess("redis", "redis-server"),)),
     ShutdownPlan(30.0, 12.0, 12.0, 5.0, 5.0)),
    (config(limits=Limits(shutdown_timeout=60.0, stop_hook_timeout=3.0),
            server_hooks=ServerHooks(stop=(HANG,))),
     ShutdownPlan(60.0, 3.0, 0.0, 0.0, 0.0)),
])
def test_plan(cfg: Config, expected: ShutdownPlan) -> None:
    assert plan_shutdown(cfg, 5.0) == expected


@pytest.mark.parametrize(("plan", "drain"), [
    (ShutdownPlan(30.0, 0.0, 0.0, 0.0, 0.0), 29.0),
    (ShutdownPlan(30.0, 12.0, 12.0, 5.0, 5.0), 0.0),  # overdrawn: no drain, not negative
    (ShutdownPlan(30.0, 10.0, 0.0, 5.0, 5.0), 9.0),
])
def test_drain_is_what_the_reserve_leaves(plan: ShutdownPlan, drain: float) -> None:
    assert plan.drain == drain
    if drain:
        assert plan.drain + plan.after_drain == plan.budget


@pytest.mark.parametrize(("reserved", "remaining", "kept_after", "window"), [
    (10.0, 21.0, 11.0, 10.0),  # on plan
    (10.0, 25.0, 11.0, 14.0),  # the drain ended early: the slack goes to this phase
    (10.0, 6.0, 11.0, 6.0),  # overdrawn: its own reserve while any budget is left
    (10.0, 0.0, 11.0, 0.0),
    (0.0, 20.0, 30.0, 0.0),
])
def test_phase_window(reserved: float, remaining: float, kept_after: float,
                      window: float) -> None:
    assert phase_window(reserved, remaining, kept_after) == window


def test_budget_warning_only_when_overdrawn() -> None:
    assert budget_warnings(ShutdownPlan(30.0, 10.0, 10.0, 5.0, 0.0)) == []
    (warning,) = budget_warnings(ShutdownPlan(30.0, 12.0, 12.0, 5.0, 5.0))
    assert "need 35s, more than the shutdown budget of 30s" in warning


def test_kill_timeout_must_cover_the_budget() -> None:
    plan = ShutdownPlan(30.0, 0.0, 0.0, 5.0, 0.0)
    assert kill_timeout_warnings(plan, 35.0, "fly.toml") == []
    (warning,) = kill_timeout_warnings(plan, 5.0, "fly.toml")
    assert "kill_timeout 5s is shorter than the shutdown budget of 30s" in warning


@pytest.mark.parametrize(("document", "seconds"), [
    ({"kill_timeout": 35}, 35.0),
    ({"kill_timeout": "1m"}, 60.0),
    ({}, 5.0),  # Fly's default
    ({"kill_timeout": "soon"}, None),
    ({"kill_timeout": True}, None),
])
def test_fly_kill_timeout(document: dict[str, object], seconds: float | None) -> None:
    assert fly_kill_timeout(document) == seconds


def test_config_warns_when_stop_hooks_overdraw_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "navigator.yml"
    path.write_text("""
server:
  limits: {shutdown_timeout: 15s}
hooks:
  server:
    stop:
      - command: backup
""")
    assert not load_config(path, {}).warnings
    path.write_text(path.read_text().replace("15s", "10s"))
    (warning,) = load_config(path, {}).warnings
    assert "server.limits.shutdown_timeout" in warning
    assert "need 11s, more than the shutdown budget of 10s" in warning


def test_check_prints_the_plan_and_compares_fly_kill_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "navigator.yml"
    path.write_text("server:\n  pid_file: /tmp/x.pid\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fly.toml").write_text('app = "x"\nkill_timeout = 35\n')
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "shutdown budget 30s = drain 29s + server stop hooks 0s" in out
    assert "warning:" not in out
    (tmp_path / "fly.toml").write_text('app = "x"\n')  # Fly's default 5 s
    assert main(["check", str(path)]) == 0
    assert "kill_timeout 5s is shorter than the shutdown budget of 30s" in capsys.readouterr().out
    os.remove(tmp_path / "fly.toml")
    assert main(["check", str(path)]) == 0
    assert "warning:" not in capsys.readouterr().out
