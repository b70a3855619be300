"""Launching one tenant process: its spawn spec (argv, env, user, memory cgroup), waiting
for it to answer HTTP, and cleaning up after it exits.

Room: I/O helpers for `supervisor`, which decides when; these only do. No tenant state here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping

import psutil

from navigator.config.runtime import PORT_PLACEHOLDER, Config, Pools, Tenant
from navigator.tenants.cgroups import MemoryCgroup
from navigator.tenants.hooks import run_hooks
from navigator.tenants.listeners import holds_any, listener_inodes
from navigator.tenants.procs import ChildProcess, OnceLog, SpawnSpec
from navigator.tenants.tenantstate import LOOPBACK, SupervisorPolicy, pidfile_path, probe

log = logging.getLogger("navigator.supervisor")


def spawn_spec(tenant: Tenant, port: int, environ: Mapping[str, str], pools: Pools,
               once: OnceLog, index: int = 0) -> SpawnSpec:
    """How to start process `index` of `tenant` on `port`: its argv and env with the port
    filled in, the user and group to run as (root only), and a memory cgroup when it has a
    limit (one per process: removing one process's group kills its members)."""
    env = dict(environ)
    env[tenant.port_env_var] = str(port)
    env["PIDFILE"] = str(pidfile_path(tenant))  # one per tenant; the tenant's env wins
    env.update(tenant.env)
    if index:  # a pool's further processes: their own file, whatever the tenant's env says
        env["PIDFILE"] = str(pidfile_path(tenant, index))
    argv = tuple(arg.replace(PORT_PLACEHOLDER, str(port)) for arg in tenant.argv)
    user, group = tenant.user or pools.user, tenant.group or pools.group
    if (user or group) and os.geteuid() != 0:
        once.warning("user", "pools.user/group need root: running tenants as %d",
                           os.geteuid())
        user = group = ""
    return SpawnSpec(name=tenant.name or tenant.path, argv=argv, env=env, cwd=tenant.root,
                     user=user, group=group, cgroup=_cgroup(tenant, once, index))

def _cgroup(tenant: Tenant, once: OnceLog, index: int) -> MemoryCgroup | None:
    if not tenant.memory_limit:
        return None
    if os.geteuid() != 0:
        once.warning("cgroup", "memory limits need root: running without them")
        return None
    try:
        name = f"{tenant.name}-{index}" if index else tenant.name
        return MemoryCgroup.create(name, tenant.memory_limit)
    except OSError as exc:
        once.warning("cgroup", "memory limits unavailable (%s): running without",
                           exc)
        return None

async def wait_ready(port: int, path: str, child: ChildProcess, limit: float,
                     policy: SupervisorPolicy, ready_on_5xx: bool = True) -> bool:
    """Poll until an HTTP status line answers (any, or below 500 unless `ready_on_5xx`: a
    5xx then means "not yet"); False after `limit` seconds (the tenant's
    ready_timeout, independent of how long a request waits: a slow boot goes on after
    the request got the maintenance page, and serves the next one)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    interval = policy.probe_first
    head = (f"GET {path or '/'} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
            "User-Agent: navigator-readiness\r\nConnection: close\r\n\r\n").encode("latin-1")
    fast_until = loop.time() + policy.probe_fast_phase
    foreign_seen = False
    while child.returncode is None:
        if await probe(port, head, policy.probe_timeout, ready_on_5xx):
            if await asyncio.to_thread(listens_in_tree, child.pid, port):
                return True
            if not foreign_seen:  # another program took the port between our bind probe
                foreign_seen = True  # and the tenant's bind: never route to it
                log.warning("port %d answers, but not from tenant pid %d: waiting for the "
                            "tenant (it cannot bind a taken port and will exit)", port,
                            child.pid)
        now = loop.time()
        if now >= deadline:
            return False
        await asyncio.sleep(interval)
        if now >= fast_until:  # a refused connect costs ~50 µs: poll fast at first
            interval = min(policy.probe_max, interval * 1.5)
    return False


def listens_in_tree(pid: int, port: int) -> bool:
    """True when `pid` or one of its descendants (a shell wrapper's server, Puma's master)
    listens on TCP `port`. A readiness answer from anyone else is another program's. The
    listener's inode comes from `listeners` (cheap on a machine with many closed
    connections, see there); psutil answers where /proc cannot."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    inodes = listener_inodes(port)
    if inodes is None:  # not Linux
        return _listens_in_tree_psutil(tree, port)
    if not inodes:
        return False
    held = holds_any([process.pid for process in tree], inodes)
    return True if held is None else held  # not ours to inspect: do not block it


def _listens_in_tree_psutil(tree: list[psutil.Process], port: int) -> bool:
    for process in tree:
        try:
            sockets = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:  # not ours to inspect (another user): do not block it
            return True
        if any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port
               for s in sockets):
            return True
    return False


def close_cgroup(tenant: Tenant, cgroup: MemoryCgroup) -> None:
    """Log what a tenant's memory cgroup saw (an OOM kill, the peak), then remove it."""
    current, peak = cgroup.usage()
    if cgroup.oom_killed():
        log.warning("tenant %s was killed by the OOM killer (peak %d bytes)", tenant.name,
                    peak)
    else:
        log.info("tenant %s memory: current %d, peak %d bytes", tenant.name, current, peak)
    cgroup.remove()

def delete_pidfile(tenant: Tenant, index: int = 0) -> None:
    with contextlib.suppress(OSError):
        pidfile_path(tenant, index).unlink()


async def run_tenant_hooks(config: Config, tenant: Tenant, port: int | None, which: str,
                           environ: Mapping[str, str]) -> bool:
    """The `which` hooks of `tenant`: the defaults, then its own list, in its root (where a
    migration or a relative path in args means what the tenant's own process takes it to)."""
    # An on-demand helper (a cable server) is not the app: the tenants' default hooks
    # (migrations, cache warming) are not its business.
    defaults = () if tenant.helper_route else getattr(config.tenant_hooks, which)
    own = getattr(tenant.hooks, which)
    if not defaults and not own:
        return True
    env = {**environ, **dict(tenant.env)}
    variables = {"name": tenant.name, "path": tenant.path, "root": str(tenant.root),
                 "port": str(port or "")}
    # A stop hook must fit the shutdown budget; a before_start hook holds the start, so it
    # gets as long as the boot itself may take. A start hook runs beside the boot.
    timeout = {"stop": config.limits.stop_hook_timeout,
               "before_start": tenant.ready_timeout}.get(which)
    result = await run_hooks(defaults, env, variables=variables, cwd=tenant.root,
                             default_timeout=timeout)
    if result.ok:
        result = await run_hooks(own, env, variables=variables, cwd=tenant.root,
                                 default_timeout=timeout)
    if not result.ok:
        log.warning("tenant %s %s hooks failed", tenant.name, which)
    return result.ok
