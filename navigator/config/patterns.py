"""Path patterns of the concise format: globs where the reference needs regexes.

Room: config (PURE: strings in, strings out). `to_regex` turns a concise pattern into the
Go-syntax regex the reference format would hold, so both formats resolve through the same
`Context.regex`; `to_glob` is its inverse for `navigator convert`.

A pattern is one of:
- a regex, when it starts with `^` (kept as written) or `~` (the rest, unanchored: search
  semantics, as a reference regex without `^`);
- a glob otherwise, matched against the whole path: `*` is any text within one segment,
  `**` any text across segments, `{a,b}` one of the alternatives; each of them is a capture
  group, numbered from 1 for `$1` in a redirect or rewrite target; any other character is
  itself.

Invariants: `to_regex(to_glob(r)) == r` whenever `to_glob(r)` is not None, so converting a
reference file to the concise format and back never changes a rule; `to_regex` raises
`ValueError` with the reason (the caller names the key).
"""

from __future__ import annotations

from navigator.config.goregex import RegexSyntaxError, compile_go_regex

_SPECIAL = frozenset(".+()[]{}|^$\\*?")
_ONE_SEGMENT = "([^/]*)"
_ANY = "(.*)"


def is_regex(pattern: str) -> bool:
    return pattern.startswith(("^", "~"))


def to_regex(pattern: str) -> str:
    """The reference-format (Go) regex for a concise pattern."""
    if pattern.startswith("^"):
        return pattern
    if pattern.startswith("~"):
        return pattern[1:]
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            out.append(_ANY)
            index += 2
            continue
        if char == "*":
            out.append(_ONE_SEGMENT)
        elif char == "{":
            end = pattern.find("}", index)
            if end < 0:
                raise ValueError(f"'{{' without '}}' in the glob {pattern!r}")
            choices = pattern[index + 1:end].split(",")
            if any(set(c) & {"*", "{"} for c in choices):
                raise ValueError(f"wildcards inside {{...}} are not supported: {pattern!r}")
            out.append("(" + "|".join(_escape(c) for c in choices) + ")")
            index = end
        elif char == "}":
            raise ValueError(f"'}}' without '{{' in the glob {pattern!r}")
        else:
            out.append(_escape(char))
        index += 1
    out.append("$")
    return "".join(out)


def to_glob(regex: str) -> str | None:
    """The glob that `to_regex` turns into exactly `regex`, or None if there is none."""
    if not (regex.startswith("^") and regex.endswith("$") and not regex.endswith("\\$")):
        return None
    body = regex[1:-1]
    out = []
    index = 0
    while index < len(body):
        if body.startswith(_ANY, index):
            out.append("**")
            index += len(_ANY)
            continue
        if body.startswith(_ONE_SEGMENT, index):
            out.append("*")
            index += len(_ONE_SEGMENT)
            continue
        char = body[index]
        if char == "(":
            end = body.find(")", index)
            if end < 0:
                return None
            choices = [_unescape(c) for c in body[index + 1:end].split("|")]
            if any(c is None or set(c) & {",", "{", "}", "*"} for c in choices):
                return None
            out.append("{" + ",".join(c for c in choices if c is not None) + "}")
            index = end + 1
            continue
        if char == "\\" and index + 1 < len(body) and body[index + 1] in _SPECIAL:
            out.append(body[index + 1])
            index += 2
            continue
        if char in _SPECIAL:
            return None
        out.append(char)
        index += 1
    glob = "".join(out)
    if is_regex(glob):
        return None
    try:
        return glob if to_regex(glob) == regex else None
    except ValueError:
        return None


def written(regex: str) -> str:
    """How the concise format writes a reference regex: a glob if one fits, else the regex
    (`~` in front of one that does not start with `^`)."""
    glob = to_glob(regex)
    if glob is not None:
        return glob
    return regex if regex.startswith("^") else "~" + regex


def _escape(text: str) -> str:
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def _unescape(text: str) -> str | None:
    out = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _SPECIAL:
            out.append(text[index + 1])
            index += 2
            continue
        if char in _SPECIAL:
            return None
        out.append(char)
        index += 1
    return "".join(out)


def matches_path(pattern: str, path: str) -> bool:
    """Whether a concise pattern matches a tenant path (for the placement map, at load)."""
    try:
        return compile_go_regex(to_regex(pattern)).search(path) is not None
    except RegexSyntaxError as exc:
        raise ValueError(str(exc)) from None
