"""Loading a navigator YAML file: parse, check shapes, decode into the schema, resolve.

Room: config (PURE apart from reading the file, and the directory checks `resolve` makes at
load time). `load_config` is the only entry point the server needs; `resolve` turns decoded
`schema.NavigatorFile` into the frozen `runtime.Config` (see `navigator.resolve_parts` docs in
`_Resolver` below); `summarize` prints what a file resolved to for `navigator check`.

Invariants:
- scalars are read as YAML 1.2 source text and converted by the *target field's* type:
  `off`, `1:30` and `10` stay strings in string fields; bool fields take true/false plus
  y/yes/on and n/no/off in any case; int fields take YAML 1.2 integers;
- `~`/empty values leave a field at its default;
- a wrong shape is a `ConfigError` naming file, line, dotted key path and reason
  (`cfg.yml:41: applications.tenants[3].path: expected a string, got a list`);
- unknown keys and recoverable problems (an unparseable duration) become entries of
  `Config.warnings`; this module never logs — the caller does;
- `os.environ` is read only by `load_config` when no `environ` is passed; everything taken
  from it is captured in the Config.

Must not touch: sockets, asyncio, subprocesses, clocks, logging setup.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import yaml

from navigator import runtime, schema
from navigator.gore import RegexSyntaxError, compile_go_regex, translate_replacement
from navigator.units import format_duration

KeyPath = tuple[str | int, ...]


class ConfigError(ValueError):
    """A config that cannot be used; `str()` is `file:line: key.path: reason`."""

    def __init__(self, reason: str, key: KeyPath = (), *, file: str = "",
                 line: int | None = None) -> None:
        self.reason = reason
        self.key = key
        self.file = file
        self.line = line
        super().__init__(_located(file, line, key, reason))

    def located(self, file: str, line: int | None) -> ConfigError:
        return ConfigError(self.reason, self.key, file=file, line=line)


def dotted(key: KeyPath) -> str:
    """`("applications", "tenants", 3, "path")` → `applications.tenants[3].path`."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _located(file: str, line: int | None, key: KeyPath, reason: str) -> str:
    where = f"{file}:{line}: " if file and line else f"{file}: " if file else ""
    return f"{where}{dotted(key)}: {reason}" if key else f"{where}{reason}"


# --- YAML --------------------------------------------------------------------------------------
class _Loader(yaml.CSafeLoader):
    """Every plain scalar is a string except null; the schema decides what it becomes."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class registry


_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                              ["~", "n", "N", ""])
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])

_TRUE = frozenset({"y", "yes", "on", "true"})
_FALSE = frozenset({"n", "no", "off", "false"})
_INT = re.compile(r"[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+")


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the schema expects at one place of the tree (built once from the Structs)."""

    kind: str  # struct | list | dict | str | bool | int | any
    item: _Shape | None = None  # list item / dict value
    fields: Mapping[str, _Shape] = field(default_factory=lambda: MappingProxyType({}))
    required: tuple[str, ...] = ()


def _shape_of(info: msgspec.inspect.Type) -> _Shape:
    inspect = msgspec.inspect
    if isinstance(info, inspect.UnionType):
        (inner,) = [t for t in info.types if not isinstance(t, inspect.NoneType)]
        return _shape_of(inner)
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


_ROOT = _shape_of(msgspec.inspect.type_info(schema.NavigatorFile))
_WHAT = {"str": "a string", "bool": "a boolean (true/false, yes/no, on/off)",
         "int": "an integer", "list": "a list", "dict": "a mapping", "struct": "a mapping"}


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
        if isinstance(value, bool):
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
                elif item is not None:
                    out[name] = _check(item, sub, (*key, name), unknown)
            for name in shape.required:
                if name not in out:
                    raise ConfigError(f"missing required key {name!r}", key)
            return out
    elif kind == "list":
        if isinstance(value, list):
            item_shape = shape.item
            assert item_shape is not None
            return [_check("" if item is None and item_shape.kind == "str" else item, item_shape,
                           (*key, index), unknown) for index, item in enumerate(value)]
    elif kind == "dict":
        if isinstance(value, dict):
            value_shape = shape.item
            assert value_shape is not None
            return {str(name): _check("" if item is None and value_shape.kind == "str" else item,
                                      value_shape, (*key, str(name)), unknown)
                    for name, item in value.items()}
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.lower()
            if word in _TRUE or word in _FALSE:
                return word in _TRUE
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.fullmatch(value):
            return int(value, 16 if value.startswith("0x") else 8 if value.startswith("0o")
                       else 10) if value[:2] in ("0x", "0o") else int(value)
    else:
        return value
    raise ConfigError(f"expected {_WHAT[kind]}, got {_describe(value)}", key)


def parse_yaml(text: str) -> object:
    """The YAML document with every plain scalar as a string (None for null/empty)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def decode(data: object) -> tuple[schema.NavigatorFile, list[KeyPath]]:
    """Schema object for a parsed document, plus the key paths of unknown keys."""
    unknown: list[KeyPath] = []
    if data is None:
        data = {}
    checked = _check(data, _ROOT, (), unknown)
    try:
        return msgspec.convert(checked, schema.NavigatorFile, strict=False), unknown
    except msgspec.ValidationError as exc:  # pragma: no cover - _check covers the shapes
        raise ConfigError(str(exc)) from exc


def line_of(text: str, key: KeyPath) -> int | None:
    """1-based line of the node at `key` (or of its deepest existing parent)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = None
    for part in key:
        if node is None:
            break
        line = node.start_mark.line + 1
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    child = value_node
                    line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        node = child
    if node is not None:
        line = node.start_mark.line + 1
    return line


# --- entry points ----------------------------------------------------------------------------
def load_config(path: str | Path, environ: Mapping[str, str] | None = None, *,
                cwd: Path | None = None) -> runtime.Config:
    """Read, decode and resolve one config file (environ defaults to os.environ)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", file=name) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc}", file=name) from exc
    try:
        data = parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem}", file=name, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=name) from exc
    try:
        raw, unknown = decode(data)
        from navigator.resolve import resolve_parts  # noqa: PLC0415
        config, issues = resolve_parts(raw, Path(path), os.environ if environ is None
                                       else environ, cwd or Path.cwd())
    except ConfigError as exc:
        raise exc.located(name, line_of(text, exc.key) if exc.key else None) from None
    notes = [(key, "unknown key (ignored)") for key in unknown] + issues
    if not notes:
        return config
    lines = _lines_of(text, [key for key, _ in notes])
    warnings = tuple(_located(name, lines.get(key), key, reason) for key, reason in notes)
    return _with_warnings(config, warnings)
