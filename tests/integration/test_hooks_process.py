"""Hooks for real: a timeout kills the whole process tree; env is passed through."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from navigator.config.runtime import Hook
from navigator.tenants.hooks import run_hooks
from tests.fixtures.apps.support import PY, TREE, our_descendants, pid_alive, run, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_timeout_kills_hook_and_its_grandchildren(tmp_path: Path, loop: str) -> None:
    async def body() -> None:
        pidfile = tmp_path / "grandchild.pid"
        after = tmp_path / "after"
        # The timeout is the subject, so it can't wait on a signal: 3 s leaves two Python
        # start-ups (hook and grandchild) ample time to record the pid on a loaded machine.
        hooks = [Hook(PY, (str(TREE), str(pidfile)), timeout=3.0),
                 Hook(PY, ("-c", f"open({str(after)!r}, 'w')"))]
        result = await run_hooks(hooks, {"PATH": "/usr/bin:/bin"})
        assert not result.ok
        grandchild = int(pidfile.read_text())
        await wait_for(lambda: not pid_alive(grandchild), message="grandchild killed")
        assert our_descendants() == []
        assert not after.exists()  # the list stopped at the failure
    run(body, loop)


def test_hook_environment_is_exactly_what_was_given(tmp_path: Path) -> None:
    async def body() -> None:
        out = tmp_path / "env.json"
        code = f"import os, json; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"
        result = await run_hooks([Hook(PY, ("-c", code))], {"ONLY": "this"})
        assert result.ok
        env = json.loads(out.read_text())
        env.pop("LC_CTYPE", None)  # the interpreter may add its locale coercion
        assert env == {"ONLY": "this"}
    run(body)


def test_cancelled_hook_leaves_nothing_running(tmp_path: Path) -> None:
    async def body() -> None:
        pidfile = tmp_path / "grandchild.pid"
        task = asyncio.ensure_future(run_hooks([Hook(PY, (str(TREE), str(pidfile)))], {}))
        await wait_for(pidfile.exists)
        grandchild = int(pidfile.read_text())
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_for(lambda: not pid_alive(grandchild))
        assert our_descendants() == []
    run(body)
