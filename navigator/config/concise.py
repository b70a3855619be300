"""The concise file format (`version: 2`): msgspec Structs of the keys a person writes by
hand. `concise_lower` turns a decoded file into the reference format's `NavigatorFile`, so
both formats resolve through one `loader.resolve` into one runtime Config.

Room: config (PURE: Structs only). The shape, in full:

    version: 2
    listen: 3000
    app: {preset: rails, command: ..., env: {...}, migrate: ..., idle: 5m, ...}
    tenants:                       # path -> its variables (filled into app.env's ${name})
      /alpha/: {tenant: alpha}
      /beta/: {var: {tenant: beta}, env: {X: y}}   # long form: a reference tenant entry
      pattern: /shop/{tenant}/     # or: a pattern plus a list of values
      list: [gamma, delta]
    static: public                 # or {dir, try, assets, cache, ...}
    health: /up                    # answered by navigator: 200 OK
    auth: {htpasswd: users.htpasswd, public: [...], open: [...]}
    redirects: {"/old/**": /new/$1}    # globs (see `patterns`), or ^regexes
    rewrites: {...}
    proxies: {/api/: "http://127.0.0.1:9000"}
    replay: {"/eu/**": {region: ams}}
    placement: {"/sally/**": {region: ams}}

plus the reference's own sections, under their own names and in their own shape, for what
the keys above do not cover: `server`, `cable`, `maintenance`, `hooks`,
`managed_processes`, `logging`, `stamps`. A concise key wins over the same setting there.

Invariants:
- fields typed `Any` take more than one shape (a string or a mapping, a mapping or a list);
  `concise_lower` checks them and names the key on a wrong shape;
- every `str` field defaults to "" = "the preset's (or the reference's) default".

Must not touch: runtime types, the file system, the environment.
"""

from __future__ import annotations

from typing import Any

import msgspec

from navigator.config import schema as sc


class Spec(msgspec.Struct, kw_only=True):
    """Base of every concise section, as `schema.Spec` is of the reference's."""


class AppSpec(Spec):
    """`app:` what runs each tenant. Unset keys come from the preset."""

    preset: str = ""  # generic | rails | django | fastapi | node; "" = generic
    command: Any = None  # "prog arg {{port}}" (split like a shell) or a list
    module: str = ""  # what `{module}` in the preset's command stands for
    dir: str = ""  # where the app lives (working directory of every tenant)
    port_env: str = ""  # the environment variable that carries the port
    health: str = ""  # readiness probe path
    health_under_prefix: bool | None = None  # probe <tenant path><health>
    ready_on_5xx: bool | None = None  # a 5xx probe answer counts as ready
    prefix: str = ""  # full | strip | script_name
    cookies: str = ""  # scoped | shared
    startup_timeout: str = ""
    ready_timeout: str = ""
    start_delay: str = ""
    idle: str = ""  # stop a tenant after this long without requests
    websockets: bool | None = None  # open WebSockets keep a tenant running
    env: dict[str, str] = {}
    migrate: Any = None  # before-start hook: a command, a hook mapping, or false
    pools: sc.PoolsSpec | None = None  # the reference's applications.pools


class StaticConcise(Spec):
    """`static:` (a bare string is `dir`)."""

    dir: str = ""  # "" = public
    try_files: list[str] = msgspec.field(default_factory=list, name="try")
    extensions: list[str] = []
    normalize_trailing_slashes: bool = False
    assets: str | None = None  # prefix cached for a year, immutable; None = the preset's
    cache: str = ""  # max-age of every other file
    cache_control: sc.CacheControlSpec | None = None  # the reference's, for the rest


class AuthConcise(Spec):
    enabled: bool = True
    htpasswd: str = ""
    realm: str = ""
    public: list[str] = []  # the reference's public_paths: exact, "/prefix/", "*.css"
    open: list[str] = []  # patterns (globs or ^regexes) that never ask for a password
    patterns: list[sc.AuthPatternSpec] = []  # the reference's auth_patterns, after `open`


class ProxyConcise(Spec):
    """A `proxies:` value when a bare target URL is not enough."""

    target: str = ""
    name: str = ""
    prefix: str = ""  # only where a regex key also keeps a prefix (from a conversion)
    strip_path: bool = False
    headers: dict[str, str] = {}
    response_headers: dict[str, str] = {}
    websocket: bool = False


class ReplayConcise(Spec):
    """A `replay:` value: where requests for the key's paths are served."""

    app: str = ""
    region: str = ""
    machine: str = ""
    prefer_instance: str = ""  # the Fly machine preferred; Fly falls back to any
    status: int = 307
    methods: list[str] = []


class PlacementConcise(Spec):
    """A `placement:` value: where the tenants the key matches live. Each key is copied onto
    the reference tenant key of the same name (`concise_lower.PLACEMENT_KEYS`), so a key
    added here and to `schema.TenantSpec` is lowered and converted with no other change."""

    region: str = ""
    machine: str = ""
    prefer_instance: str = ""  # one machine per user: preferred, Fly falls back to any


class ConciseFile(Spec):
    version: str = ""
    listen: str = ""
    app: AppSpec = msgspec.field(default_factory=AppSpec)
    tenants: Any = None  # {path: vars | long form | ~, pattern: ..., list: [...]}
    static: Any = None  # str | StaticConcise
    health: Any = None  # str | the reference's HealthCheckSpec
    auth: AuthConcise | None = None
    redirects: Any = None  # {pattern: target} | [{from, to}]
    rewrites: Any = None
    proxies: Any = None  # {prefix or pattern: target | ProxyConcise} | [ReverseProxySpec]
    replay: Any = None  # {pattern: ReplayConcise} | [ReplaySpec]
    placement: dict[str, PlacementConcise] = {}
    # The reference's sections, as they are there:
    server: sc.ServerSpec | None = None
    cable: sc.CableSpec | None = None
    maintenance: sc.MaintenanceSpec | None = None
    hooks: sc.HooksSpec | None = None
    managed_processes: list[sc.ManagedProcessSpec] = []
    logging: sc.LoggingSpec | None = None
    stamps: sc.StampsSpec | None = None
