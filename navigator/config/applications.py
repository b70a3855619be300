"""The `applications` section: tenants (names, paths, env, argv, timeouts) and managed
processes, resolved into runtime records.

Room: config (pure; reads `environ` only through the `Context` while resolving). `loader`
calls `resolve_tenants` and `resolve_managed`; the helpers that expand `${NAME}` and
`{{port}}` are public because the supervisor's tests and `navigator check` reuse them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from urllib.parse import quote

from navigator.config import runtime as rt
from navigator.config import schema as sc
from navigator.config.capacity import check_pool_defaults, resolve_capacity
from navigator.config.context import (
    Context,
    pairs,
    resolve_bots,
    resolve_tenant_hooks,
    slashed,
)
from navigator.config.schema import ConfigError, KeyPath
from navigator.config.stamps import check_stamp_names

DEFAULT_READY_TIMEOUT = 300.0  # a slow boot (Rails, several tenants on a small shared CPU)
LEGACY_ARGV = ("ruby", "bin/rails", "server", "-b", "0.0.0.0", "-p", rt.PORT_PLACEHOLDER)
PORT_FORMS = re.compile(r"\{\{\s*port\s*\}\}|\$\{port\}")
_VAR_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_YAML_BOOL = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})


def _render(value: object) -> str:
    """A tenant `var` value as text: scalars as written, YAML 1.2 booleans in lowercase."""
    if isinstance(value, str):
        return value.lower() if value in _YAML_BOOL else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value) if isinstance(value, int | float) else json.dumps(value)


def expand_environ(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME}` / `${NAME:-default}` from `environ`; an unset `${NAME}` stays as written."""
    if "${" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        value = environ.get(match.group(1))
        default = match.group(2)
        if default is not None:
            return value or default
        return match.group(0) if value is None else value

    return _ENV_REF.sub(one, text)


def tenant_env(template: Mapping[str, str], variables: Mapping[str, object],
               own: Mapping[str, str], environ: Mapping[str, str]) -> rt.Pairs:
    """Section 10.2: template with `${var}`, then the tenant's env, then `${NAME}` from environ."""
    rendered = {name: _render(value) for name, value in variables.items()}

    def var(match: re.Match[str]) -> str:
        return rendered.get(match.group(1), match.group(0))

    env = {name: _VAR_REF.sub(var, value) if "${" in value else value
           for name, value in template.items()}
    env.update(own)
    return tuple((name, expand_environ(value, environ)) for name, value in env.items())


def tenant_argv(apps: sc.ApplicationsSpec, tenant: sc.TenantSpec) -> tuple[str, ...]:
    """Section 10.3, generalised: `framework.command + args`, overridable per tenant and by
    the runtime/server/args maps; Rails (`ruby bin/rails server ...`) only if nothing is set."""
    fw = tenant.framework
    program = tenant.runtime or apps.runtime.get(fw, "")
    server = tenant.server or apps.server.get(fw, "")
    args = tenant.args or apps.args.get(fw) or None
    command = apps.framework.command
    if command:
        argv = [program or command, *([server] if server else []),
                *(apps.framework.args if args is None else args)]
    elif program or server or args is not None:
        argv = [program or LEGACY_ARGV[0], server or LEGACY_ARGV[1],
                *(LEGACY_ARGV[2:] if args is None else args)]
    else:
        argv = list(LEGACY_ARGV)
    return tuple(PORT_FORMS.sub(rt.PORT_PLACEHOLDER, arg) for arg in argv)


def tenant_name(spec: sc.TenantSpec, path: str, root_path: str) -> str:
    """Explicit name, else the path below root_path without slashes ([legacy] without a root
    path a leading /showcase/ is dropped, as the reference does)."""
    if spec.name:
        return spec.name
    if root_path != "/" and path.startswith(root_path):
        path = path[len(root_path):]
    elif root_path == "/" and path.startswith("/showcase/"):
        path = path[len("/showcase/"):]
    return path.strip("/")


def unique_name(name: str, taken: Collection[str]) -> str:
    """`name-2`, `name-3`, ...: the first not in `taken` (the reference never refuses two
    tenants with one name, but logs, metrics and cgroups need them apart)."""
    base = name or "tenant"
    for number in range(2, len(taken) + 3):
        candidate = f"{base}-{number}"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: more candidates than taken names")  # pragma: no cover


def resolve_tenants(apps: sc.ApplicationsSpec, root_path: str,
             ctx: Context) -> tuple[rt.Tenant, ...]:
    pools = apps.pools
    fw = apps.framework
    fkey: KeyPath = ("applications", "framework")
    workdir = ctx.path(fw.app_directory) if fw.app_directory else ctx.cwd
    start_delay = ctx.seconds(fw.start_delay, (*fkey, "start_delay"), 0.0)
    startup = ctx.seconds(apps.startup_timeout, ("applications", "startup_timeout"), 5.0)
    ready = ctx.seconds(apps.ready_timeout, ("applications", "ready_timeout"),
                        DEFAULT_READY_TIMEOUT)
    pool_limit = ctx.size(pools.default_memory_limit,
                          ("applications", "pools", "default_memory_limit"))
    check_pool_defaults(pools)
    wanted = {tenant_name(spec, slashed(spec.path), root_path)
              for spec in apps.tenants if spec.path.strip()}
    paths: dict[str, int] = {}
    names: dict[str, int] = {}
    tenants = []
    for index, spec in enumerate(apps.tenants):
        key: KeyPath = ("applications", "tenants", index)
        if not spec.path.strip():
            ctx.warn(key, "tenant without a path never matches; skipped")
            continue
        path = slashed(spec.path)
        if path in paths:
            raise ConfigError(f"duplicate tenant path {path!r} (also tenants[{paths[path]}]); "
                              "the second tenant could never be reached", (*key, "path"))
        paths[path] = index
        name = tenant_name(spec, path, root_path)
        if name in names:
            unique = unique_name(name, names.keys() | wanted)
            ctx.warn((*key, "name") if spec.name else (*key, "path"),
                     f"tenant name {name!r} is also tenants[{names[name]}]'s; "
                     f"this tenant is named {unique!r} (logs, metrics, cgroups)")
            name = unique
        names[name] = index
        root = ctx.path(spec.root) if spec.root else workdir
        check_stamp_names(spec, key)
        wait = ctx.seconds(spec.startup_timeout, (*key, "startup_timeout"), startup)
        strip = _inherit(spec.strip_prefix, apps.strip_prefix)
        prefix = path.rstrip("/")  # "" for a tenant at "/": nothing to strip or scope
        env = tenant_env(apps.env, spec.var, spec.env, ctx.environ)
        if prefix and _inherit(spec.script_name, apps.script_name):
            env = with_script_name(env, prefix)
        tenants.append(rt.Tenant(
            name=name, path=path, root=root, argv=tenant_argv(apps, spec), env=env,
            port_env_var=fw.port_env_var or "PORT",
            health_path=_probe_path(spec.health_check or apps.health_check or "/", prefix,
                                    _inherit(spec.prefix_health_check,
                                             apps.prefix_health_check)),
            ready_on_5xx=_inherit(spec.ready_on_5xx, apps.ready_on_5xx),
            startup_timeout=wait,
            ready_timeout=_ready_timeout(spec, key, ready, wait, ctx),
            start_delay=start_delay,
            track_websockets=_inherit(spec.track_websockets, apps.track_websockets),
            strip_prefix=strip and bool(prefix),
            forwarded_prefix=_wire_path(prefix) if strip else b"",
            cookie_prefix=(_wire_path(prefix)
                           if _inherit(spec.scope_cookies, apps.scope_cookies) else b""),
            hooks=resolve_tenant_hooks(spec.hooks, (*key, "hooks"), ctx),
            public_dir=ctx.path(spec.public_dir, root) if spec.public_dir else None,
            memory_limit=ctx.size(spec.memory_limit, (*key, "memory_limit")) or pool_limit,
            user=spec.user or pools.user, group=spec.group or pools.group,
            bot_detection=None if spec.bot_detection is None
            else resolve_bots(spec.bot_detection, (*key, "bot_detection"), ctx),
            region=spec.region, machine=spec.machine, prefer_instance=spec.prefer_instance,
            capacity=resolve_capacity(pools, spec, key, wait, ctx)))
    return tuple(tenants)


def _inherit(own: bool | None, default: bool) -> bool:
    return default if own is None else own


def _probe_path(health: str, prefix: str, prefixed: bool) -> str:
    """The readiness probe's path: under the tenant's prefix when asked (an app behind
    gunicorn's SCRIPT_NAME answers a path outside it with a 500)."""
    if not prefixed:
        return health
    return prefix + ("" if health.startswith("/") else "/") + health


def _wire_path(path: str) -> bytes:
    """A config path as it appears on the wire (percent-encoded ASCII)."""
    return quote(path, safe="/:@!$&'()*+,;=-._~").encode("ascii")


def with_script_name(env: rt.Pairs, prefix: str) -> rt.Pairs:
    """`SCRIPT_NAME=<prefix>` added to a tenant's env, unless the env already names one (the
    operator's value wins): what a WSGI server such as gunicorn strips from each path."""
    if any(name == "SCRIPT_NAME" for name, _ in env):
        return env
    return (*env, ("SCRIPT_NAME", prefix))


def _ready_timeout(spec: sc.TenantSpec, key: KeyPath, default: float, wait: float,
                   ctx: Context) -> float:
    """How long the process may boot: never shorter than a request may wait for it, or a
    request could be answered 500 by the kill of a tenant still inside its startup_timeout."""
    ready = ctx.seconds(spec.ready_timeout, (*key, "ready_timeout"), default)
    return max(ready, wait)


def warn_cable_shadows(cable: rt.CableSettings, specs: Sequence[sc.TenantSpec],
                        ctx: Context) -> None:
    """The built-in pub/sub answers WebSocket upgrades on `cable.path` before any tenant, so a
    tenant mounted over that path (a Rails app at `/` with Action Cable on `/cable`) never
    sees its own socket. The reference's default stays; the operator is told."""
    if not cable.enabled:
        return
    for index, spec in enumerate(specs):
        if spec.path.strip() and cable.path.startswith(slashed(spec.path)):
            ctx.warn(("applications", "tenants", index, "path"),
                     f"tenant {slashed(spec.path)!r} covers the cable path {cable.path}: "
                     "navigator's built-in pub/sub answers WebSocket upgrades there and the "
                     "tenant never sees them; if the app serves its own (Rails Action "
                     "Cable), set cable.enabled: false or move cable.path")


def resolve_managed(specs: Sequence[sc.ManagedProcessSpec],
             ctx: Context) -> tuple[rt.ManagedProcess, ...]:
    names: set[str] = set()
    processes = []
    for index, spec in enumerate(specs):
        key: KeyPath = ("managed_processes", index)
        if spec.name in names:
            raise ConfigError(f"duplicate managed process name {spec.name!r}", (*key, "name"))
        names.add(spec.name)
        processes.append(rt.ManagedProcess(
            spec.name, spec.command, tuple(spec.args),
            ctx.path(spec.working_dir) if spec.working_dir else None, pairs(spec.env),
            spec.auto_restart, ctx.seconds(spec.start_delay, (*key, "start_delay"), 0.0)))
    return tuple(processes)
