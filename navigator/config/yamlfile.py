"""Reading a YAML document into the schema's Structs: every plain scalar as text, shapes
checked against the Structs, unknown keys collected, line numbers found for errors.

Room: config (pure: text in, Structs out). `parse_yaml` reads the first document with every
plain scalar as a string; `decode` checks shapes and converts scalars by the target field's
type (see `schema` for the rules), then builds `NavigatorFile`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import msgspec
import yaml

from navigator.config.schema import ConfigError, KeyPath, NavigatorFile

T = TypeVar("T")

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


def decode_as(data: object, cls: type[T], key: KeyPath, unknown: list[KeyPath]) -> T:
    """One part of a file (at `key`) as `cls`, by the same rules as `decode`: the concise
    format decodes its sections with this, so its errors read like the reference's."""
    shape = _shape_of(msgspec.inspect.type_info(cls))
    checked = _check({} if data is None and shape.kind == "struct" else data, shape, key,
                     unknown)
    try:
        return msgspec.convert(checked, cls, strict=False)
    except msgspec.ValidationError as exc:  # pragma: no cover - _check covers every shape
        raise ConfigError(str(exc), key) from exc
