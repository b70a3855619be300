"""`navigator restart NAME|PATH`, the server's side: which tenant is meant, and restarting it.

Room: ops (the lookup is pure over a snapshot; the restart awaits the supervisor). Wired by
`server.py` as the control channel's `restart` handler.

What a restart is here: the supervisor's rolling restart (`Supervisor.restart_tenant`):
as many new processes as the tenant runs start and become ready, new requests go to them,
the old ones finish their in-flight requests (websockets up to `drain_timeout`) and are
then stopped. No request fails; when no new process comes up the old ones keep serving and
the caller is told why.

Invariants:
- a NAME is a tenant's or helper's name; a PATH (starts with `/`) is resolved with the
  routing table, as a request to it would be (`/sam/list1` → the tenant at `/sam/list1/`),
  then against the reverse-proxy routes that run an on-demand helper;
- a tenant that is not running is not started by a restart (nothing to restart: the next
  request starts it), and the caller is told so.

Must not touch: processes directly, the routing decisions themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from navigator.config.runtime import Tenant
from navigator.ops.control import ControlError
from navigator.tenants.supervisor import Supervisor, TenantLaunchError, UnknownTenant
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

    def __init__(self, supervisor: Supervisor, snapshot: Callable[[], Snapshot]) -> None:
        self._supervisor = supervisor
        self._snapshot = snapshot  # read per call: a reload may have changed the tenants

    async def __call__(self, text: str) -> str:
        if not text:
            raise ControlError("restart needs a tenant name or path")
        tenant = find_target(self._snapshot(), text)
        if tenant is None:
            raise ControlError(f"no tenant named or routed at {text!r}")
        before = self._pids(tenant)
        try:
            result = await self._supervisor.restart_tenant(tenant)
        except (TenantLaunchError, UnknownTenant) as exc:
            raise ControlError(f"tenant {tenant.name}: {exc}") from exc
        if not result.replaced:
            raise ControlError(f"tenant {tenant.name} is stopped: nothing to restart "
                               "(a request starts it)")
        old = ", ".join(map(str, before)) or "?"
        new = ", ".join(map(str, result.pids)) or "?"
        if result.replaced == 1:
            return f"restarted tenant {tenant.name}: pid {old} -> {new}"
        return (f"restarted tenant {tenant.name}: {result.replaced} processes, "
                f"pids {old} -> {new}")

    def _pids(self, tenant: Tenant) -> list[int]:
        """The pids serving `tenant` now (before the restart), for the answer."""
        for facts in self._supervisor.status():
            if facts.get("path") == tenant.path and not facts.get("retired"):
                pids = facts.get("pids")
                if isinstance(pids, list | tuple):
                    return [p for p in pids if isinstance(p, int)]
                pid = facts.get("pid")
                return [pid] if isinstance(pid, int) else []
        return []
