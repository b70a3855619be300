"""The file format: msgspec Structs for every YAML key (reading YAML into them is
`yamlfile`), key paths and `ConfigError`.

Room: config (PURE apart from nothing: text in, Structs out). The Structs mirror reference
section 3 key for key, plus our
extensions (`server.limits`, `server.pid_file`, `server.metrics`, `server.access_log`,
`server.idle.command|fly_api_socket|count_websockets`, `stamps`, replay
`machine`/`prefer_instance`/`methods`, tenant `region`/`machine`/`prefer_instance`).
`parse_yaml` reads the text with every plain scalar as a string, `decode` checks shapes and
converts scalars by the target field's type, then builds `NavigatorFile`;
`config.loader.resolve` turns that into the frozen `runtime.Config`.

Invariants:
- every scalar that is not an int or bool in the reference is a `str` holding the YAML
  source text (`timeout: 10` is `"10"`, `action: off` is `"off"`); durations and sizes stay
  strings here and are parsed by `config.loader.resolve`;
- every field has a default except the few the reference cannot run without (a health
  response's `status`, a hook's `command`, a managed process's `name` and `command`), so a
  missing key means "use the default", never an error;
- `str` fields default to "" meaning "not set"; the defaults the reference documents for
  them are applied in `config.loader.resolve`, where inheritance (tenant → applications → built-in)
  also happens;
- `off`, `1:30` and `10` stay strings in string fields; bool fields take true/false plus
  y/yes/on and n/no/off in any case; int fields take YAML 1.2 integers (`~`/empty = default);
  a `bool | str` field (`access_log`: on/off or a file) reads those words as the boolean
  and any other scalar as text;
- only the first YAML document of a file is read (as the reference does);
- a wrong shape raises `ConfigError` with the key path; `lines_of` finds the line numbers
  (composing the text again only when there is something to report);
- no semantics here (no defaults applied, no paths resolved), no I/O.

Must not touch: runtime types, environment, file system.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec


class Spec(msgspec.Struct, kw_only=True):
    """Base for every section: keyword-only; unknown keys are allowed (and warned about)."""


# --- server ----------------------------------------------------------------------------------
class BotDetectionSpec(Spec):
    enabled: bool = False
    action: str = "reject"  # reject | ignore | static-only


class HealthResponseSpec(Spec):
    status: int
    body: str = ""
    headers: dict[str, str] = {}


class HealthCheckSpec(Spec):
    path: str = ""
    response: HealthResponseSpec | None = None


class CacheOverrideSpec(Spec):
    path: str = ""
    max_age: str = ""  # duration
    immutable: bool = False


class CacheControlSpec(Spec):
    default: str = ""  # duration; "" = no Cache-Control header
    default_immutable: bool = False
    overrides: list[CacheOverrideSpec] = []


class StaticSpec(Spec):
    public_dir: str = ""  # "" = "public"
    allowed_extensions: list[str] = []
    try_files: list[str] = []
    normalize_trailing_slashes: bool = False
    cache_control: CacheControlSpec = msgspec.field(default_factory=CacheControlSpec)


class IdleSpec(Spec):
    action: str = ""  # suspend | stop | exit | command; anything else = off
    timeout: str = ""  # Go duration only; "" = 10m
    command: list[str] = []  # extension: argv for action "command"
    fly_api_socket: str = ""  # extension; "" = /.fly/api
    count_websockets: bool = True  # extension: open WebSockets keep the machine up


class CgiScriptSpec(Spec):
    path: str = ""
    script: str = ""
    method: str = ""
    user: str = ""
    group: str = ""
    allowed_users: list[str] = []
    env: dict[str, str] = {}
    timeout: str = ""  # duration; "" = none
    reload_config: str = ""


class LimitsSpec(Spec):
    """Extension `server.limits`: sizes like "64K", durations like "30s"; "" = default."""

    max_request_line: str = ""
    max_header_bytes: str = ""
    max_header_count: int | None = None
    max_body_bytes: str = ""
    max_connections: int | None = None
    header_timeout: str = ""
    keepalive_timeout: str = ""
    body_timeout: str = ""
    upstream_connect_timeout: str = ""
    upstream_response_timeout: str = ""
    websocket_idle_timeout: str = ""
    shutdown_timeout: str = ""
    stop_hook_timeout: str = ""


class MetricsSpec(Spec):
    """Extension `server.metrics`."""

    enabled: bool = True
    path: str = ""  # "" = /_navigator/metrics
    listen: str = ""  # optional separate listener, same forms as server.listen


class StatusPageSpec(Spec):
    """Extension `server.status_page`."""

    path: str = ""  # "" = off
    without_auth: bool = False  # allow it while auth is off


class ServerSpec(Spec):
    listen: str = ""  # "3000", ":3000", "127.0.0.1:3000"; "" = 3000
    hostname: str = ""
    root_path: str = ""
    trust_proxy: bool | None = None  # unset: on behind Fly's proxy (FLY_APP_NAME), else off
    disable_compression: bool = False
    bot_detection: BotDetectionSpec = msgspec.field(default_factory=BotDetectionSpec)
    health_check: HealthCheckSpec = msgspec.field(default_factory=HealthCheckSpec)
    static: StaticSpec = msgspec.field(default_factory=StaticSpec)
    idle: IdleSpec = msgspec.field(default_factory=IdleSpec)
    cgi_scripts: list[CgiScriptSpec] = []
    limits: LimitsSpec = msgspec.field(default_factory=LimitsSpec)
    pid_file: str = ""  # extension; "" = /tmp/navigator.pid
    metrics: MetricsSpec = msgspec.field(default_factory=MetricsSpec)
    access_log: bool | str = True  # on/off, or a file to write the access log to
    status_page: StatusPageSpec = msgspec.field(default_factory=StatusPageSpec)  # extension


# --- top-level sections ----------------------------------------------------------------------
class CableSpec(Spec):
    enabled: bool = True
    path: str = ""  # "" = /cable
    broadcast_path: str = ""  # "" = /_broadcast


class AuthPatternSpec(Spec):
    pattern: str = ""
    action: str = ""


class AuthSpec(Spec):
    enabled: bool = False
    realm: str = ""  # "" = Restricted; "off" disables auth
    htpasswd: str = ""
    public_paths: list[str] = []
    auth_patterns: list[AuthPatternSpec] = []


class MaintenanceSpec(Spec):
    enabled: bool = False
    page: str = ""  # "" = <public_dir>/503.html


class RewriteSpec(Spec):
    """One `redirects[]` or `rewrites[]` entry."""

    from_: str = msgspec.field(default="", name="from")
    to: str = ""


class HelperProcessSpec(Spec):
    """Extension: the process behind a reverse-proxy route, started on its first request."""

    command: str
    args: list[str] = []
    env: dict[str, str] = {}
    working_dir: str = ""
    port_env_var: str = ""  # "" = PORT
    health_check: str = ""  # "" = /
    idle_timeout: str = ""  # duration; "" = applications.pools.timeout
    startup_timeout: str = ""  # duration; "" = applications.startup_timeout
    ready_timeout: str = ""  # duration; "" = applications.ready_timeout
    memory_limit: str = ""  # size


class ReverseProxySpec(Spec):
    name: str = ""
    path: str = ""  # regex; wins over prefix
    prefix: str = ""
    target: str = ""
    strip_path: bool = False
    headers: dict[str, str] = {}
    response_headers: dict[str, str] = {}
    websocket: bool = False
    process: HelperProcessSpec | None = None  # extension: on-demand helper as the target


class ReplaySpec(Spec):
    path: str = ""
    app: str = ""
    region: str = ""
    machine: str = ""  # extension
    prefer_instance: str = ""  # extension: preferred machine, Fly falls back to any
    status: int = 307
    methods: list[str] = []  # extension; empty = any method


class FlySpec(Spec):
    replay: list[ReplaySpec] = []
    sticky_sessions: Any = None  # removed upstream feature: accepted, ignored


class RoutesSpec(Spec):
    redirects: list[RewriteSpec] = []
    rewrites: list[RewriteSpec] = []
    reverse_proxies: list[ReverseProxySpec] = []
    fly: FlySpec = msgspec.field(default_factory=FlySpec)


# --- applications ----------------------------------------------------------------------------
class PoolsSpec(Spec):
    max_size: int | None = None
    timeout: str = ""  # duration; "" = 10m
    start_port: int = 4000
    default_memory_limit: str = ""  # size
    user: str = ""
    group: str = ""
    # Per-tenant process pools (issue 17); every tenant may override them.
    max_processes: int = 1
    min_instances: int = 0
    max_concurrency: int = 0  # requests in flight per process; 0 = unlimited
    max_queue: int = 100
    queue_timeout: str = ""  # duration; "" = the tenant's startup_timeout
    max_requests: int = 0  # recycle a process after this many requests; 0 = never
    memory_soft_limit: str = ""  # size; recycle a process whose tree's RSS exceeds it
    drain_timeout: str = ""  # duration; "" = 5m


class FrameworkSpec(Spec):
    command: str = ""
    args: list[str] = []
    app_directory: str = ""
    port_env_var: str = ""  # "" = PORT
    start_delay: str = ""  # duration


class HookSpec(Spec):
    command: str
    args: list[str] = []
    timeout: str = ""  # duration; "" = none
    reload_config: str = ""


class TenantHooksSpec(Spec):
    before_start: list[HookSpec] = []  # extension: before the process is spawned, awaited
    start: list[HookSpec] = []
    stop: list[HookSpec] = []


class TenantSpec(Spec):
    path: str = ""
    name: str = ""
    root: str = ""
    env: dict[str, str] = {}
    var: dict[str, Any] = {}
    framework: str = ""
    runtime: str = ""
    server: str = ""
    args: list[str] = []
    health_check: str = ""
    track_websockets: bool | None = None  # None = inherit applications.track_websockets
    strip_prefix: bool | None = None  # extension; None = inherit applications.strip_prefix
    script_name: bool | None = None  # extension; None = inherit applications.script_name
    scope_cookies: bool | None = None  # extension; None = inherit applications.scope_cookies
    prefix_health_check: bool | None = None  # extension; None = inherit
    ready_on_5xx: bool | None = None  # extension; None = inherit applications.ready_on_5xx
    hooks: TenantHooksSpec = msgspec.field(default_factory=TenantHooksSpec)
    public_dir: str = ""
    startup_timeout: str = ""
    ready_timeout: str = ""  # extension
    memory_limit: str = ""
    user: str = ""
    group: str = ""
    # Process pool overrides (None / "" = `applications.pools`'s value):
    max_processes: int | None = None
    min_instances: int | None = None
    max_concurrency: int | None = None
    max_queue: int | None = None
    queue_timeout: str = ""
    idle_timeout: str = ""  # duration, or plain seconds (`300`) as the reference's docs
    max_requests: int | None = None
    memory_soft_limit: str = ""
    drain_timeout: str = ""
    bot_detection: BotDetectionSpec | None = None
    region: str = ""  # extension: placement
    machine: str = ""  # extension: placement (forced)
    prefer_instance: str = ""  # extension: placement (preferred, Fly falls back to any)


class ApplicationsSpec(Spec):
    pools: PoolsSpec = msgspec.field(default_factory=PoolsSpec)
    env: dict[str, str] = {}
    runtime: dict[str, str] = {}
    server: dict[str, str] = {}
    args: dict[str, list[str]] = {}
    health_check: str = ""
    startup_timeout: str = ""
    ready_timeout: str = ""  # extension; duration, "" = 5m
    track_websockets: bool = True
    strip_prefix: bool = False  # extension
    script_name: bool = False  # extension
    scope_cookies: bool = False  # extension
    prefix_health_check: bool = False  # extension
    ready_on_5xx: bool = True  # extension; True = the reference (any HTTP answer)
    framework: FrameworkSpec = msgspec.field(default_factory=FrameworkSpec)
    tenants: list[TenantSpec] = []


class ManagedProcessSpec(Spec):
    name: str
    command: str
    args: list[str] = []
    working_dir: str = ""
    env: dict[str, str] = {}
    auto_restart: bool = False
    start_delay: str = ""


class ServerHooksSpec(Spec):
    start: list[HookSpec] = []
    ready: list[HookSpec] = []
    idle: list[HookSpec] = []
    resume: list[HookSpec] = []
    stop: list[HookSpec] = []


class HooksSpec(Spec):
    server: ServerHooksSpec = msgspec.field(default_factory=ServerHooksSpec)
    tenant: TenantHooksSpec = msgspec.field(default_factory=TenantHooksSpec)


class VectorSpec(Spec):
    enabled: bool = False
    socket: str = ""
    config: str = ""


class LoggingSpec(Spec):
    format: str = ""  # text | json; "" = text
    file: str = ""
    vector: VectorSpec = msgspec.field(default_factory=VectorSpec)
    access_log: bool | str | None = None  # overrides server.access_log when set


class PlacementSpec(Spec):
    """Extension: one user's tenants (path globs) and the machine or region they live on."""

    tenants: list[str] = []  # path globs; `*` matches within one path segment
    region: str = ""
    machine: str = ""
    prefer_instance: str = ""


class MachineStartSpec(Spec):
    """Extension: check DNS before a replay and start a machine that is not running."""

    enabled: bool = False
    timeout: str = ""  # duration; "" = 30s
    backoff: str = ""  # duration; "" = 10s
    fly_api_socket: str = ""  # "" = server.idle.fly_api_socket


class StampsSpec(Spec):
    """Extension `stamps`: deployment-stamp networking."""

    dns_servers: list[str] = []  # "host:port"; empty = system resolver
    users: dict[str, PlacementSpec] = {}
    machine_start: MachineStartSpec = msgspec.field(default_factory=MachineStartSpec)


class NavigatorFile(Spec):
    """The whole file."""

    server: ServerSpec = msgspec.field(default_factory=ServerSpec)
    cable: CableSpec = msgspec.field(default_factory=CableSpec)
    auth: AuthSpec = msgspec.field(default_factory=AuthSpec)
    maintenance: MaintenanceSpec = msgspec.field(default_factory=MaintenanceSpec)
    routes: RoutesSpec = msgspec.field(default_factory=RoutesSpec)
    applications: ApplicationsSpec = msgspec.field(default_factory=ApplicationsSpec)
    managed_processes: list[ManagedProcessSpec] = []
    hooks: HooksSpec = msgspec.field(default_factory=HooksSpec)
    logging: LoggingSpec = msgspec.field(default_factory=LoggingSpec)
    stamps: StampsSpec = msgspec.field(default_factory=StampsSpec)


def json_schema(*others: type[msgspec.Struct]) -> dict[str, Any]:
    """JSON Schema of the file format (for editors and generated docs); with `others`, the
    root is NavigatorFile's and every other's definition is in `$defs` too."""
    (root, *_), defs = msgspec.json.schema_components([NavigatorFile, *others])
    return {**root, "$defs": defs}


# --- errors ----------------------------------------------------------------------------------
KeyPath = tuple[str | int, ...]


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][\w-]*\Z")


def dotted(key: KeyPath) -> str:
    """`("applications", "tenants", 3, "path")` → `applications.tenants[3].path`; a map key
    that is not a plain word is quoted: `headers[" "]`, so the path stays unambiguous."""
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_KEY.match(part):
            text += f"[{json.dumps(part)}]"
        else:
            text += f".{part}" if text else part
    return text


def located(file: str, line: int | None, key: KeyPath, reason: str) -> str:
    """`file:line: key.path: reason`, leaving out the parts that are unknown."""
    where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
    return f"{where}{dotted(key)}: {reason}" if key else f"{where}{reason}"


class ConfigError(ValueError):
    """A config that cannot be used; `str()` is `file:line: key.path: reason`."""

    def __init__(self, reason: str, key: KeyPath = (), *, file: str = "",
                 line: int | None = None) -> None:
        self.reason = reason
        self.key = key
        self.file = file
        self.line = line
        super().__init__(located(file, line, key, reason))

    def at(self, file: str, line: int | None) -> ConfigError:
        """The same error, placed in `file` at `line`."""
        return ConfigError(self.reason, self.key, file=file, line=line)
