"""Descriptions of the config format generated from the msgspec Structs, so they never drift:
the JSON Schema for editors (`navigator schema`) and the Markdown configuration reference
(`docs/configuration.md`, rewritten by `python -m navigator.config.docs`, printed by
`navigator docs`).

Room: pure apart from `main` (which writes the file). Key names, types, defaults and what is
required come from `schema`; the prose comes from `keydocs`.

The exported schema describes what the loader accepts, which is looser than the Structs'
own types: the loader reads YAML with every plain scalar as text and converts by the target
type, and an editor may parse the same file as YAML 1.1 (`off` → false, `10` → 10). So a
string key also accepts numbers and booleans, a boolean key also `yes/no/on/off` in any case,
an integer key also integer text, and any key may be empty (null: keep the default).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from msgspec import inspect as mi

from navigator.config import concise as cc
from navigator.config.keydocs import FIELDS as REFERENCE_FIELDS
from navigator.config.keydocs import SECTIONS as REFERENCE_SECTIONS
from navigator.config.keydocs_concise import CONCISE_FIELDS, CONCISE_SECTIONS
from navigator.config.schema import NavigatorFile, PlacementSpec, json_schema

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
NULL: dict[str, Any] = {"type": "null"}
FIELDS = {**REFERENCE_FIELDS, **CONCISE_FIELDS}
SECTIONS = {**REFERENCE_SECTIONS, **CONCISE_SECTIONS}
# The concise format's own Structs (its `Any` keys take these, `concise_lower` checks them).
CONCISE_STRUCTS: tuple[type[msgspec.Struct], ...] = (
    cc.ConciseFile, cc.StaticConcise, cc.ProxyConcise, cc.ReplayConcise, cc.PlacementConcise)
ANY_SCALAR: list[str] = ["string", "number", "boolean", "null"]
BOOL_WORDS = ("y", "yes", "on", "true", "n", "no", "off", "false")
INT_TEXT = "^([-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$"


# --- JSON Schema ------------------------------------------------------------------------------
def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


BOOL_TEXT = "^(" + "|".join(_any_case(word) for word in BOOL_WORDS) + ")$"


def _loosen(node: dict[str, Any]) -> dict[str, Any]:
    """One value's schema, widened to what `yamlfile._check` converts."""
    if "anyOf" in node:
        return {**node, "anyOf": [_loosen(option) for option in node["anyOf"]]}
    kind = node.get("type")
    rest = {key: value for key, value in node.items() if key != "type"}
    if kind == "string":
        return {**rest, "type": ANY_SCALAR}
    if kind == "boolean":
        return {**rest, "anyOf": [{"type": "boolean"}, {"type": "string", "pattern": BOOL_TEXT}]}
    if kind == "integer":
        return {**rest, "anyOf": [{"type": "integer"}, {"type": "string", "pattern": INT_TEXT}]}
    if kind == "array" and "items" in node:
        return {**node, "items": _loosen(node["items"])}
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return {**node, "additionalProperties": _loosen(node["additionalProperties"])}
    return node


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """`key:` with nothing after it keeps the default. Null is added flat (to `type` or to
    an existing `anyOf`), never as a wrapping `anyOf`, so validators report a bad value at
    its own key rather than "not valid under any of the given schemas" at the parent."""
    kind = node.get("type")
    if isinstance(kind, str):
        return {**node, "type": [kind, "null"]}
    if "anyOf" in node and NULL not in node["anyOf"]:
        return {**node, "anyOf": [*node["anyOf"], NULL]}
    return node  # a $ref (its definition takes null), any scalar, or anything at all


def editor_schema() -> dict[str, Any]:
    """The JSON Schema of navigator.yml as the loader reads it, with each key's text: the
    concise format's when the file has a top-level `version`, else the reference's."""
    schema = json_schema(*CONCISE_STRUCTS)
    reference = schema.pop("$ref")
    schema.update({"if": {"type": "object", "required": ["version"]},
                   "then": {"$ref": "#/$defs/ConciseFile"}, "else": {"$ref": reference}})
    for name, definition in schema["$defs"].items():
        definition["type"] = ["object", "null"]
        if name in SECTIONS:
            definition["description"] = SECTIONS[name]
        properties = definition.get("properties", {})
        for key, node in list(properties.items()):
            refs = [n for n in node.get("anyOf", ()) if n != NULL]
            if len(refs) == 1 and "$ref" in refs[0] and len(node["anyOf"]) == 2:
                node = {**refs[0], **{k: v for k, v in node.items() if k != "anyOf"}}
            loose = _loosen(node)
            text = FIELDS.get(f"{name}.{key}")
            if text:
                loose["description"] = text
            properties[key] = _nullable(loose)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "navigator configuration"
    return schema


def schema_json() -> str:
    """The editor schema, pretty-printed, ending with a newline."""
    return json.dumps(editor_schema(), indent=2, sort_keys=True) + "\n"


# --- Markdown reference -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Section:
    struct: type[msgspec.Struct]
    info: mi.StructType
    paths: tuple[str, ...]  # every place in the file where this section appears
    concise: bool = False  # a section of the concise format (`version: 2`)

    @property
    def shared(self) -> bool:
        return len(self.paths) > 1

    @property
    def title(self) -> str:
        """Its path, or for a section used at several places, its kind ("Hook")."""
        if self.shared:
            return re.sub(r"(?<=[a-z])(?=[A-Z])", " ",
                          self.struct.__name__.removesuffix("Spec")).lower()
        return self.paths[0] or "(top level)"

    @property
    def anchor(self) -> str:
        if self.shared:
            return self.title.replace(" ", "-")
        anchor = self.paths[0].replace("[]", "").replace(".", "-").replace("_", "-")
        anchor = anchor.replace("*", "value")
        if self.concise:
            return "concise-" + (anchor or "file")
        return anchor or "file"


def _struct_in(kind: mi.Type) -> mi.StructType | None:
    """The Struct a field holds (directly, in a list, or optional), if any."""
    if isinstance(kind, mi.UnionType):
        found = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        return _struct_in(found[0]) if len(found) == 1 else None
    if isinstance(kind, mi.ListType):
        return _struct_in(kind.item_type)
    return kind if isinstance(kind, mi.StructType) else None


def _suffix(kind: mi.Type) -> str:
    if isinstance(kind, mi.UnionType):
        found = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        return _suffix(found[0]) if len(found) == 1 else ""
    return "[]" if isinstance(kind, mi.ListType) else ""


def sections(concise: bool = False) -> list[Section]:
    """Every Struct, depth first from the file root, with all the paths it appears at. With
    `concise`, the concise format's own Structs (the reference's are documented once)."""
    order: list[type[msgspec.Struct]] = []
    infos: dict[type[msgspec.Struct], mi.StructType] = {}
    paths: dict[type[msgspec.Struct], list[str]] = {}

    def visit(info: mi.StructType, path: str) -> None:  # the Structs have no cycles
        if concise and info.cls.__module__ != cc.__name__:
            return
        if info.cls not in infos:
            infos[info.cls] = info
            order.append(info.cls)
        paths.setdefault(info.cls, []).append(path)
        for field in info.fields:
            inner = _struct_in(field.type)
            if inner is not None:
                visit(inner, f"{path}.{field.encode_name}{_suffix(field.type)}".lstrip("."))

    roots = _CONCISE_ROOTS if concise else _REFERENCE_ROOTS
    for cls, path in roots:
        root = mi.type_info(cls)
        assert isinstance(root, mi.StructType)
        visit(root, path)
    return [Section(cls, infos[cls], tuple(paths[cls]), concise) for cls in order]


# Sections reached through a map (`stamps.users.<name>`) are roots of their own.
_REFERENCE_ROOTS: tuple[tuple[type[msgspec.Struct], str], ...] = (
    (NavigatorFile, ""), (PlacementSpec, "stamps.users.*"))
_CONCISE_ROOTS: tuple[tuple[type[msgspec.Struct], str], ...] = (
    (cc.ConciseFile, ""), (cc.StaticConcise, "static"), (cc.ProxyConcise, "proxies.*"),
    (cc.ReplayConcise, "replay.*"), (cc.PlacementConcise, "placement.*"))


def _type_text(kind: mi.Type, links: dict[type[msgspec.Struct], Section]) -> str:
    if isinstance(kind, mi.UnionType):
        found = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        return " or ".join(_type_text(t, links) for t in found)
    if isinstance(kind, mi.StructType):
        section = links[kind.cls]
        return f"[section](#{section.anchor})"
    if isinstance(kind, mi.ListType):
        return f"list of {_type_text(kind.item_type, links)}"
    if isinstance(kind, mi.DictType):
        return f"map of {_type_text(kind.value_type, links)}"
    names = {mi.StrType: "string", mi.BoolType: "boolean", mi.IntType: "integer"}
    return names.get(type(kind), "any")


def _default_text(field: mi.Field) -> str:
    if field.required:
        return "**required**"
    if field.default_factory is not msgspec.NODEFAULT:
        made = field.default_factory()
        return "" if isinstance(made, msgspec.Struct) else f"`{json.dumps(made)}`"
    if field.default is None:
        return "unset"
    return f"`{json.dumps(field.default)}`"


def _rows(section: Section, links: dict[type[msgspec.Struct], Section]) -> Iterator[str]:
    yield "| key | type | default | meaning |"
    yield "|---|---|---|---|"
    for field in section.info.fields:
        text = FIELDS.get(f"{section.struct.__name__}.{field.encode_name}", "")
        text = text.replace("|", "\\|")
        yield (f"| `{field.encode_name}` | {_type_text(field.type, links)} | "
               f"{_default_text(field)} | {text} |")


INTRO = """\
<!-- Generated from navigator/config/schema.py and navigator/config/keydocs.py by
     `python -m navigator.config.docs`; edit those, not this file. -->
# Configuration reference

Every key navigator reads from its YAML file, section by section, in both formats: the
concise format (a file with `version: 2`, described in [concise.md](concise.md); its own keys
are at the end of this page, and its other sections are the reference format's, below) and
the reference Navigator's format ([compatibility.md](compatibility.md): existing files load
unchanged; keys marked *Extension* are navigator's own; [migration.md](migration.md) lists
the keys that behave differently). Both load into the same runtime configuration.

Conventions:

- Every key is optional unless marked **required**; an empty value (`key:`) keeps the
  default. Unknown keys are accepted and reported as warnings by `navigator check`.
- A default of `""` means "not set": the key's text says what applies then.
- *Durations* use Go syntax (`500ms`, `90s`, `10m`, `1h30m`); *sizes* are bytes with an
  optional `K`, `M`, `G` suffix (`64K`, `512M`).
- Words such as `off`, `yes` or `1:30` stay text where a key is a string (`realm: off`);
  boolean keys take `true`/`false` and also `yes`/`no`/`on`/`off`.
- Editors can validate files with the JSON Schema printed by `navigator schema` (for the
  YAML language server: `# yaml-language-server: $schema=navigator.schema.json`).
"""


def _heading(section: Section) -> str:
    if section.concise:
        return f"Concise `{section.paths[0]}`" if section.paths[0] else "Concise file"
    return section.title.capitalize() if section.shared else f"`{section.title}`"


def reference_markdown() -> str:
    """docs/configuration.md."""
    found = sections()
    concise = sections(concise=True)
    links = {section.struct: section for section in (*found, *concise)}
    out = [INTRO, "## Sections", ""]
    out += [f"- [{_heading(s)}](#{s.anchor})" for s in found]
    out += ["", "The concise format (`version: 2`, [concise.md](concise.md)):", ""]
    out += [f"- [{_heading(s)}](#{s.anchor})" for s in concise]
    for section in (*found, *concise):
        out += ["", f'<a id="{section.anchor}"></a>', "", f"## {_heading(section)}", ""]
        intro = SECTIONS.get(section.struct.__name__, "")
        if intro:
            out += [intro, ""]
        if section.shared:
            places = ", ".join(f"`{path}`" for path in section.paths)
            out += [f"Used at {places}.", ""]
        out += list(_rows(section, links))
    return "\n".join(out) + "\n"


def missing_texts() -> list[str]:
    """Keys of the Structs without a text in `keydocs`, and texts for keys that are gone."""
    every = [*sections(), *sections(concise=True)]
    wanted = {f"{s.struct.__name__}.{f.encode_name}" for s in every for f in s.info.fields}
    structs = {s.struct.__name__ for s in every}
    return sorted((wanted - set(FIELDS)) | (set(FIELDS) - wanted)
                  | (structs ^ set(SECTIONS)))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m navigator.config.docs [--check] [PATH]`: (re)write or verify the reference."""
    parser = argparse.ArgumentParser(prog="python -m navigator.docs")
    parser.add_argument("path", nargs="?", default=str(REFERENCE))
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the file differs from what would be written")
    options = parser.parse_args(argv)
    path = Path(options.path)
    text = reference_markdown()
    if options.check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run `python -m navigator.config.docs`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
