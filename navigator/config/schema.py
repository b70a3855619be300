"""The file format: msgspec Structs for every YAML key, and reading YAML into them.

Room: config (PURE apart from nothing: text in, Structs out). The Structs mirror reference
section 3 key for key, plus our
extensions (`server.limits`, `server.pid_file`, `server.metrics`, `server.access_log`,
`server.idle.command|fly_api_socket|count_websockets`, `stamps`, replay `machine`/`methods`,
tenant `region`/`machine`). `parse_yaml` reads the text with every plain
scalar as a string, `decode` checks shapes and converts scalars by the target field's type,
then builds `NavigatorFile`; `config.resolve` turns that into the frozen `runtime.Config`.

Invariants:
- every scalar that is not an int or bool in the reference is a `str` holding the YAML
  source text (`timeout: 10` is `"10"`, `action: off` is `"off"`); durations and sizes stay
  strings here and are parsed by `config.resolve`;
- every field has a default except the few the reference cannot run without (a health
  response's `status`, a hook's `command`, a managed process's `name` and `command`), so a
  missing key means "use the default", never an error;
- `str` fields default to "" meaning "not set"; the defaults the reference documents for
  them are applied in `config.resolve`, where inheritance (tenant → applications → built-in)
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec
import yaml


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


class ReverseProxySpec(Spec):
    name: str = ""
    path: str = ""  # regex; wins over prefix
    prefix: str = ""
    target: str = ""
    strip_path: bool = False
    headers: dict[str, str] = {}
    response_headers: dict[str, str] = {}
    websocket: bool = False


class ReplaySpec(Spec):
    path: str = ""
    app: str = ""
    region: str = ""
    machine: str = ""  # extension
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
    hooks: TenantHooksSpec = msgspec.field(default_factory=TenantHooksSpec)
    public_dir: str = ""
    startup_timeout: str = ""
    ready_timeout: str = ""  # extension
    memory_limit: str = ""
    user: str = ""
    group: str = ""
    bot_detection: BotDetectionSpec | None = None
    region: str = ""  # extension: placement (decoded, not used yet)
    machine: str = ""  # extension: placement (decoded, not used yet)


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


class StampsSpec(Spec):
    """Extension `stamps`: deployment-stamp networking."""

    dns_servers: list[str] = []  # "host:port"; empty = system resolver


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


def json_schema() -> dict[str, Any]:
    """JSON Schema of the file format (for editors and generated docs)."""
    return msgspec.json.schema(NavigatorFile)


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


# --- reading YAML ----------------------------------------------------------------------------
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _Loader(yaml.CSafeLoader):
    """C parser and composer; every plain scalar is a string except null and `<<`."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if implicit[0]:  # plain (unquoted) scalar
                return _NULL_TAG if value in _NULLS else _MERGE_TAG if value == "<<" else _STR_TAG
            return _STR_TAG
        return "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"


_TRUE = frozenset({"y", "yes", "on", "true"})
_FALSE = frozenset({"n", "no", "off", "false"})
_INT = re.compile(r"[-+]?[0-9]+")
_RADIX_INT = re.compile(r"0x[0-9a-fA-F]+|0o[0-7]+")


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the schema expects at one place of the tree (built once from the Structs)."""

    kind: str  # struct | list | dict | str | bool | int | flag_or_text | any
    item: _Shape | None = None  # list item / dict value
    fields: Mapping[str, _Shape] = field(default_factory=lambda: MappingProxyType({}))
    required: tuple[str, ...] = ()


def _shape_of(info: msgspec.inspect.Type) -> _Shape:
    inspect = msgspec.inspect
    if isinstance(info, inspect.UnionType):
        inner = [t for t in info.types if not isinstance(t, inspect.NoneType)]
        if {type(t) for t in inner} == {inspect.BoolType, inspect.StrType}:
            return _Shape("flag_or_text")
        (only,) = inner
        return _shape_of(only)
    if isinstance(info, inspect.StructType):
        return _Shape("struct", fields=MappingProxyType(
            {f.encode_name: _shape_of(f.type) for f in info.fields}),
            required=tuple(f.encode_name for f in info.fields if f.required))
    if isinstance(info, inspect.ListType):
        return _Shape("list", item=_shape_of(info.item_type))
    if isinstance(info, inspect.DictType):
        return _Shape("dict", item=_shape_of(info.value_type))
    kinds = {inspect.StrType: "str", inspect.BoolType: "bool", inspect.IntType: "int"}
    return _Shape(kinds.get(type(info), "any"))


_ROOT = _shape_of(msgspec.inspect.type_info(NavigatorFile))
_WHAT = {"str": "a string", "bool": "a boolean (true/false, yes/no, on/off)",
         "int": "an integer", "flag_or_text": "a boolean or a string", "list": "a list",
         "dict": "a mapping", "struct": "a mapping"}


def _describe(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value) if isinstance(value, str) else repr(str(value))


def _check(value: object, shape: _Shape, key: KeyPath, unknown: list[KeyPath]) -> object:
    """Validate `value` against `shape`, converting scalars; returns the value to decode."""
    kind = shape.kind
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):  # only from explicit tags such as `!!bool`
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
    elif kind == "struct":
        if isinstance(value, dict):
            out: dict[str, object] = {}
            fields = shape.fields
            for name, item in value.items():
                sub = fields.get(name) if isinstance(name, str) else None
                if sub is None:
                    unknown.append((*key, str(name)))
                elif item is not None:  # `~` / empty: keep the default
                    out[name] = _check(item, sub, (*key, name), unknown)
            for name in shape.required:
                if name not in out:
                    raise ConfigError(f"missing required key {name!r}", key)
            return out
    elif kind == "list":
        if isinstance(value, list):
            item_shape = shape.item
            assert item_shape is not None
            blank = "" if item_shape.kind == "str" else None
            return [_check(blank if item is None else item, item_shape, (*key, index), unknown)
                    for index, item in enumerate(value)]
    elif kind == "dict":
        if isinstance(value, dict):
            value_shape = shape.item
            assert value_shape is not None
            blank = "" if value_shape.kind == "str" else None
            return {str(name): _check(blank if item is None else item, value_shape,
                                      (*key, str(name)), unknown)
                    for name, item in value.items()}
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.lower()
            if word in _TRUE or word in _FALSE:
                return word in _TRUE
    elif kind == "flag_or_text":  # a boolean word is the flag, any other scalar is text
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.lower()
            return word in _TRUE if word in _TRUE or word in _FALSE else value
        if isinstance(value, int | float):
            return str(value)
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            if _INT.fullmatch(value):
                return int(value)
            if _RADIX_INT.fullmatch(value):
                return int(value, 0)
    else:
        return value
    raise ConfigError(f"expected {_WHAT[kind]}, got {_describe(value)}", key)


def _data(node: yaml.Node, key: KeyPath) -> object:
    """Plain Python data for a composed node: str scalars, None for null, lists, dicts.

    Merge keys (`<<: *defaults`) are applied; an explicitly repeated key is an error, as in
    the reference's YAML library. Explicit scalar tags (`!!int 5`) keep their source text.
    """
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == _NULL_TAG else node.value
    if isinstance(node, yaml.SequenceNode):
        return [_data(child, (*key, index)) for index, child in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):  # pragma: no cover - no other node kinds
        raise ConfigError("unsupported YAML node", key)
    merged: dict[object, object] = {}
    own: dict[object, object] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) \
                else [value_node]
            for source in sources:
                value = _data(source, key)
                if not isinstance(value, dict):
                    raise ConfigError("a merge key (<<) needs a mapping", key,
                                      line=key_node.start_mark.line + 1)
                merged.update({k: v for k, v in value.items() if k not in merged})
            continue
        name = _data(key_node, key)
        line = key_node.start_mark.line + 1
        if isinstance(name, list | dict):
            raise ConfigError(f"a mapping key must be a scalar, got {_describe(name)}", key,
                              line=line)
        if name in own:
            raise ConfigError(f"key {name!r} appears twice in one mapping", (*key, str(name)),
                              line=line)
        own[name] = _data(value_node, (*key, str(name)))
    return {**merged, **own} if merged else own


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: the data to decode and the node tree that knows line numbers.

    `ignored_from` is the 1-based line where a second YAML document starts: the reference
    reads only the first document of a file, and so do we (the caller warns)."""

    root: yaml.Node | None
    data: object
    ignored_from: int | None = None

    def lines(self, keys: Iterable[KeyPath]) -> dict[KeyPath, int]:
        """1-based line of the node at each key path (or of its deepest existing parent)."""
        found: dict[KeyPath, int] = {}
        for key in keys:
            node, line = self.root, 0
            for part in key:
                child: yaml.Node | None = None
                if isinstance(node, yaml.MappingNode):
                    for key_node, value_node in node.value:
                        if key_node.value == part:
                            child, line = value_node, key_node.start_mark.line + 1
                elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
                      and part < len(node.value)):
                    child = node.value[part]
                    line = child.start_mark.line + 1
                if child is None:
                    break
                node = child
            if line:
                found[key] = line
        return found


def parse_yaml(text: str) -> Document:
    """Parse the first YAML document; syntax errors are `ConfigError`s carrying the line.

    Later documents are not parsed (a syntax error there does not matter, as in the
    reference); only the line where the second one starts is recorded."""
    loader = _Loader(text)
    try:
        root = loader.get_node() if loader.check_node() else None
        event = loader.peek_event() if loader.check_event(yaml.DocumentStartEvent) else None
        mark = event.start_mark if event is not None else None
        ignored_from = mark.line + 1 if mark is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    try:
        return Document(root, None if root is None else _data(root, ()), ignored_from)
    except RecursionError:
        raise ConfigError("YAML aliases nest too deeply (a recursive anchor?)") from None


def decode(data: object) -> tuple[NavigatorFile, list[KeyPath]]:
    """The schema object for parsed data, plus the key paths of unknown keys."""
    unknown: list[KeyPath] = []
    checked = _check({} if data is None else data, _ROOT, (), unknown)
    try:
        return msgspec.convert(checked, NavigatorFile, strict=False), unknown
    except msgspec.ValidationError as exc:  # pragma: no cover - _check covers every shape
        raise ConfigError(str(exc)) from exc
