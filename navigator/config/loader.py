"""Config: load a navigator YAML file and resolve it into the frozen runtime Config.

Room: config (PURE apart from reading the file and checking directories at load time).
The `applications` section is resolved by `applications`, shared helpers live in `context`.
`load_config` reads + decodes (`schema`; a concise `version: 2` file is first lowered into
the same Structs by `concise_lower`, whose `where` maps keys back for errors) + resolves;
`resolve` precomputes everything a request or a process start needs (runtime.py docstrings
say what); `summarize` renders a Config for `navigator check`.

Invariants:
- the whole file is accepted or rejected: any `ConfigError` names file, line, dotted key
  path and reason (`cfg.yml:41: applications.tenants[3].path: expected a string, got a list`);
- recoverable problems (unknown keys, an unparseable duration, a skipped rule) become
  `Config.warnings`, each placed the same way; this module never logs — the caller does;
- `environ` is read only while resolving (FLY_* identity, `${NAME}` in tenant env); a request
  never reaches back into the environment;
- relative paths resolve against `cwd` (the server's working directory), as the reference's do;
- user rules come first, then the synthesised slash redirects (root path, then tenants);
- decisions worth knowing: `static` is None when public_dir is not a directory (a warning
  if it was configured); `maintenance.page` is None when unset (the snapshot falls back to
  `<public_dir>/503.html`); `${NAME}` expansion from `environ` also applies to a tenant's own
  env values, and an unset `${NAME}` without `:-default` is left as written; regex and
  replacement syntax is Go's (see `goregex`), and a bad regex is an error, not a dropped rule.

Must not touch: sockets, asyncio, subprocesses, clocks, logging configuration.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from navigator.config import runtime as rt
from navigator.config import schema as sc
from navigator.config.applications import (
    DEFAULT_READY_TIMEOUT,
    expand_environ,
    resolve_managed,
    resolve_tenants,
    tenant_argv,
    tenant_env,
    tenant_name,
    warn_cable_shadows,
)
from navigator.config.concise_lower import decode_document
from navigator.config.context import (
    Context,
    pairs,
    resolve_bots,
    resolve_hooks,
    resolve_tenant_hooks,
    slashed,
)
from navigator.config.goregex import (
    translate_replacement,
)
from navigator.config.helpers import resolve_helper
from navigator.config.schema import ConfigError, KeyPath, dotted, located
from navigator.config.shutdownplan import (
    DEFAULT_STOP_GRACE,
    budget_warnings,
    plan_shutdown,
)
from navigator.config.stamps import check_stamp_names, place_users, placement_rules
from navigator.config.units import (
    format_duration,
    format_size,
)
from navigator.config.yamlfile import parse_yaml

__all__ = ["ConfigError", "dotted", "expand_environ", "load_config", "parse_listen", "resolve",
           "summarize", "tenant_argv", "tenant_env", "tenant_name"]

DEFAULT_PORT = 3000
_IDLE_ACTIONS = frozenset({"suspend", "stop", "exit", "command"})
_OFF_WORDS = frozenset({"", "off", "none", "false", "no", "disabled"})


def parse_listen(text: str, key: KeyPath) -> rt.ListenAddress:
    """`3000`, `":3000"`, `"127.0.0.1:3000"`, `"[::1]:3000"`; "" = all interfaces, 3000."""
    text = text.strip()
    if not text:
        return rt.ListenAddress("", DEFAULT_PORT)
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or int(port) > 65535 or (":" in host and not sep):
        raise ConfigError(f"expected a port or host:port, got {text!r}", key)
    return rt.ListenAddress(host, int(port))


# --- server sections -------------------------------------------------------------------------
def _health(spec: sc.HealthCheckSpec) -> rt.HealthCheck:
    response = spec.response
    if response is None:
        return rt.HealthCheck(spec.path, None)
    if not 100 <= response.status <= 599:
        raise ConfigError(f"invalid HTTP status {response.status}",
                          ("server", "health_check", "response", "status"))
    headers = pairs(response.headers)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers = (("Content-Type", "text/plain"), *headers)
    return rt.HealthCheck(spec.path, rt.HealthResponse(response.status, response.body.encode(),
                                                       headers))


def _public_dir(spec: sc.StaticSpec, ctx: Context) -> Path:
    return ctx.path(spec.public_dir or "public")


def _static(spec: sc.StaticSpec, ctx: Context) -> rt.StaticSettings | None:
    """None when public_dir is not a directory (no static stage at all, as the contract says)."""
    key: KeyPath = ("server", "static")
    public = _public_dir(spec, ctx)
    if not _is_dir(public, (*key, "public_dir")):
        if spec.public_dir:
            ctx.warn((*key, "public_dir"), f"{public} is not a directory; static files are off")
        return None
    cache = spec.cache_control
    ckey: KeyPath = (*key, "cache_control")
    default = ctx.duration(cache.default, (*ckey, "default"), None)
    overrides = []
    for index, item in enumerate(cache.overrides):
        okey: KeyPath = (*ckey, "overrides", index)
        max_age = ctx.duration(item.max_age, (*okey, "max_age"), None)
        if not item.path or max_age is None:
            ctx.warn(okey, "override needs a path and a max_age; skipped")
            continue
        overrides.append(rt.CacheOverride(item.path, int(max_age), item.immutable))
    overrides.sort(key=lambda o: len(o.prefix), reverse=True)
    return rt.StaticSettings(
        public_dir=public,
        allowed_extensions=frozenset(ext.lstrip(".") for ext in spec.allowed_extensions),
        try_files=tuple(spec.try_files),
        normalize_trailing_slashes=spec.normalize_trailing_slashes,
        cache_default=None if default is None else int(default),
        cache_default_immutable=cache.default_immutable,
        cache_overrides=tuple(overrides))


def _idle(spec: sc.IdleSpec, ctx: Context) -> rt.IdleSettings:
    key: KeyPath = ("server", "idle")
    action = "" if spec.action.lower() in _OFF_WORDS else spec.action
    if action and action not in _IDLE_ACTIONS:
        ctx.warn((*key, "action"), f"unknown action {action!r}; machine idle is off")
        action = ""
    if action == "command" and not spec.command:
        ctx.warn((*key, "command"), "action 'command' needs a command; machine idle is off")
        action = ""
    timeout = ctx.seconds(spec.timeout, (*key, "timeout"), 600.0, extended=False)
    return rt.IdleSettings(cast(Literal["", "suspend", "stop", "exit", "command"], action),
                           timeout, tuple(spec.command), spec.fly_api_socket or "/.fly/api",
                           spec.count_websockets)


def _limits(spec: sc.LimitsSpec, ctx: Context) -> rt.Limits:
    key: KeyPath = ("server", "limits")
    base = rt.Limits()
    sizes = {name: ctx.size(getattr(spec, name), (*key, name))
             for name in ("max_request_line", "max_header_bytes", "max_body_bytes")}
    times = {name: ctx.duration(getattr(spec, name), (*key, name), getattr(base, name))
             for name in ("header_timeout", "keepalive_timeout", "body_timeout",
                          "upstream_connect_timeout", "upstream_response_timeout",
                          "websocket_idle_timeout", "shutdown_timeout",
                          "stop_hook_timeout")}
    values: dict[str, object] = {k: v for k, v in {**sizes, **times}.items() if v is not None}
    for name in ("max_header_count", "max_connections"):
        if getattr(spec, name) is not None:
            values[name] = getattr(spec, name)
    return dataclasses.replace(base, **values)  # type: ignore[arg-type]


def _cgi(specs: Sequence[sc.CgiScriptSpec], ctx: Context) -> tuple[rt.CgiScript, ...]:
    scripts = []
    for index, spec in enumerate(specs):
        key: KeyPath = ("server", "cgi_scripts", index)
        if not spec.path or not spec.script:
            ctx.warn(key, "a CGI script needs path and script; skipped")
            continue
        script = ctx.path(spec.script)
        if not _is_file(script, (*key, "script")):
            ctx.warn((*key, "script"), f"{script} does not exist; skipped")
            continue
        scripts.append(rt.CgiScript(
            path=spec.path, script=script, method=spec.method.upper(), user=spec.user,
            group=spec.group, allowed_users=frozenset(u.strip() for u in spec.allowed_users),
            env=pairs(spec.env), timeout=ctx.duration(spec.timeout, (*key, "timeout"), None),
            reload_config=spec.reload_config))
    return tuple(scripts)


def _auth(spec: sc.AuthSpec, ctx: Context) -> rt.AuthSettings:
    """A bad `auth_patterns` regex refuses the file only while auth is on: with auth off
    the patterns decide nothing, and the reference does not even read them then."""
    realm = spec.realm or "Restricted"
    enabled = spec.enabled and bool(spec.htpasswd) and realm != "off"
    patterns = []
    for index, item in enumerate(spec.auth_patterns):
        key: KeyPath = ("auth", "auth_patterns", index, "pattern")
        try:
            patterns.append(rt.AuthPattern(ctx.regex(item.pattern, key), item.action))
        except ConfigError as exc:
            if enabled:
                raise
            ctx.warn(key, f"{exc.reason}; ignored while auth is off")
    return rt.AuthSettings(
        enabled=enabled, realm=realm,
        htpasswd=ctx.path(spec.htpasswd) if spec.htpasswd else None,
        public_paths=tuple(spec.public_paths), auth_patterns=tuple(patterns))


def _maintenance(spec: sc.MaintenanceSpec, public_dir: Path, ctx: Context) -> rt.Maintenance:
    """Section 12: `/x` is inside public_dir, other values are relative to the cwd."""
    page = None
    if spec.page:
        page = public_dir / spec.page.lstrip("/") if spec.page.startswith("/") \
            else ctx.path(spec.page)
    return rt.Maintenance(spec.enabled, page)


# --- routes ----------------------------------------------------------------------------------
def _rules(spec: sc.RoutesSpec, slash_paths: Sequence[str], ctx: Context,
           placement: Sequence[rt.Rule] = ()) -> tuple[rt.Rule, ...]:
    """Section 6 order: redirects, rewrites, replays, slash redirects for `slash_paths`, then
    the placement map's replays (a bare `/tenant` is redirected here, without a hop)."""
    rules: list[rt.Rule] = []
    for kind, items in (("redirect", spec.redirects), ("rewrite", spec.rewrites)):
        for index, item in enumerate(items):
            key: KeyPath = ("routes", f"{kind}s", index)
            if not item.from_:
                ctx.warn(key, "rule without 'from'; skipped")
                continue
            pattern = ctx.regex(item.from_, (*key, "from"))
            rules.append(rt.Rule(cast(Literal["redirect", "rewrite"], kind), pattern,
                                 translate_replacement(item.to, pattern),
                                 written=(item.from_, item.to)))
    for index, replay in enumerate(spec.fly.replay):
        key = ("routes", "fly", "replay", index)
        if not (replay.app or replay.region or replay.machine or replay.prefer_instance):
            ctx.warn(key, "replay rule names no app, region or machine; skipped")
            continue
        # machine ids only: a rule's region may be a Fly preference list ("sjc,any")
        check_stamp_names(replay, key, ("machine", "prefer_instance"))
        if not replay.path:
            ctx.warn(key, "replay rule without 'path'; skipped")
            continue
        target = rt.ReplayTarget(  # app wins over region; machine over prefer_instance
            region="" if replay.app or replay.machine or replay.prefer_instance
            else replay.region,
            app=replay.app, machine=replay.machine,
            prefer_instance="" if replay.machine else replay.prefer_instance,
            status=replay.status,
            methods=frozenset(m.upper() for m in replay.methods))
        rules.append(rt.Rule("replay", ctx.regex(replay.path, (*key, "path")), replay=target,
                             written=(replay.path, "")))
    for path in slash_paths:
        bare = path.rstrip("/")
        if bare:
            rules.append(rt.Rule("redirect", None, path, exact=bare))
    rules.extend(placement)
    return tuple(rules)


def _dns_servers(servers: Sequence[str]) -> tuple[str, ...]:
    """`stamps.dns_servers`: IP addresses with an optional port (`127.0.0.1:5353`,
    `[fdaa::3]:53`), as c-ares takes them; a host name could not be resolved without DNS."""
    checked = []
    for index, text in enumerate(servers):
        entry = text.strip()
        host, port = entry, ""
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            host, _, port = entry.partition(":")
        try:
            ipaddress.ip_address(host)
            if port and not (port.isdigit() and 0 < int(port) <= 65535):
                raise ValueError(port)
        except ValueError:
            raise ConfigError(f"expected an IP address with an optional port, got {text!r}",
                              ("stamps", "dns_servers", index)) from None
        checked.append(entry)
    return tuple(checked)


def _machine_start(spec: sc.MachineStartSpec, idle_socket: str,
                   ctx: Context) -> rt.MachineStart:
    key: KeyPath = ("stamps", "machine_start")
    return rt.MachineStart(spec.enabled, ctx.seconds(spec.timeout, (*key, "timeout"), 30.0),
                           ctx.seconds(spec.backoff, (*key, "backoff"), 10.0),
                           spec.fly_api_socket or idle_socket or "/.fly/api")


def _is_dir(path: Path, key: KeyPath) -> bool:
    """A stat that turns ENAMETOOLONG and friends into a ConfigError naming the key."""
    try:
        return path.is_dir()
    except OSError as exc:
        raise ConfigError(f"unusable path: {exc.strerror}", key) from exc


def _is_file(path: Path, key: KeyPath) -> bool:
    try:
        return path.is_file()
    except OSError as exc:
        raise ConfigError(f"unusable path: {exc.strerror}", key) from exc


def _upstream(text: str, key: KeyPath, templated: bool) -> rt.UpstreamTarget:
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ConfigError(f"invalid URL {text!r}: {exc}", key) from exc
    scheme = {"http": "http", "ws": "http", "https": "https", "wss": "https"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ConfigError(f"expected an http:// or https:// URL, got {text!r}", key)
    try:
        port = parts.port
    except ValueError:
        if not templated:
            raise ConfigError(f"invalid port in {text!r}", key) from None
        port = None
    default_port = 443 if scheme == "https" else 80
    return rt.UpstreamTarget(cast(Literal["http", "https"], scheme), parts.hostname,
                             port or default_port, parts.path)


def _proxies(specs: Sequence[sc.ReverseProxySpec], ctx: Context, helper_defaults: rt.Tenant,
             names: set[str]) -> tuple[rt.ReverseProxyRoute, ...]:
    """The routes; one with a `process` block gets its hidden helper tenant (`helpers`),
    named uniquely among `names` (which it joins)."""
    routes = []
    for index, spec in enumerate(specs):
        key: KeyPath = ("routes", "reverse_proxies", index)
        if not spec.path and not spec.prefix:
            ctx.warn(key, "reverse proxy without path or prefix; skipped")
            continue
        name = spec.name or spec.prefix or spec.path
        helper = None
        if spec.process is not None:
            if spec.target:
                raise ConfigError("a route with 'process' has no 'target': the process's "
                                  "port is the target", (*key, "target"))
            helper = resolve_helper(spec.process, name, (*key, "process"), helper_defaults,
                                    names, ctx)
            names.add(helper.name)
        elif not spec.target:
            raise ConfigError("missing required key 'target' (or 'process')", key)
        pattern = ctx.regex(spec.path, (*key, "path")) if spec.path else None
        templated = helper is None and pattern is not None and "$" in spec.target
        target = (rt.UpstreamTarget("http", "127.0.0.1", 0, "") if helper is not None
                  else _upstream(spec.target, (*key, "target"), templated))
        routes.append(rt.ReverseProxyRoute(
            name=name, pattern=pattern, prefix=spec.prefix or None, target=target,
            target_template=spec.target if templated else "", strip_path=spec.strip_path,
            headers=pairs(spec.headers), response_headers=pairs(spec.response_headers),
            websocket=spec.websocket, helper=helper))
    return tuple(routes)


# --- the whole file --------------------------------------------------------------------------
def _logging(spec: sc.LoggingSpec, server_access_log: bool | str,
             ctx: Context) -> rt.LoggingSettings:
    """`access_log` is on/off or (as in older reference versions) a file that gets the
    access lines instead of stdout; `logging.access_log` wins over `server.access_log`."""
    fmt = spec.format or "text"
    if fmt not in ("text", "json"):
        ctx.warn(("logging", "format"), f"unknown format {fmt!r}; using 'text'")
        fmt = "text"
    vector = rt.VectorSettings(spec.vector.enabled, spec.vector.socket, spec.vector.config)
    access_log = server_access_log if spec.access_log is None else spec.access_log
    access_file = None
    if isinstance(access_log, str):
        access_file = ctx.path(access_log) if access_log.strip() else None
        access_log = True
    return rt.LoggingSettings(cast(Literal["text", "json"], fmt), spec.file, access_log, vector,
                              access_file)


def _trust_proxy(setting: bool | None, environ: Mapping[str, str]) -> bool:
    """`server.trust_proxy` as written; unset, it is on where Fly's proxy is the only way in
    (FLY_APP_NAME set): there every peer is Fly's edge, which sets `Fly-Client-IP` and
    `X-Forwarded-Proto: https`, and tenants that force SSL would otherwise loop on `http`."""
    if setting is not None:
        return setting
    return bool(environ.get("FLY_APP_NAME"))


def _status_page(spec: sc.StatusPageSpec, auth: rt.AuthSettings) -> rt.StatusPage:
    """The status page shows pids, ports and paths of every tenant: it needs auth, unless
    the operator says in the file that the listener is private (`without_auth`)."""
    path = spec.path.strip()
    if not path:
        return rt.StatusPage()
    key: KeyPath = ("server", "status_page", "path")
    if not path.startswith("/"):
        raise ConfigError(f"expected a path starting with '/', got {path!r}", key)
    if not auth.enabled and not spec.without_auth:
        raise ConfigError("the status page needs auth (auth.enabled with an htpasswd file); "
                          "set server.status_page.without_auth: true to serve it without",
                          key)
    return rt.StatusPage(path, spec.without_auth)


def _helper_defaults(apps: sc.ApplicationsSpec, ctx: Context) -> rt.Tenant:
    """What a helper inherits from `applications` (timeouts, the port variable); a bad value
    was already reported by `resolve_tenants`, so this reads with its own warning list."""
    ctx = Context(ctx.cwd, ctx.environ)
    startup = ctx.seconds(apps.startup_timeout, ("applications", "startup_timeout"), 5.0)
    ready = ctx.seconds(apps.ready_timeout, ("applications", "ready_timeout"),
                        DEFAULT_READY_TIMEOUT)
    return rt.Tenant("", "", ctx.cwd, (), (), apps.framework.port_env_var or "PORT",
                     startup_timeout=startup, ready_timeout=ready)


def _resolve(raw: sc.NavigatorFile, source: Path, ctx: Context) -> rt.Config:
    server = raw.server
    apps = raw.applications
    root_path = slashed(server.root_path) if server.root_path.strip("/ ") else "/"
    tenants = place_users(resolve_tenants(apps, root_path, ctx), raw.stamps.users, ctx.warn)
    proxies = _proxies(raw.routes.reverse_proxies, ctx, _helper_defaults(apps, ctx),
                       {tenant.name for tenant in tenants})
    slash_paths = ([root_path] if root_path != "/" else []) + [t.path for t in tenants]
    pools = apps.pools
    metrics = server.metrics
    environ = ctx.environ
    cable = rt.CableSettings(raw.cable.enabled, raw.cable.path or "/cable",
                             raw.cable.broadcast_path or "/_broadcast")
    warn_cable_shadows(cable, apps.tenants, ctx)
    hooks = raw.hooks.server
    hkey: KeyPath = ("hooks", "server")
    config = rt.Config(
        source=ctx.path(str(source)),
        listen=parse_listen(server.listen, ("server", "listen")),
        root_path=root_path,
        trust_proxy=_trust_proxy(server.trust_proxy, environ),
        hostname=server.hostname,
        pid_file=ctx.path(server.pid_file or "/tmp/navigator.pid"),
        health_check=_health(server.health_check),
        static=_static(server.static, ctx),
        idle=_idle(server.idle, ctx),
        limits=_limits(server.limits, ctx),
        bot_detection=resolve_bots(server.bot_detection, ("server", "bot_detection"), ctx),
        cgi_scripts=_cgi(server.cgi_scripts, ctx),
        cable=cable,
        auth=(auth := _auth(raw.auth, ctx)),
        maintenance=_maintenance(raw.maintenance, _public_dir(server.static, ctx), ctx),
        rules=_rules(raw.routes, slash_paths, ctx, placement_rules(tenants)),
        reverse_proxies=proxies,
        tenants=tenants + tuple(p.helper for p in proxies if p.helper is not None),
        pools=rt.Pools(max_size=pools.max_size,
                       idle_timeout=ctx.seconds(pools.timeout,
                                                ("applications", "pools", "timeout"), 600.0),
                       start_port=pools.start_port, user=pools.user, group=pools.group),
        tenant_hooks=resolve_tenant_hooks(raw.hooks.tenant, ("hooks", "tenant"), ctx),
        server_hooks=rt.ServerHooks(*(resolve_hooks(getattr(hooks, which), (*hkey, which), ctx)
                                      for which in ("start", "ready", "idle", "resume", "stop"))),
        managed_processes=resolve_managed(raw.managed_processes, ctx),
        logging=_logging(raw.logging, server.access_log, ctx),
        metrics=rt.MetricsSettings(
            metrics.enabled, metrics.path or "/_navigator/metrics",
            parse_listen(metrics.listen, ("server", "metrics", "listen"))
            if metrics.listen else None),
        status_page=_status_page(server.status_page, auth),
        stamp=rt.StampSettings(environ.get("FLY_APP_NAME", ""), environ.get("FLY_REGION", ""),
                               environ.get("FLY_MACHINE_ID", ""),
                               _dns_servers(raw.stamps.dns_servers),
                               _machine_start(raw.stamps.machine_start,
                                              server.idle.fly_api_socket, ctx)),
    )
    for reason in budget_warnings(plan_shutdown(config, DEFAULT_STOP_GRACE)):
        ctx.warn(("server", "limits", "shutdown_timeout"), reason)
    return config


def resolve(raw: sc.NavigatorFile, source_path: str | Path, environ: Mapping[str, str], *,
            cwd: Path | None = None) -> rt.Config:
    """The runtime Config for a decoded file; warnings carry key paths but no line numbers."""
    ctx = Context(cwd or Path.cwd(), environ)
    config = _resolve(raw, Path(source_path), ctx)
    warnings = tuple(located("", None, key, reason) for key, reason in ctx.issues)
    return dataclasses.replace(config, warnings=warnings) if warnings else config


def load_config(path: str | Path, environ: Mapping[str, str] | None = None, *,
                cwd: Path | None = None) -> rt.Config:
    """Read, decode and resolve one file. `environ` defaults to `os.environ` (read here only)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read config: {reason}", file=name) from None
    ctx = Context(cwd or Path.cwd(), os.environ if environ is None else environ)
    try:
        document = parse_yaml(text)
    except ConfigError as exc:
        raise exc.at(name, exc.line) from None
    try:
        decoded = decode_document(document.data)
    except ConfigError as exc:
        raise exc.at(name, document.lines([exc.key]).get(exc.key) if exc.key else None) \
            from None
    try:
        config = _resolve(decoded.raw, Path(path), ctx)
    except ConfigError as exc:
        key = decoded.where(exc.key)
        raise ConfigError(exc.reason, key, file=name,
                          line=document.lines([key]).get(key) if key else None) from None
    notes = [(key, "unknown key (ignored)") for key in decoded.unknown] + \
        [(decoded.where(key), reason) for key, reason in ctx.issues]
    lines = document.lines(key for key, _ in notes)
    warnings = [located(name, lines.get(key), key, reason) for key, reason in notes]
    if document.ignored_from is not None:
        warnings.insert(0, located(name, document.ignored_from, (),
                                   "a second YAML document starts here; it is ignored "
                                   "(only the first document of a file is read)"))
    return dataclasses.replace(config, warnings=tuple(warnings)) if warnings else config


# --- navigator check -------------------------------------------------------------------------
def summarize(config: rt.Config) -> str:
    """A human summary of what a file resolved to (for `navigator check`)."""
    listen = config.listen
    out = [f"config {config.source}",
           f"listen {listen.host or '*'}:{listen.port}   root path {config.root_path}"]
    if config.static is not None:
        out.append(f"static {config.static.public_dir}"
                   + (f" try_files {list(config.static.try_files)}"
                      if config.static.try_files else ""))
    if config.auth.enabled:
        out.append(f"auth realm {config.auth.realm!r} htpasswd {config.auth.htpasswd}")
    if config.maintenance.enabled:
        out.append("maintenance mode ON")
    if config.idle.action:
        out.append(f"machine idle {config.idle.action} after "
                   f"{format_duration(config.idle.timeout)}")
    tenants = [t for t in config.tenants if not t.helper_route]  # helpers: with their route
    out.append(f"tenants {len(tenants)} (idle stop after "
               f"{format_duration(config.pools.idle_timeout)}, ports from "
               f"{config.pools.start_port})")
    for tenant in tenants[:50]:
        extra = f" memory {format_size(tenant.memory_limit)}" if tenant.memory_limit else ""
        out.append(f"  {tenant.path:<24} {tenant.name or '-':<20} {' '.join(tenant.argv)}"
                   f"{extra}")
    if len(tenants) > 50:
        out.append(f"  ... and {len(tenants) - 50} more")
    user_rules = [r for r in config.rules if not _synthesised(r, config)]
    out.append(f"rules {len(user_rules)} (+{len(config.rules) - len(user_rules)} slash "
               "redirects)")
    for rule in user_rules:
        goal = (rule.replay.app or rule.replay.machine
                or (f"{rule.replay.prefer_instance} (preferred)"
                    if rule.replay.prefer_instance else rule.replay.region)
                or "(lives everywhere)" if rule.replay else rule.written[1] or rule.replacement)
        source = rule.pattern.pattern if rule.pattern is not None else rule.exact
        out.append(f"  {rule.kind:<8} {rule.written[0] or source} -> {goal}")
    start = config.stamp.machine_start
    if start.enabled:
        out.append(f"machine start before replay: wait {format_duration(start.timeout)}, "
                   f"back-off {format_duration(start.backoff)}, API {start.fly_api_socket}")
    out.append(f"reverse proxies {len(config.reverse_proxies)}")
    for proxy in config.reverse_proxies:
        match = proxy.pattern.pattern if proxy.pattern else proxy.prefix
        target = proxy.target
        goal = (f"on-demand process {proxy.helper.name}: {' '.join(proxy.helper.argv)}"
                if proxy.helper is not None
                else f"{target.scheme}://{target.host}:{target.port}{target.path}")
        out.append(f"  {proxy.name}: {match} -> {goal}")
    if config.managed_processes:
        out.append("managed processes " + ", ".join(p.name for p in config.managed_processes))
    out.append(f"warnings {len(config.warnings)}")
    out.extend(f"  {warning}" for warning in config.warnings)
    return "\n".join(out)


def _synthesised(rule: rt.Rule, config: rt.Config) -> bool:
    return rule.pattern is None  # only navigator's own slash redirects have no regex

