"""`navigator convert` and `check --format`: a decoded file written out in either format.

Room: config (PURE: Structs in, plain data and YAML text out). `to_reference` writes the
lowered `NavigatorFile` (every preset expanded) without its defaults; `to_concise` finds the
preset that needs the fewest overrides and writes the concise form, putting what the concise
keys do not cover in the reference's sections (`server`, `hooks`, ...).

Invariants: loading either output gives the same runtime Config as the input (the tests
check it on every shipped example and a generated 100-tenant file); what the concise format
cannot say raises `ConfigError` naming the key, never a silently different file.

Must not touch: the file system, the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from navigator.config import patterns
from navigator.config import schema as sc
from navigator.config.applications import LEGACY_ARGV
from navigator.config.concise_lower import (
    CONCISE_VERSION,
    PLACEMENT_KEYS,
    PREFIX_VAR,
    asset_override,
    merge_env,
)
from navigator.config.context import slashed
from navigator.config.presets import PRESETS, Preset, preset_command
from navigator.config.schema import ConfigError
from navigator.config.units import parse_duration

_BARE_WORD = re.compile(r"[\w@%+=:,./{}$-]+\Z")
_GLOB_CHARS = frozenset("*{")


def prune(value: Any) -> Any:
    """Plain data for a Struct, leaving out every field that holds its default."""
    if isinstance(value, msgspec.Struct):
        out = {}
        for info in msgspec.structs.fields(value):
            item = getattr(value, info.name)
            default = info.default if info.default is not msgspec.NODEFAULT \
                else info.default_factory() if info.default_factory is not msgspec.NODEFAULT \
                else msgspec.NODEFAULT
            if default is not msgspec.NODEFAULT and item == default:
                continue
            out[info.encode_name] = prune(item)
        return out
    if isinstance(value, list):
        return [prune(item) for item in value]
    if isinstance(value, dict):
        return {key: prune(item) for key, item in value.items()}
    return value


class _Dumper(yaml.SafeDumper):
    """Short mappings and lists of scalars on one line (`{owner: sam, list: list1}`), the
    rest in block style, as a person writes them."""


def _short(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return all(not isinstance(v, dict | list) for v in items) and len(str(value)) <= 72


def _represent_dict(dumper: yaml.SafeDumper, value: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value.items(),
                                    flow_style=bool(value) and _short(value))


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                     flow_style=bool(value) and _short(value))


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump(data: Mapping[str, Any], header: str = "") -> str:
    text = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=100)
    return header + text


def to_reference(raw: sc.NavigatorFile) -> dict[str, Any]:
    data: dict[str, Any] = prune(raw)
    return data


def to_concise(raw: sc.NavigatorFile) -> dict[str, Any]:
    """The shortest concise form over the presets whose env the file's env includes."""
    _refuse_unconvertible(raw)
    best: dict[str, Any] | None = None
    best_size = 0
    for preset in PRESETS.values():
        candidate = _Concise(raw, preset).build()
        if candidate is None:
            continue
        size = len(dump(candidate))
        if best is None or size < best_size:
            best, best_size = candidate, size
    assert best is not None  # generic accepts every file
    return best


def _refuse_unconvertible(raw: sc.NavigatorFile) -> None:
    apps = raw.applications
    for name in ("runtime", "server", "args"):
        if getattr(apps, name):
            raise ConfigError("the concise format has no per-framework maps; write the "
                              "command under app: and per-tenant args in the tenant's long "
                              "form", ("applications", name))
    if apps.strip_prefix and apps.script_name:
        raise ConfigError("strip_prefix and script_name together have no concise form "
                          "(app.prefix is one of full, strip, script_name)",
                          ("applications", "script_name"))
    seen: set[str] = set()
    for index, tenant in enumerate(apps.tenants):
        key = ("applications", "tenants", index, "path")
        if not tenant.path.strip() or slashed(tenant.path) in seen:
            raise ConfigError("a tenant without a path, or a repeated one, has no concise "
                              "form (tenants are a map from path)", key)
        seen.add(slashed(tenant.path))
        if not apps.framework.command and (tenant.runtime or tenant.server or tenant.args):
            raise ConfigError("per-tenant runtime/server/args on the built-in Rails command "
                              "have no concise form; set applications.framework.command",
                              key)


class _Concise:
    """One candidate conversion with one preset; `build` is None if the preset cannot
    express the file (its env adds a variable the file does not set)."""

    def __init__(self, raw: sc.NavigatorFile, preset: Preset) -> None:
        self.raw = raw
        self.preset = preset

    def build(self) -> dict[str, Any] | None:
        raw, preset = self.raw, self.preset
        apps = raw.applications
        if any(name not in apps.env for name, _ in preset.env):
            return None
        out: dict[str, Any] = {"version": int(CONCISE_VERSION)}
        server = raw.server
        if server.listen:
            out["listen"] = int(server.listen) if server.listen.isdigit() else server.listen
        app, rest_hooks = self.app(), self.hooks()
        out["app"] = app
        tenants, placement = self.tenants()
        if tenants:
            out["tenants"] = tenants
        static = self.static(server.static)
        if static is not None:
            out["static"] = static
        health = server.health_check
        if health.path or health.response is not None:
            response = health.response
            out["health"] = health.path if response == sc.HealthResponseSpec(
                status=200, body="OK") else prune(health)
        if raw.auth != sc.AuthSpec():
            out["auth"] = self.auth(raw.auth)
        routes = raw.routes
        for name, rules in (("redirects", routes.redirects), ("rewrites", routes.rewrites)):
            if rules:
                out[name] = _rules(rules)
        if routes.reverse_proxies:
            out["proxies"] = _proxies(routes.reverse_proxies)
        if routes.fly.replay:
            out["replay"] = _replays(routes.fly.replay)
        if placement:
            out["placement"] = placement
        rest = prune(msgspec.structs.replace(server, listen="", static=sc.StaticSpec(),
                                             health_check=sc.HealthCheckSpec()))
        if rest:
            out["server"] = rest
        cable = prune(msgspec.structs.replace(raw.cable, enabled=True))
        if raw.cable.enabled != preset.cable:
            cable = {"enabled": raw.cable.enabled, **cable}
        sections = (("cable", cable), ("maintenance", prune(raw.maintenance)),
                    ("hooks", prune(rest_hooks)),
                    ("managed_processes", prune(raw.managed_processes)),
                    ("logging", prune(raw.logging)), ("stamps", prune(raw.stamps)))
        out.update({name: value for name, value in sections if value})
        return out

    # --- app -------------------------------------------------------------------------------
    def app(self) -> dict[str, Any]:
        apps, preset = self.raw.applications, self.preset
        fw = apps.framework
        out: dict[str, Any] = {}
        if preset.name != "generic":
            out["preset"] = preset.name
        argv = [fw.command, *fw.args] if fw.command else \
            [arg.replace("{port}", "{{port}}") for arg in LEGACY_ARGV]
        module = _module_of(preset, argv)
        if module is None:
            out["command"] = " ".join(argv) if all(_BARE_WORD.match(a) for a in argv) \
                else argv
        elif module != preset.module:
            out["module"] = module
        if fw.app_directory:
            out["dir"] = fw.app_directory
        if (fw.port_env_var or "PORT") != preset.port_env:
            out["port_env"] = fw.port_env_var
        if (apps.health_check or "/") != preset.health:
            out["health"] = apps.health_check or "/"
        if apps.prefix_health_check != preset.health_under_prefix:
            out["health_under_prefix"] = apps.prefix_health_check
        if apps.ready_on_5xx != preset.ready_on_5xx:
            out["ready_on_5xx"] = apps.ready_on_5xx
        prefix = "strip" if apps.strip_prefix else "script_name" if apps.script_name \
            else "full"
        if prefix != preset.prefix:
            out["prefix"] = prefix
        if apps.scope_cookies != preset.scope_cookies:
            out["cookies"] = "scoped" if apps.scope_cookies else "shared"
        if not _same_duration(apps.startup_timeout or "5s", preset.startup_timeout):
            out["startup_timeout"] = apps.startup_timeout or "5s"
        if apps.ready_timeout:
            out["ready_timeout"] = apps.ready_timeout
        if fw.start_delay:
            out["start_delay"] = fw.start_delay
        if apps.pools.timeout:
            out["idle"] = apps.pools.timeout
        pools = prune(msgspec.structs.replace(apps.pools, timeout=""))
        if pools:
            out["pools"] = pools
        if not apps.track_websockets:
            out["websockets"] = False
        preset_env = dict(preset.env)
        env = {k: v for k, v in apps.env.items() if preset_env.get(k) != v}
        if list(merge_env(preset, env).items()) != list(apps.env.items()):
            env = dict(apps.env)  # keep the file's order: the env pairs are compared in order
        if env:
            out["env"] = env
        migrate = self.migrate()
        if migrate is not None:
            out["migrate"] = migrate
        return out

    def migrate(self) -> Any:
        """The `app.migrate` value: None = the preset's hook is the file's first."""
        preset = self.preset
        before = self.raw.hooks.tenant.before_start
        first = before[0] if before else None
        if preset.migrate and first == _preset_hook(preset):
            return None
        if first is not None and first.timeout == preset.migrate_timeout \
                and not first.reload_config:
            argv = [first.command, *first.args]
            return " ".join(argv) if all(_BARE_WORD.match(a) for a in argv) else argv
        return False if preset.migrate else None

    def hooks(self) -> sc.HooksSpec:
        """The file's hooks without the one `app.migrate` stands for."""
        hooks = self.raw.hooks
        before = hooks.tenant.before_start
        migrate = self.migrate()
        stands_for_first = (migrate is None and bool(self.preset.migrate)) \
            or isinstance(migrate, str | list)
        taken = 1 if before and stands_for_first else 0
        tenant = msgspec.structs.replace(hooks.tenant, before_start=before[taken:])
        return msgspec.structs.replace(hooks, tenant=tenant)

    # --- tenants ---------------------------------------------------------------------------
    def tenants(self) -> tuple[dict[str, Any], dict[str, Any]]:
        apps = self.raw.applications
        auto = any(f"${{{PREFIX_VAR}}}" in v for v in {**dict(self.preset.env),
                                                         **apps.env}.values())
        placement: dict[str, Any] = {}
        short: dict[str, Any] = {}
        all_short = True
        for spec in apps.tenants:
            path = slashed(spec.path)
            variables = dict(spec.var)
            if auto and PREFIX_VAR not in variables:
                # unset, `${prefix}` reaches the environment; the concise format would fill
                # it in, unless the variable says `${prefix}` itself (the same text after)
                variables[PREFIX_VAR] = f"${{{PREFIX_VAR}}}"
            elif auto and variables[PREFIX_VAR] == path.rstrip("/"):
                del variables[PREFIX_VAR]
            place = {k: getattr(spec, k) for k in PLACEMENT_KEYS if getattr(spec, k)}
            if place:
                literal = not set(path) & {"*", "{", "}"}
                placement[path if literal else f"^{re.escape(path)}$"] = place
            rest = msgspec.structs.replace(spec, path="", var={},
                                           **dict.fromkeys(PLACEMENT_KEYS, ""))
            scalars = all(isinstance(v, str) for v in variables.values())
            if rest == sc.TenantSpec() and scalars and "var" not in variables:
                short[path] = variables
            else:
                all_short = False
                short[path] = {"var": variables, **prune(rest)}
        if all_short and len(short) > 1:
            compact = _pattern_form(short)
            if compact is not None:
                return compact, placement
        return short, placement

    # --- server sections -------------------------------------------------------------------
    def static(self, spec: sc.StaticSpec) -> Any:
        cache = spec.cache_control
        overrides = list(cache.overrides)
        assets: str | None = None
        if self.preset.assets and overrides[:1] == [asset_override(self.preset.assets)]:
            overrides = overrides[1:]
        elif self.preset.assets:
            assets = ""
        cache = msgspec.structs.replace(cache, overrides=overrides)
        out: dict[str, Any] = {}
        if spec.public_dir:
            out["dir"] = spec.public_dir
        if spec.try_files:
            out["try"] = spec.try_files
        if spec.allowed_extensions:
            out["extensions"] = spec.allowed_extensions
        if spec.normalize_trailing_slashes:
            out["normalize_trailing_slashes"] = True
        if assets is not None:
            out["assets"] = assets
        if cache != sc.CacheControlSpec():
            out["cache_control"] = prune(cache)
        if list(out) == ["dir"]:
            return out["dir"]
        return out or None

    def auth(self, spec: sc.AuthSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not spec.enabled or not spec.htpasswd:  # no file: off in the reference too
            out["enabled"] = False
        for name in ("htpasswd", "realm"):
            if getattr(spec, name):
                out[name] = getattr(spec, name)
        if spec.public_paths:
            out["public"] = spec.public_paths
        if spec.auth_patterns and all(p.action == "off" for p in spec.auth_patterns):
            out["open"] = [patterns.written(p.pattern) for p in spec.auth_patterns]
        elif spec.auth_patterns:
            out["patterns"] = prune(spec.auth_patterns)
        return out


def _preset_hook(preset: Preset) -> sc.HookSpec:
    return sc.HookSpec(command=preset.migrate[0], args=list(preset.migrate[1:]),
                       timeout=preset.migrate_timeout)


def _module_of(preset: Preset, argv: list[str]) -> str | None:
    """The `module` that makes the preset's command `argv`, None if it cannot."""
    if len(argv) != len(preset.command) or not preset.command:
        return None
    module = ""
    for want, have in zip(preset.command, argv, strict=True):
        if "{module}" in want:
            head, _, tail = want.partition("{module}")
            if not (have.startswith(head) and have.endswith(tail)):
                return None
            module = have[len(head):len(have) - len(tail)]
        elif want != have:
            return None
    return module if list(preset_command(preset, module)) == argv else None


def _same_duration(a: str, b: str) -> bool:
    try:
        return parse_duration(a) == parse_duration(b)
    except ValueError:
        return a == b


def _pattern_form(short: Mapping[str, Mapping[str, str]]) -> dict[str, Any] | None:
    """`pattern` + `list` when every path is one template over the tenant's variables."""
    template: str | None = None
    order: list[str] = []
    rows = []
    for path, variables in short.items():
        if not variables or any(not v or "/" in v for v in variables.values()):
            return None
        by_value = {v: k for k, v in reversed(list(variables.items()))}
        parts = path.split("/")
        names = [by_value.get(part) for part in parts]
        mine = "/".join(f"{{{n}}}" if n else p for n, p in zip(names, parts, strict=True))
        used = [n for n in names if n]
        if sorted(used) != sorted(variables) or len(set(used)) != len(used):
            return None
        if template is None:
            template, order = mine, used
        elif mine != template:
            return None
        rows.append("/".join(variables[n] for n in order))
    if template is None:
        return None
    return {"pattern": template, "list": rows}


def _keyed(items: list[Any], key: Any) -> bool:
    keys = [key(item) for item in items]
    return len(set(keys)) == len(keys) and "pattern" not in keys and "list" not in keys


def _rules(rules: list[sc.RewriteSpec]) -> Any:
    if _keyed(rules, lambda r: patterns.written(r.from_)) and all(r.from_ for r in rules):
        return {patterns.written(r.from_): r.to for r in rules}
    return prune(rules)


def _proxies(specs: list[sc.ReverseProxySpec]) -> Any:
    def key(spec: sc.ReverseProxySpec) -> str:
        if spec.path:
            return patterns.written(spec.path)
        plain = not (patterns.is_regex(spec.prefix) or set(spec.prefix) & _GLOB_CHARS)
        return spec.prefix if plain else ""

    if not all(key(s) for s in specs) or not _keyed(specs, key):
        return prune(specs)
    out: dict[str, Any] = {}
    for spec in specs:
        value = prune(msgspec.structs.replace(spec, path="", prefix="" if not spec.path
                                              else spec.prefix))
        out[key(spec)] = value["target"] if list(value) == ["target"] else value
    return out


def _replays(specs: list[sc.ReplaySpec]) -> Any:
    if not all(s.path for s in specs) or not _keyed(specs, lambda s: patterns.written(s.path)):
        return prune(specs)
    return {patterns.written(s.path): prune(msgspec.structs.replace(s, path=""))
            for s in specs}


def convert_file(path: str, to: str = "") -> str:
    """The file at `path` in the other format (or `to`: concise | reference), as YAML text.
    Reads the file (nothing else); a file that does not load is refused with its error."""
    from pathlib import Path

    from navigator.config.concise_lower import decode_document
    from navigator.config.yamlfile import parse_yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", file=path) from None
    try:
        document = parse_yaml(text)
    except ConfigError as exc:
        raise exc.at(path, exc.line) from None
    try:
        decoded = decode_document(document.data)
    except ConfigError as exc:
        raise exc.at(path, document.lines([exc.key]).get(exc.key) if exc.key else None) \
            from None
    target = to or ("reference" if decoded.concise else "concise")
    try:
        data = to_concise(decoded.raw) if target == "concise" else to_reference(decoded.raw)
    except ConfigError as exc:
        key = decoded.where(exc.key)
        raise ConfigError(exc.reason, key, file=path,
                          line=document.lines([key]).get(key) if key else None) from None
    name = Path(path).name
    return dump(data, f"# {name} in the {target} format (navigator convert --to {target})\n")
