"""Lowering a concise file (`version: 2`) into the reference format's `NavigatorFile`.

Room: config (PURE: data in, Structs out). `decode_document` is the one entry the loader
calls for either format: the reference format goes straight to `yamlfile.decode`, the
concise one through `lower`, which expands the preset, the tenant map and the glob patterns.
After that both formats are one code path (`loader.resolve`).

Invariants:
- `Decoded.where` maps every key path of the lowered file back to the key the person wrote
  (`applications.tenants[2]` → `tenants./sally/list1/`), so an error found while resolving
  names the concise file's line and key, as it would in the reference format;
- a value the concise format cannot take raises `ConfigError` naming its key and what was
  expected; nothing is dropped silently;
- the lowered file is what `navigator convert --to reference` and `navigator check --format
  reference` print: presets fully expanded.

Must not touch: runtime types, the file system, the environment.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from navigator.config import concise as cc
from navigator.config import patterns
from navigator.config import schema as sc
from navigator.config.presets import PREFIX_MODES, PRESETS, Preset, preset_command
from navigator.config.schema import ConfigError, KeyPath
from navigator.config.yamlfile import decode, decode_as

T = TypeVar("T")
CONCISE_VERSION = "2"
PREFIX_VAR = "prefix"  # `${prefix}` in app.env: the tenant's path without its last "/"
_OFF = frozenset({"false", "no", "off", "n"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COOKIES = ("scoped", "shared")
_REFERENCE_ONLY = {"applications": "app and tenants",
                   "routes": "redirects, rewrites, proxies and replay"}
# `placement` values are copied onto the tenant keys of the same names (a key added to
# `concise.PlacementConcise` and to `schema.TenantSpec` needs nothing else here).
PLACEMENT_KEYS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(
    cc.PlacementConcise))


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded file of either format: the reference Structs, unknown keys (as written),
    and where each lowered key came from."""

    raw: sc.NavigatorFile
    unknown: list[KeyPath]
    concise: bool = False
    origin: Mapping[KeyPath, KeyPath] = field(default_factory=dict)

    def where(self, key: KeyPath) -> KeyPath:
        """The key the file wrote for a key of the lowered file (longest known prefix)."""
        for end in range(len(key), 0, -1):
            found = self.origin.get(key[:end])
            if found is not None:
                return (*found, *key[end:])
        return key


def is_concise(data: object) -> bool:
    return isinstance(data, dict) and "version" in data


def decode_document(data: object) -> Decoded:
    """Either format, told apart by a top-level `version` key (the reference has none)."""
    if not is_concise(data):
        raw, unknown = decode(data)
        return Decoded(raw, unknown)
    assert isinstance(data, dict)
    version = data["version"]
    if version != CONCISE_VERSION:
        raise ConfigError(f"expected {CONCISE_VERSION} (the concise format; the reference "
                          f"format has no version key), got {version!r}", ("version",))
    return _Lowering(data).run()


def words(value: object, key: KeyPath) -> list[str]:
    """A command as a string (split like a shell does) or a list of strings."""
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"cannot split the command: {exc}", key) from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        argv = list(value)
    else:
        raise ConfigError("expected a command (a string or a list of strings)", key)
    if not argv:
        raise ConfigError("expected a command, got an empty one", key)
    return argv


class _Lowering:
    """One concise file's lowering; collects unknown keys and the key origins."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data
        self.unknown: list[KeyPath] = []
        self.origin: dict[KeyPath, KeyPath] = {}

    def part(self, value: object, cls: type[T], key: KeyPath) -> T:
        return decode_as(value, cls, key, self.unknown)

    def regex(self, pattern: str, key: KeyPath) -> str:
        try:
            return patterns.to_regex(pattern)
        except ValueError as exc:
            raise ConfigError(str(exc), key) from None

    def run(self) -> Decoded:
        for name, instead in _REFERENCE_ONLY.items():
            if name in self.data:
                raise ConfigError(f"the reference format's {name} section is not read in a "
                                  f"version: 2 file; expected {instead} (docs/concise.md)",
                                  (name,))
        file = self.part(self.data, cc.ConciseFile, ())
        name = file.app.preset or "generic"
        preset = PRESETS.get(name)
        if preset is None:
            raise ConfigError(f"expected one of {', '.join(PRESETS)}, got {name!r}",
                              ("app", "preset"))
        tenants = self.place(file.placement, self.tenants(self.data.get("tenants")))
        apps = self.applications(file.app, preset, tenants)
        server = file.server or sc.ServerSpec()
        changes: dict[str, Any] = {}
        if file.listen:
            changes["listen"] = file.listen
            self.origin[("server", "listen")] = ("listen",)
        if file.health is not None:
            changes["health_check"] = self.health(file.health)
            self.origin[("server", "health_check")] = ("health",)
        static = self.static(file.static, preset)
        if static is not None:
            changes["static"] = static
            self.origin[("server", "static")] = ("static",)
            if isinstance(file.static, dict):
                for ours, theirs in (("dir", "public_dir"), ("try", "try_files"),
                                     ("extensions", "allowed_extensions")):
                    self.origin[("server", "static", theirs)] = ("static", ours)
            else:
                self.origin[("server", "static", "public_dir")] = ("static",)
        elif file.server is None or "static" not in (self.data.get("server") or {}):
            changes["static"] = self.static_defaults(preset)
        cable = file.cable or sc.CableSpec()
        if "enabled" not in (self.data.get("cable") or {}):
            cable = msgspec.structs.replace(cable, enabled=preset.cable)
        raw = sc.NavigatorFile(
            server=msgspec.structs.replace(server, **changes),
            cable=cable,
            auth=self.auth(file.auth),
            maintenance=file.maintenance or sc.MaintenanceSpec(),
            routes=sc.RoutesSpec(
                redirects=self.rewrites(file.redirects, "redirects"),
                rewrites=self.rewrites(file.rewrites, "rewrites"),
                reverse_proxies=self.proxies(file.proxies),
                fly=sc.FlySpec(replay=self.replays(file.replay))),
            applications=apps,
            managed_processes=file.managed_processes,
            hooks=self.hooks(file.hooks, file.app.migrate, preset),
            logging=file.logging or sc.LoggingSpec(),
            stamps=file.stamps or sc.StampsSpec())
        return Decoded(raw, self.unknown, True, self.origin)

    # --- app -------------------------------------------------------------------------------
    def applications(self, app: cc.AppSpec, preset: Preset,
                     tenants: list[sc.TenantSpec]) -> sc.ApplicationsSpec:
        akey: KeyPath = ("app",)
        argv = (words(app.command, (*akey, "command")) if app.command is not None
                else list(preset_command(preset, app.module)))
        if not argv:
            raise ConfigError(f"missing the command that starts the app (the {preset.name} "
                              "preset has none): command: \"prog arg {{port}}\"",
                              (*akey, "command"))
        prefix = app.prefix or preset.prefix
        if prefix not in PREFIX_MODES:
            raise ConfigError(f"expected one of {', '.join(PREFIX_MODES)}, got {prefix!r}",
                              (*akey, "prefix"))
        cookies = app.cookies or ("scoped" if preset.scope_cookies else "shared")
        if cookies not in _COOKIES:
            raise ConfigError(f"expected scoped or shared, got {cookies!r}",
                              (*akey, "cookies"))
        env = merge_env(preset, app.env)
        if any(f"${{{PREFIX_VAR}}}" in value for value in env.values()):
            tenants = [t if PREFIX_VAR in t.var else msgspec.structs.replace(
                t, var={**t.var, PREFIX_VAR: t.path.rstrip("/")}) for t in tenants]
        pools = app.pools or sc.PoolsSpec()
        if app.idle:
            pools = msgspec.structs.replace(pools, timeout=app.idle)
        written = {"command": ("framework", "command"), "dir": ("framework", "app_directory"),
                   "port_env": ("framework", "port_env_var"),
                   "start_delay": ("framework", "start_delay"), "health": ("health_check",),
                   "startup_timeout": ("startup_timeout",), "ready_timeout": ("ready_timeout",),
                   "idle": ("pools", "timeout"), "pools": ("pools",), "env": ("env",)}
        for name, where in written.items():
            if getattr(app, name) not in (None, "", {}):
                self.origin[("applications", *where)] = (*akey, name)
        if app.command is not None:
            self.origin[("applications", "framework", "args")] = (*akey, "command")
        return sc.ApplicationsSpec(
            pools=pools, env=env,
            health_check=app.health or preset.health,
            startup_timeout=app.startup_timeout or preset.startup_timeout,
            ready_timeout=app.ready_timeout,
            track_websockets=True if app.websockets is None else app.websockets,
            strip_prefix=prefix == "strip", script_name=prefix == "script_name",
            scope_cookies=cookies == "scoped",
            prefix_health_check=_either(app.health_under_prefix, preset.health_under_prefix),
            ready_on_5xx=_either(app.ready_on_5xx, preset.ready_on_5xx),
            framework=sc.FrameworkSpec(command=argv[0], args=argv[1:],
                                       app_directory=app.dir,
                                       port_env_var=app.port_env or preset.port_env,
                                       start_delay=app.start_delay),
            tenants=tenants)

    def hooks(self, given: sc.HooksSpec | None, migrate: object,
              preset: Preset) -> sc.HooksSpec:
        hooks = given or sc.HooksSpec()
        key: KeyPath = ("app", "migrate")
        first: list[sc.HookSpec] = []
        if migrate is None:
            if preset.migrate:
                first = [sc.HookSpec(command=preset.migrate[0], args=list(preset.migrate[1:]),
                                     timeout=preset.migrate_timeout)]
        elif isinstance(migrate, dict):
            first = [self.part(migrate, sc.HookSpec, key)]
        elif not (isinstance(migrate, str) and migrate.lower() in _OFF):
            argv = words(migrate, key)
            first = [sc.HookSpec(command=argv[0], args=argv[1:],
                                 timeout=preset.migrate_timeout)]
        if not first:
            return hooks
        self.origin[("hooks", "tenant", "before_start", 0)] = key
        for index in range(len(hooks.tenant.before_start)):
            self.origin[("hooks", "tenant", "before_start", index + 1)] = \
                ("hooks", "tenant", "before_start", index)
        tenant = msgspec.structs.replace(hooks.tenant,
                                         before_start=first + hooks.tenant.before_start)
        return msgspec.structs.replace(hooks, tenant=tenant)

    # --- tenants ---------------------------------------------------------------------------
    def tenants(self, value: object) -> list[sc.TenantSpec]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise ConfigError("expected a mapping of tenant paths (/path/: {variable: value})",
                              ("tenants",))
        out: list[sc.TenantSpec] = []
        for path, spec in value.items():
            if path in ("pattern", "list"):
                continue
            key: KeyPath = ("tenants", str(path))
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError("expected a tenant path beginning with '/' (or the keys "
                                  "pattern and list)", key)
            self.origin[("applications", "tenants", len(out))] = key
            out.append(self.tenant(path, spec, key))
        pattern, listing = value.get("pattern"), value.get("list")
        if pattern is not None or listing is not None:
            for index, variables in enumerate(self.listed(pattern, listing)):
                path = _fill(str(pattern), variables)
                self.origin[("applications", "tenants", len(out))] = ("tenants", "list", index)
                out.append(sc.TenantSpec(path=path, var=dict(variables)))
        return out

    def tenant(self, path: str, spec: object, key: KeyPath) -> sc.TenantSpec:
        if spec is None:
            return sc.TenantSpec(path=path)
        if not isinstance(spec, dict):
            raise ConfigError("expected a mapping of the tenant's variables "
                              "({owner: sam}), or its options with var: {...}", key)
        if "var" in spec:  # the long form: a reference tenant entry, its path is the key
            if "path" in spec:
                raise ConfigError("the tenant's path is the key above; remove this one",
                                  (*key, "path"))
            return msgspec.structs.replace(self.part(spec, sc.TenantSpec, key), path=path)
        for name, item in spec.items():
            if isinstance(item, list | dict):
                raise ConfigError("expected a variable's value (a scalar); tenant options "
                                  "go in the long form {var: {...}, env: {...}}",
                                  (*key, str(name)))
        return sc.TenantSpec(path=path, var={str(k): "" if v is None else v
                                             for k, v in spec.items()})

    def listed(self, pattern: object, listing: object) -> list[dict[str, str]]:
        key: KeyPath = ("tenants", "pattern")
        if not isinstance(pattern, str) or not pattern.startswith("/"):
            raise ConfigError("expected a path pattern such as /{owner}/{list}/ (with list:)",
                              key)
        names = _PLACEHOLDER.findall(pattern)
        if not names:
            raise ConfigError("expected at least one {name} placeholder in the pattern", key)
        if not isinstance(listing, list):
            raise ConfigError("expected a list of the pattern's values (sam/list1, or a "
                              "mapping {owner: sam, list: list1})", ("tenants", "list"))
        out = []
        for index, item in enumerate(listing):
            ikey: KeyPath = ("tenants", "list", index)
            if isinstance(item, str):
                values = item.split("/")
                if len(values) != len(names) or not all(values):
                    raise ConfigError(f"expected {len(names)} value(s) separated by '/' for "
                                      f"{'/'.join('{' + n + '}' for n in names)}, got "
                                      f"{item!r}", ikey)
                out.append(dict(zip(names, values, strict=True)))
            elif isinstance(item, dict) and all(isinstance(v, str) for v in item.values()):
                missing = [n for n in names if not item.get(n)]
                if missing:
                    raise ConfigError(f"missing a value for {', '.join(missing)}", ikey)
                out.append({str(k): v for k, v in item.items()})
            else:
                raise ConfigError("expected the pattern's values: a string (sam/list1) or a "
                                  "mapping of scalars", ikey)
        return out

    def place(self, placement: Mapping[str, cc.PlacementConcise],
              tenants: list[sc.TenantSpec]) -> list[sc.TenantSpec]:
        """The placement map: the first entry whose pattern matches a tenant's path places
        it, by setting the tenant keys of the same names (`PLACEMENT_KEYS`)."""
        placed = list(tenants)
        done: set[int] = set()
        for pattern, spec in placement.items():
            key: KeyPath = ("placement", pattern)
            try:
                hits = [i for i, t in enumerate(placed)
                        if patterns.matches_path(pattern, t.path if t.path.endswith("/")
                                                 else t.path + "/")]
            except ValueError as exc:
                raise ConfigError(str(exc), key) from None
            if not hits:
                raise ConfigError("matches no tenant path", key)
            given = {name: getattr(spec, name) for name in PLACEMENT_KEYS
                     if getattr(spec, name)}
            for index in set(hits) - done:
                done.add(index)
                placed[index] = msgspec.structs.replace(placed[index], **given)
                for name in PLACEMENT_KEYS:
                    self.origin[("applications", "tenants", index, name)] = (*key, name)
        return placed

    # --- server ----------------------------------------------------------------------------
    def health(self, value: object) -> sc.HealthCheckSpec:
        if isinstance(value, str):
            return sc.HealthCheckSpec(path=value, response=sc.HealthResponseSpec(
                status=200, body="OK"))
        return self.part(value, sc.HealthCheckSpec, ("health",))

    def static(self, value: object, preset: Preset) -> sc.StaticSpec | None:
        if value is None:
            return None
        spec = cc.StaticConcise(dir=value) if isinstance(value, str) \
            else self.part(value, cc.StaticConcise, ("static",))
        cache = spec.cache_control or sc.CacheControlSpec()
        if spec.cache:
            cache = msgspec.structs.replace(cache, default=spec.cache)
        assets = preset.assets if spec.assets is None else spec.assets
        return sc.StaticSpec(
            public_dir=spec.dir, allowed_extensions=spec.extensions, try_files=spec.try_files,
            normalize_trailing_slashes=spec.normalize_trailing_slashes,
            cache_control=_with_assets(cache, assets))

    def static_defaults(self, preset: Preset) -> sc.StaticSpec:
        return sc.StaticSpec(cache_control=_with_assets(sc.CacheControlSpec(), preset.assets))

    def auth(self, spec: cc.AuthConcise | None) -> sc.AuthSpec:
        if spec is None:
            return sc.AuthSpec()
        if spec.enabled and not spec.htpasswd:
            # the reference turns auth off without a file; here the section means "on"
            raise ConfigError("missing the htpasswd file (auth is on when this section is "
                              "present; enabled: false turns it off)", ("auth", "htpasswd"))
        opened = []
        for index, pattern in enumerate(spec.open):
            self.origin[("auth", "auth_patterns", index)] = ("auth", "open", index)
            opened.append(sc.AuthPatternSpec(
                pattern=self.regex(pattern, ("auth", "open", index)), action="off"))
        for index in range(len(spec.patterns)):
            self.origin[("auth", "auth_patterns", len(opened) + index)] = \
                ("auth", "patterns", index)
        self.origin[("auth", "public_paths")] = ("auth", "public")
        return sc.AuthSpec(enabled=spec.enabled, realm=spec.realm, htpasswd=spec.htpasswd,
                           public_paths=spec.public, auth_patterns=opened + spec.patterns)

    # --- routes ----------------------------------------------------------------------------
    def entries(self, value: object, name: str, target: str) -> list[tuple[Any, KeyPath, Any]]:
        """(pattern or None, key, value) for a `{pattern: value}` map or a reference-shaped
        list (pattern None)."""
        if value is None:
            return []
        if isinstance(value, dict):
            return [(str(k), (name, str(k)), v) for k, v in value.items()]
        if isinstance(value, list):
            return [(None, (name, i), v) for i, v in enumerate(value)]
        raise ConfigError(f"expected a mapping {{pattern: {target}}} or a list", (name,))

    def rewrites(self, value: object, name: str) -> list[sc.RewriteSpec]:
        out: list[sc.RewriteSpec] = []
        for pattern, key, item in self.entries(value, name, "target"):
            self.origin[("routes", name, len(out))] = key
            if pattern is None:
                out.append(self.part(item, sc.RewriteSpec, key))
                continue
            if not isinstance(item, str):
                raise ConfigError("expected the target path (a string; $1 for the first "
                                  "wildcard)", key)
            for part in ("from", "to"):
                self.origin[("routes", name, len(out), part)] = key
            out.append(sc.RewriteSpec(from_=self.regex(pattern, key), to=item))
        return out

    def proxies(self, value: object) -> list[sc.ReverseProxySpec]:
        out: list[sc.ReverseProxySpec] = []
        for pattern, key, item in self.entries(value, "proxies", "target URL"):
            index = len(out)
            self.origin[("routes", "reverse_proxies", index)] = key
            if pattern is None:
                out.append(self.part(item, sc.ReverseProxySpec, key))
                continue
            spec = cc.ProxyConcise(target=item) if isinstance(item, str) \
                else self.part(item, cc.ProxyConcise, key)
            for part in ("path", "prefix"):
                self.origin[("routes", "reverse_proxies", index, part)] = key
            plain = not (patterns.is_regex(pattern) or set(pattern) & {"*", "{"})
            out.append(sc.ReverseProxySpec(
                name=spec.name, path="" if plain else self.regex(pattern, key),
                prefix=pattern if plain else spec.prefix, target=spec.target,
                strip_path=spec.strip_path, headers=spec.headers,
                response_headers=spec.response_headers, websocket=spec.websocket))
        return out

    def replays(self, value: object) -> list[sc.ReplaySpec]:
        out: list[sc.ReplaySpec] = []
        for pattern, key, item in self.entries(value, "replay", "{region: ...}"):
            self.origin[("routes", "fly", "replay", len(out))] = key
            if pattern is None:
                out.append(self.part(item, sc.ReplaySpec, key))
                continue
            self.origin[("routes", "fly", "replay", len(out), "path")] = key
            spec = self.part(item, cc.ReplayConcise, key)
            out.append(sc.ReplaySpec(path=self.regex(pattern, key), app=spec.app,
                                     region=spec.region, machine=spec.machine,
                                     prefer_instance=spec.prefer_instance,
                                     status=spec.status, methods=spec.methods))
        return out


def _fill(pattern: str, variables: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: variables[match.group(1)], pattern)


def merge_env(preset: Preset, env: Mapping[str, str]) -> dict[str, str]:
    """The file's env, in its order, then the preset's variables it does not set."""
    return {**env, **{k: v for k, v in preset.env if k not in env}}


def asset_override(prefix: str) -> sc.CacheOverrideSpec:
    return sc.CacheOverrideSpec(path=prefix, max_age="1y", immutable=True)


def _with_assets(cache: sc.CacheControlSpec, assets: str) -> sc.CacheControlSpec:
    if not assets:
        return cache
    return msgspec.structs.replace(cache, overrides=[asset_override(assets), *cache.overrides])


def _either(own: bool | None, default: bool) -> bool:
    return default if own is None else own
