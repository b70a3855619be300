"""On-demand helper processes: the `process` block of a reverse-proxy route, resolved into a
hidden tenant.

Room: config (pure). `loader` calls `resolve_helper` for each route with a `process` block
and appends the result to `Config.tenants`, so the supervisor starts, probes, idle-stops,
logs and counts a helper exactly as it does a tenant (no second lifecycle to keep in step).

Invariants:
- a helper tenant has `helper_route` set and a `path` under `HELPER_PATH_ROOT`: that path is
  only its identity across reloads (the supervisor keys records by path); routing never
  matches it, requests reach the helper only through its route;
- its name is the route's name made unique among tenant names (logs, metrics, cgroups);
- a route with a `process` has no `target`: the process's port is the target.

Must not touch: processes, sockets, routing.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import quote

from navigator.config import runtime as rt
from navigator.config import schema as sc
from navigator.config.applications import PORT_FORMS, expand_environ, unique_name
from navigator.config.context import Context, pairs
from navigator.config.schema import ConfigError, KeyPath

HELPER_PATH_ROOT = "/.navigator-helper/"
"""Identity paths of helpers; not a URL anyone can reach (routing skips helpers)."""


def helper_name(route_name: str, taken: Collection[str]) -> str:
    """The route's name as a process name (`/cable` → `cable`), unique among `taken`."""
    name = route_name.strip("/").replace("/", "-") or "helper"
    return unique_name(name, taken) if name in taken else name


def resolve_helper(spec: sc.HelperProcessSpec, route_name: str, key: KeyPath,
                   defaults: rt.Tenant, taken: Collection[str], ctx: Context) -> rt.Tenant:
    """The hidden tenant that runs `spec`; `defaults` carries the applications-wide timeouts
    (startup, ready) and the port variable a helper inherits when it names none."""
    if not spec.command.strip():
        raise ConfigError("missing required key 'command'", (*key, "command"))
    name = helper_name(route_name, taken)
    argv = tuple(PORT_FORMS.sub(rt.PORT_PLACEHOLDER, arg)
                 for arg in (spec.command, *spec.args))
    env = tuple((k, expand_environ(v, ctx.environ)) for k, v in pairs(spec.env))
    startup = ctx.seconds(spec.startup_timeout, (*key, "startup_timeout"),
                          defaults.startup_timeout)
    ready = max(ctx.seconds(spec.ready_timeout, (*key, "ready_timeout"),
                            defaults.ready_timeout), startup)
    idle = ctx.duration(spec.idle_timeout, (*key, "idle_timeout"), None)
    health = spec.health_check or "/"
    return rt.Tenant(
        name=name, path=f"{HELPER_PATH_ROOT}{quote(name, safe='')}/",
        root=ctx.path(spec.working_dir) if spec.working_dir else ctx.cwd,
        argv=argv, env=env, port_env_var=spec.port_env_var or defaults.port_env_var,
        health_path=health if health.startswith("/") else "/" + health,
        startup_timeout=startup, ready_timeout=ready, track_websockets=True,
        memory_limit=ctx.size(spec.memory_limit, (*key, "memory_limit")),
        capacity=rt.Capacity(idle_timeout=idle, queue_timeout=startup),
        helper_route=route_name)
