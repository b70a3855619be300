"""Hook argument substitution and list semantics (tiny real commands)."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from navigator.config.runtime import Hook
from navigator.tenants.hooks import HookResult, run_hooks, substitute

PY = sys.executable


@pytest.mark.parametrize(("arg", "expected"), [
    ("plain", "plain"),
    ("${name}", "boston"),
    ("--db=${name}.sqlite3", "--db=boston.sqlite3"),
    ("${missing}", "${missing}"),
    ("$name", "$name"),
    ("${name}-${port}", "boston-4001"),
])
def test_substitute(arg: str, expected: str) -> None:
    assert substitute(arg, {"name": "boston", "port": "4001"}) == expected


def test_list_stops_at_first_failure_and_reports_reload_only_when_ok(tmp_path: object) -> None:
    ok = Hook(PY, ("-c", "pass"), reload_config="next.yml")
    fail = Hook(PY, ("-c", "raise SystemExit(2)"))
    assert asyncio.run(run_hooks([ok, Hook(PY, ("-c", "pass"))], {})) == HookResult(
        True, "next.yml")
    assert asyncio.run(run_hooks([fail, ok], {})) == HookResult(False, "")
    assert asyncio.run(run_hooks([], {})) == HookResult(True, "")


def test_missing_command_is_a_failure_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    assert not asyncio.run(run_hooks([Hook("/nonexistent/hook")], {})).ok
    assert "could not be started" in caplog.text


def test_output_streamed_with_hook_source_and_variables(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="navigator.output")
    hook = Hook(PY, ("-c", "import sys; print(sys.argv[1]); print('err', file=sys.stderr)",
                     "hello ${who}"))
    assert asyncio.run(run_hooks([hook], {}, variables={"who": "world"})).ok
    records = [r for r in caplog.records if r.name == "navigator.output"]
    lines = {(r.getMessage(), getattr(r, "stream", "")) for r in records}
    assert ("hello world", "stdout") in lines
    assert ("err", "stderr") in lines
    assert {getattr(r, "source", "") for r in records} == {"hook:" + PY.rsplit("/", 1)[-1]}


def test_default_timeout_applies_only_to_hooks_without_their_own(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 22 item 6: a stop hook that sets no timeout must not hang shutdown."""
    hang = Hook(PY, ("-c", "import time; time.sleep(600)"))
    assert not asyncio.run(run_hooks([hang], {}, default_timeout=0.2)).ok
    assert "timed out after 0.2s" in caplog.text
    own = Hook(PY, ("-c", "import time; time.sleep(0.3)"), timeout=30.0)
    assert asyncio.run(run_hooks([own], {}, default_timeout=0.01)).ok
