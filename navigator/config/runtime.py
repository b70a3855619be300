"""Runtime configuration: the frozen, fully resolved form every room reads.

Room: PURE data. `config.loader.resolve()` builds these from the decoded YAML; nothing else
constructs them except tests. Everything a request needs is precomputed here (regexes
compiled, durations in seconds, sizes in bytes, environments expanded, names derived),
so the hot path never parses, formats or compiles.

Invariants:
- every object is immutable (frozen dataclasses, tuples, frozensets, MappingProxy-free
  tuples of pairs) so a snapshot can be shared by all connections without locks;
- paths that are prefixes (`root_path`, tenant `path`) always end with "/";
- durations are float seconds, `None` meaning "no limit / not set";
- header names in `headers` tuples keep the case the user wrote; values are str.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Pairs = tuple[tuple[str, str], ...]

PORT_PLACEHOLDER = "{port}"
"""`{{port}}` and `${port}` in tenant args are normalised to this at resolve time."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str  # "" = all interfaces
    port: int  # 0 = ephemeral (tests)


@dataclass(frozen=True, slots=True)
class HealthResponse:
    status: int
    body: bytes
    headers: Pairs  # Content-Type defaulted to text/plain at resolve time


@dataclass(frozen=True, slots=True)
class HealthCheck:
    path: str  # "" = disabled; exact match
    response: HealthResponse | None  # None = pass to the tenant proxy


@dataclass(frozen=True, slots=True)
class CacheOverride:
    prefix: str
    max_age: int  # whole seconds
    immutable: bool


@dataclass(frozen=True, slots=True)
class StaticSettings:
    public_dir: Path  # absolute
    allowed_extensions: frozenset[str]  # without dots; empty = any
    try_files: tuple[str, ...]
    normalize_trailing_slashes: bool
    cache_default: int | None  # None = no Cache-Control header
    cache_default_immutable: bool
    cache_overrides: tuple[CacheOverride, ...]  # sorted longest prefix first


@dataclass(frozen=True, slots=True)
class IdleSettings:
    action: Literal["", "suspend", "stop", "exit", "command"]  # "" = off
    timeout: float
    command: tuple[str, ...] = ()  # for action "command"
    fly_api_socket: str = "/.fly/api"
    count_websockets: bool = True


@dataclass(frozen=True, slots=True)
class Limits:
    """Our `server.limits` extension; defaults follow nginx/HAProxy practice."""

    max_request_line: int = 8 * 1024  # -> 414
    max_header_bytes: int = 64 * 1024  # -> 431
    max_header_count: int = 100  # -> 431
    max_body_bytes: int | None = None  # -> 413 when set
    max_connections: int | None = None
    header_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    body_timeout: float = 60.0
    upstream_connect_timeout: float = 5.0
    upstream_response_timeout: float = 300.0
    websocket_idle_timeout: float | None = None
    shutdown_timeout: float = 30.0  # the whole shutdown, SIGTERM to exit (shutdownplan)
    stop_hook_timeout: float = 10.0  # a server/tenant stop hook without its own timeout


@dataclass(frozen=True, slots=True)
class Hook:
    command: str
    args: tuple[str, ...] = ()
    timeout: float | None = None
    reload_config: str = ""


@dataclass(frozen=True, slots=True)
class ServerHooks:
    start: tuple[Hook, ...] = ()
    ready: tuple[Hook, ...] = ()
    idle: tuple[Hook, ...] = ()
    resume: tuple[Hook, ...] = ()
    stop: tuple[Hook, ...] = ()


@dataclass(frozen=True, slots=True)
class TenantHooks:
    before_start: tuple[Hook, ...] = ()  # awaited before the process is spawned
    start: tuple[Hook, ...] = ()
    stop: tuple[Hook, ...] = ()


@dataclass(frozen=True, slots=True)
class BotDetection:
    enabled: bool = False
    action: Literal["reject", "ignore", "static-only"] = "reject"


@dataclass(frozen=True, slots=True)
class Capacity:
    """A tenant's process pool: how many processes, how many requests each, the queue."""

    max_processes: int = 1
    min_instances: int = 0  # started at boot and reload, never idle-stopped
    max_concurrency: int = 0  # requests in flight per process; 0 = unlimited
    max_queue: int = 100  # requests waiting for a process; beyond: 503 at once
    queue_timeout: float = 5.0  # longest wait in the queue, then 503
    idle_timeout: float | None = None  # quiet time before a process above min_instances
    # stops; None = `pools.idle_timeout` (read when the timer is armed: reload changes it)
    max_requests: int = 0  # recycle after this many requests (plus jitter); 0 = never
    memory_soft_limit: int | None = None  # bytes of RSS (process tree); over → recycle
    drain_timeout: float = 300.0  # a replaced process's tunnels may stay this long


@dataclass(frozen=True, slots=True)
class Tenant:
    """One mounted copy of the app. Identity across reloads is `path`."""

    name: str  # explicit `name`, else path relative to root_path without slashes
    path: str  # URL prefix, ends with "/"
    root: Path  # working directory, absolute
    argv: tuple[str, ...]  # program + args; PORT_PLACEHOLDER substituted at spawn
    env: Pairs  # tenant env only (template-expanded); server env + PORT added at spawn
    port_env_var: str = "PORT"
    health_path: str = "/"  # the probe's path (under the prefix with prefix_health_check)
    ready_on_5xx: bool = True  # a 5xx probe answer counts as ready (the reference)
    startup_timeout: float = 5.0  # how long a request waits, then the maintenance page
    ready_timeout: float = 300.0  # how long the process may boot before it is stopped
    start_delay: float = 0.0
    track_websockets: bool = True
    # Prefix handling, precomputed here so the request path only reads them:
    strip_prefix: bool = False  # forward the path without `path` (minus its last "/")
    forwarded_prefix: bytes = b""  # X-Forwarded-Prefix value when stripping, else b""
    cookie_prefix: bytes = b""  # Set-Cookie Path scoped to this, b"" = not rewritten
    hooks: TenantHooks = field(default_factory=TenantHooks)
    public_dir: Path | None = None
    memory_limit: int | None = None  # bytes
    user: str = ""
    group: str = ""
    bot_detection: BotDetection | None = None  # None = inherit global
    region: str = ""  # placement: the Fly region this tenant lives in ("" = everywhere)
    machine: str = ""  # placement: the Fly machine id it lives on (wins over region)
    prefer_instance: str = ""  # placement: its preferred machine (Fly may use any other)
    capacity: Capacity = field(default_factory=Capacity)  # not in spawn_key: no restart
    helper_route: str = ""  # an on-demand helper of this reverse-proxy route: never routed
    # by path (`path` is only its identity), reached through the route

    def spawn_key(self) -> tuple[object, ...]:
        """What makes two definitions the same running process (used by reload diff)."""
        return (self.argv, self.env, self.root, self.port_env_var, self.memory_limit,
                self.user, self.group)


@dataclass(frozen=True, slots=True)
class Pools:
    max_size: int | None = None
    idle_timeout: float = 600.0
    start_port: int = 4000
    port_count: int = 101
    user: str = ""
    group: str = ""


@dataclass(frozen=True, slots=True)
class ManagedProcess:
    name: str
    command: str
    args: tuple[str, ...] = ()
    working_dir: Path | None = None
    env: Pairs = ()
    auto_restart: bool = False
    start_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class AuthPattern:
    pattern: re.Pattern[str]
    action: str


@dataclass(frozen=True, slots=True)
class AuthSettings:
    enabled: bool  # already folded: enabled and htpasswd set and realm != "off"
    realm: str = "Restricted"
    htpasswd: Path | None = None
    public_paths: tuple[str, ...] = ()
    auth_patterns: tuple[AuthPattern, ...] = ()


@dataclass(frozen=True, slots=True)
class Maintenance:
    enabled: bool = False
    page: Path | None = None  # resolved file path; None/unreadable -> built-in page


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    region: str = ""
    app: str = ""
    machine: str = ""
    prefer_instance: str = ""  # like machine, but Fly falls back to any machine of the app
    status: int = 307
    methods: frozenset[str] = frozenset()  # empty = any method
    placement: str = ""  # the tenant path, when made from the placement map (stamps)


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the ordered rule list (section 6 of the reference)."""

    kind: Literal["redirect", "rewrite", "replay"]
    pattern: re.Pattern[str] | None  # None: a redirect of exactly the path `exact`
    replacement: str = ""  # Go `$1`/`${name}` syntax translated to a Python template; for
    # an `exact` redirect, the location itself
    replay: ReplayTarget | None = None
    written: tuple[str, str] = ("", "")  # regex and replacement as the file wrote them
    # (Go syntax: `\w`, `$1`), for `navigator check`; empty for rules navigator made up
    exact: str = ""  # the path of a redirect navigator made (a tenant's slash redirect):
    # no regex is compiled for it, one per tenant made a 1,000-tenant load 100 ms slower


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str  # target's own path, "" or starting with "/"


@dataclass(frozen=True, slots=True)
class ReverseProxyRoute:
    name: str
    pattern: re.Pattern[str] | None  # `path` regex; wins over prefix
    prefix: str | None
    target: UpstreamTarget
    target_template: str  # raw target when it contains "$" and pattern is set, else ""
    strip_path: bool = False
    headers: Pairs = ()
    response_headers: Pairs = ()
    websocket: bool = False
    helper: Tenant | None = None  # on-demand process behind the route (the target's port)


@dataclass(frozen=True, slots=True)
class CgiScript:
    path: str
    script: Path
    method: str = ""  # upper-case; "" = any
    user: str = ""
    group: str = ""
    allowed_users: frozenset[str] = frozenset()
    env: Pairs = ()
    timeout: float | None = None
    reload_config: str = ""


@dataclass(frozen=True, slots=True)
class CableSettings:
    enabled: bool = True
    path: str = "/cable"
    broadcast_path: str = "/_broadcast"


@dataclass(frozen=True, slots=True)
class VectorSettings:
    enabled: bool = False
    socket: str = ""
    config: str = ""


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    format: Literal["text", "json"] = "text"
    file: str = ""
    access_log: bool = True
    vector: VectorSettings = field(default_factory=VectorSettings)
    access_log_file: Path | None = None  # access lines go here instead of stdout


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    enabled: bool = True
    path: str = "/_navigator/metrics"  # answered only to loopback peers
    listen: ListenAddress | None = None  # optional separate internal listener


@dataclass(frozen=True, slots=True)
class MachineStart:
    """`stamps.machine_start`: before a replay, ask DNS whether the destination runs, and
    start a stopped machine through the Machines API (`proxy.wake`)."""

    enabled: bool = False
    timeout: float = 30.0  # a request waits this long for the machine, then gives up
    backoff: float = 10.0  # after a failed start call, none for this long
    fly_api_socket: str = "/.fly/api"


@dataclass(frozen=True, slots=True)
class StatusPage:
    """`server.status_page`: the HTML status page (off when `path` is "")."""

    path: str = ""
    without_auth: bool = False  # served while auth is off (anyone reaching the listener)


@dataclass(frozen=True, slots=True)
class StampSettings:
    """Deployment-stamp identity, captured from FLY_* at resolve time."""

    app: str = ""
    region: str = ""
    machine_id: str = ""
    dns_servers: tuple[str, ...] = ()  # "" = system resolver; tests point at loopback
    machine_start: MachineStart = field(default_factory=MachineStart)


@dataclass(frozen=True, slots=True)
class Config:
    source: Path  # the file this was loaded from (absolute)
    listen: ListenAddress
    root_path: str = "/"  # ends with "/"
    trust_proxy: bool = False
    hostname: str = ""
    pid_file: Path = Path("/tmp/navigator.pid")
    health_check: HealthCheck = field(default_factory=lambda: HealthCheck("", None))
    static: StaticSettings | None = None  # None when public_dir does not exist
    idle: IdleSettings = field(default_factory=lambda: IdleSettings("", 600.0))
    limits: Limits = field(default_factory=Limits)
    bot_detection: BotDetection = field(default_factory=BotDetection)
    cgi_scripts: tuple[CgiScript, ...] = ()
    cable: CableSettings = field(default_factory=CableSettings)
    auth: AuthSettings = field(default_factory=lambda: AuthSettings(False))
    maintenance: Maintenance = field(default_factory=Maintenance)
    rules: tuple[Rule, ...] = ()  # user rules then synthesised slash redirects
    reverse_proxies: tuple[ReverseProxyRoute, ...] = ()
    tenants: tuple[Tenant, ...] = ()
    pools: Pools = field(default_factory=Pools)
    tenant_hooks: TenantHooks = field(default_factory=TenantHooks)
    server_hooks: ServerHooks = field(default_factory=ServerHooks)
    managed_processes: tuple[ManagedProcess, ...] = ()
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    status_page: StatusPage = field(default_factory=StatusPage)
    stamp: StampSettings = field(default_factory=StampSettings)
    warnings: tuple[str, ...] = ()  # unknown keys, defaulted durations, ... (for `check`)
