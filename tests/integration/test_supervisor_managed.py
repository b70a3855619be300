"""Managed processes for real: auto_restart back-off, reload diff, stop order at shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.config.runtime import ManagedProcess
from navigator.tenants.supervisor import Supervisor
from tests.fixtures.apps.support import (
    FAST,
    MANAGED_APP,
    PY,
    make_config,
    make_tenant,
    our_descendants,
    run,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def starts(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_auto_restart_after_failure_with_counter(tmp_path: Path) -> None:
    async def body() -> None:
        count = tmp_path / "count"
        failing = ManagedProcess("failing", PY, (str(MANAGED_APP), str(count), "1"),
                                 auto_restart=True)
        sup = Supervisor(make_config(tmp_path, (), managed_processes=(failing,)), policy=FAST)
        await sup.start()
        await wait_for(lambda: starts(count) >= 4, message="restarts")
        status = sup.managed_status()[0]
        assert status["name"] == "failing"
        assert int(status["restarts"]) >= 3  # type: ignore[call-overload]
        await sup.shutdown(1.0)
        stopped_at = starts(count)
        assert our_descendants() == []
        assert starts(count) == stopped_at
    run(body)


def test_zero_exit_and_no_auto_restart_are_not_restarted(tmp_path: Path) -> None:
    async def body() -> None:
        clean, failed = tmp_path / "clean", tmp_path / "failed"
        procs = (ManagedProcess("clean", PY, (str(MANAGED_APP), str(clean), "0"),
                                auto_restart=True),
                 ManagedProcess("failed", PY, (str(MANAGED_APP), str(failed), "3")))
        sup = Supervisor(make_config(tmp_path, (), managed_processes=procs), policy=FAST)
        await sup.start()
        await wait_for(lambda: all(s["state"] == "exited" for s in sup.managed_status()))
        assert (starts(clean), starts(failed)) == (1, 1)
        await sup.shutdown(1.0)
    run(body)


def test_start_delay_does_not_block_the_others(tmp_path: Path) -> None:
    async def body() -> None:
        late, early = tmp_path / "late", tmp_path / "early"
        procs = (ManagedProcess("late", PY, (str(MANAGED_APP), str(late), "run"),
                                start_delay=30.0),
                 ManagedProcess("early", PY, (str(MANAGED_APP), str(early), "run")))
        sup = Supervisor(make_config(tmp_path, (), managed_processes=procs), policy=FAST)
        await sup.start()
        await wait_for(lambda: starts(early) == 1)
        assert starts(late) == 0
        await sup.shutdown(1.0)
        assert our_descendants() == []
    run(body)


def test_reload_restarts_changed_stops_removed_keeps_same(tmp_path: Path) -> None:
    async def body() -> None:
        files = {n: tmp_path / n for n in ("same", "changed", "removed", "added")}

        def proc(name: str, *extra: str) -> ManagedProcess:
            return ManagedProcess(name, PY, (str(MANAGED_APP), str(files[name]), "run"),
                                  env=tuple(("X", e) for e in extra))

        config = make_config(tmp_path, (), managed_processes=(
            proc("same"), proc("changed", "1"), proc("removed")))
        sup = Supervisor(config, policy=FAST)
        await sup.start()
        await wait_for(lambda: all(starts(files[n]) == 1 for n in ("same", "changed",
                                                                     "removed")))
        await sup.apply_config(make_config(tmp_path, (), pools=config.pools, managed_processes=(
            proc("same"), proc("changed", "2"), proc("added"))))
        await wait_for(lambda: starts(files["changed"]) == 2 and starts(files["added"]) == 1)
        assert starts(files["same"]) == 1
        names = {s["name"]: s["state"] for s in sup.managed_status()}
        assert names == {"same": "running", "changed": "running", "added": "running"}
        assert len(our_descendants()) == 3
        await sup.shutdown(1.0)
        assert our_descendants() == []
    run(body)


def test_shutdown_stops_tenants_before_managed_processes(tmp_path: Path) -> None:
    async def body() -> None:
        stop_log = tmp_path / "stops"
        redis = ManagedProcess("redis", PY, (str(MANAGED_APP), str(tmp_path / "c"), "run",
                                             str(stop_log)), env=(("APP_NAME", "managed"),))
        tenant = make_tenant("web", tmp_path, env={"STOP_LOG": str(stop_log)})
        sup = Supervisor(make_config(tmp_path, (tenant,), managed_processes=(redis,)),
                         policy=FAST)
        await sup.start()
        await sup.ensure_ready(tenant)
        await wait_for(lambda: starts(tmp_path / "c") == 1)
        await sup.shutdown(2.0)
        assert stop_log.read_text().splitlines() == ["web term", "managed term"]
        assert our_descendants() == []
    run(body)
