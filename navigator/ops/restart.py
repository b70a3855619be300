"""`navigator restart NAME|PATH`, the server's side: which tenant is meant, and restarting it.

Room: ops (the lookup is pure over a snapshot; the restart awaits the supervisor). Wired by
`server.py` as the control channel's `restart` handler.

What a restart is here: the tenant's stop hooks, then its process is stopped (SIGTERM →
grace → SIGKILL; Puma, uvicorn and gunicorn finish in-flight requests on SIGTERM), then a
fresh process is started and awaited, so the answer names the new pid. Requests that arrive
meanwhile wait for the new process as they would on a cold start. The rolling restart of
the process pools (feat/pool: start new, switch, drain old) replaces `restart` at merge;
`find_target` and the control channel stay.

Invariants:
- a NAME is a tenant's or helper's name; a PATH (starts with `/`) is resolved with the
  routing table, as a request to it would be (`/sam/list1` → the tenant at `/sam/list1/`),
  then against the reverse-proxy routes that run an on-demand helper;
- a tenant that is not running is not started by a restart (nothing to restart: the next
  request starts it), and the caller is told so.

Must not touch: processes directly, the routing decisions themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from navigator.config.runtime import Tenant
from navigator.ops.control import ControlError
from navigator.tenants.launch import run_tenant_hooks
from navigator.tenants.supervisor import Supervisor
from navigator.web.snapshot import Snapshot


def find_target(snapshot: Snapshot, text: str) -> Tenant | None:
    """PURE. The tenant (or helper) `text` names, by name or by URL path."""
    tenants = snapshot.config.tenants
    for tenant in tenants:
        if tenant.name == text:
            return tenant
    if not text.startswith("/"):
        return None
    path = text
    found = snapshot.routes.find_tenant(path if path.endswith("/") else path + "/")
    if found is not None:
        return found
    for proxy in snapshot.routes.proxies:
        route = proxy.route
        if route.helper is None:
            continue
        if route.pattern is not None:
            if route.pattern.search(path):
                return route.helper
        elif route.prefix is not None and (path.startswith(route.prefix)
                                           or path + "/" == route.prefix):
            return route.helper
    return None


class TenantRestarter:
    """The `restart` control handler (`Callable[[str], Awaitable[str]]`)."""

    def __init__(self, supervisor: Supervisor, snapshot: Callable[[], Snapshot],
                 environ: Mapping[str, str]) -> None:
        self._supervisor = supervisor
        self._snapshot = snapshot  # read per call: a reload may have changed the tenants
        self._environ = environ

    async def __call__(self, text: str) -> str:
        if not text:
            raise ControlError("restart needs a tenant name or path")
        snapshot = self._snapshot()
        tenant = find_target(snapshot, text)
        if tenant is None:
            raise ControlError(f"no tenant named or routed at {text!r}")
        state, before = self._running(tenant)
        if before is None:
            raise ControlError(f"tenant {tenant.name} is {state}: nothing to restart (a "
                               "request starts it)")
        pid, port = before
        await run_tenant_hooks(snapshot.config, tenant, port, "stop", self._environ)
        await self._supervisor.stop_tenant(tenant, "restart")
        try:
            await self._supervisor.ensure_ready(tenant)
        except Exception as exc:  # launch failure, crash loop: the operator must know
            raise ControlError(f"tenant {tenant.name} stopped (pid {pid}) but did not start "
                               f"again: {exc}") from exc
        _, after = self._running(tenant)
        new_pid = after[0] if after is not None else "?"
        return f"restarted tenant {tenant.name}: pid {pid} -> {new_pid}"

    def _running(self, tenant: Tenant) -> tuple[str, tuple[int, int | None] | None]:
        """The tenant's state, and (pid, port) of its serving process (None when none)."""
        state = "stopped"  # a tenant no request has reached yet has no record
        for facts in self._supervisor.status():
            if facts["path"] != tenant.path or facts["retired"]:
                continue
            state = str(facts["state"])
            pid, port = facts["pid"], facts["port"]
            if state in ("ready", "draining") and isinstance(pid, int):
                return state, (pid, port if isinstance(port, int) else None)
        return state, None
