"""Lifecycle hook commands (reference section 14.1).

Room: I/O (subprocesses). Runs a list of hooks one after another and reports whether the
list succeeded; deciding what a `reload_config` means belongs to the server (section 14.2).

Invariants:
- no shell: `command` is executed directly with `args`; `${name}` in args is replaced from
  `variables` (unknown names are left as written, as in tenant env templates);
- a hook runs in `cwd` when given (a tenant's hooks: the tenant's root), else in navigator's
  working directory;
- output is streamed line by line on `navigator.output` with source `hook:<basename>`;
- a timeout kills the whole process tree (group + descendants), then the hook counts as failed;
  a hook without its own timeout gets the caller's `default_timeout` (stop hooks: so one
  that hangs cannot outlast the shutdown budget), else none;
- cancelling a running list kills the running hook's tree too;
- a list stops at its first failure (non-zero exit, timeout or launch error);
- `HookResult.reload_config` is the first non-empty `reload_config` of a successful list.

Must not touch: configuration state, tenants, sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from navigator.config.runtime import Hook
from navigator.tenants.procs import SpawnSpec, spawn, spawn_failure_reason

log = logging.getLogger("navigator.hooks")

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class HookResult:
    ok: bool
    reload_config: str = ""


def substitute(arg: str, variables: Mapping[str, str]) -> str:
    """Replace `${name}` with variables[name]; unknown names stay as written."""
    if "${" not in arg or not variables:
        return arg
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), arg)


async def run_hook(hook: Hook, env: Mapping[str, str], *,
                   variables: Mapping[str, str] = _NO_VARIABLES,
                   cwd: Path | None = None,
                   default_timeout: float | None = None) -> bool:
    """Run one hook (in `cwd` if given); True on exit status 0 within its timeout."""
    timeout = default_timeout if hook.timeout is None else hook.timeout
    argv = (hook.command, *(substitute(arg, variables) for arg in hook.args))
    name = "hook:" + os.path.basename(hook.command)
    try:
        child = await spawn(SpawnSpec(name=name, argv=argv, env=env, cwd=cwd))
    except (OSError, ValueError) as exc:
        log.error("hook %s could not be started: %s", hook.command, spawn_failure_reason(exc))
        return False
    try:
        status = await asyncio.wait_for(asyncio.shield(child.wait()), timeout)
    except TimeoutError:
        await child.stop(0.0)
        log.error("hook %s timed out after %gs: process tree killed", hook.command, timeout)
        return False
    except asyncio.CancelledError:  # server shutting down: leave nothing behind
        await asyncio.shield(child.stop(0.0))
        raise
    if status != 0:
        log.error("hook %s failed: %s", hook.command, child.describe_exit(status))
        return False
    return True


async def run_hooks(hooks: Sequence[Hook], env: Mapping[str, str], *,
                    variables: Mapping[str, str] = _NO_VARIABLES,
                    cwd: Path | None = None,
                    default_timeout: float | None = None) -> HookResult:
    """Run hooks in order, stopping at the first failure."""
    for hook in hooks:
        if not await run_hook(hook, env, variables=variables, cwd=cwd,
                              default_timeout=default_timeout):
            return HookResult(False)
    reload_config = next((hook.reload_config for hook in hooks if hook.reload_config), "")
    return HookResult(True, reload_config)
