"""Go (RE2) regular expressions and replacement templates, translated for Python's `re`.

Room: config (PURE). The reference's YAML carries regexes in Go's dialect and replacements in
Go's `Regexp.Expand` syntax. `translate_regex` rewrites a Go pattern into an equivalent Python
pattern; `compile_go_regex` compiles it; `translate_replacement` turns `$1`/`${name}`/`$$` into
a Python `re.sub` template (`\\g<1>`), resolved against the compiled pattern's groups.

Invariants:
- meaning follows Go, not Python: `\\d \\s \\w \\b` are ASCII-only, `\\z` is end of text,
  `(?U)` swaps greediness, `(?i)` in mid-pattern applies to the rest of its group, octal
  escapes never become backreferences, `x{,5}` is literal text;
- anything Go rejects that Python would accept with another meaning (lookarounds,
  backreferences, possessive quantifiers, `\\Z`) raises `RegexSyntaxError`, as do `\\p{Script}`
  classes Python cannot express;
- literal patterns translate to themselves (`^/t1$` stays `^/t1$`), which keeps the rule
  list's exact-match fast path working;
- known difference kept on purpose: Python's `$` also matches before a final "\\n".

Must not touch: I/O, environment, module-level mutable state.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable

MAX_CODEPOINT = 0x10FFFF
Range = tuple[int, int]

_DIGIT: tuple[Range, ...] = ((0x30, 0x39),)
_SPACE: tuple[Range, ...] = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))
_WORD: tuple[Range, ...] = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_PERL: dict[str, tuple[Range, ...]] = {"d": _DIGIT, "s": _SPACE, "w": _WORD}
_POSIX: dict[str, tuple[Range, ...]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_CATEGORIES = frozenset({
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn",
    "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk",
    "Sm", "So", "Z", "Zl", "Zp", "Zs"})
_SIMPLE_ESCAPES = {"a": 0x07, "f": 0x0C, "t": 0x09, "n": 0x0A, "r": 0x0D, "v": 0x0B}
_REPEAT = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
_FLAGS = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])")
_GROUP_NAME = re.compile(r"\(\?P?<([A-Za-z0-9_]+)>")
_HEX = re.compile(r"\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2})")
_WORD_BOUNDARY = {"b": r"(?a:\b)", "B": r"(?a:\B)"}
_MAX_REPEAT = 1000


class RegexSyntaxError(ValueError):
    """A Go pattern that is invalid, or valid in Go but not expressible in Python."""


# --- character classes -----------------------------------------------------------------------
def _normalise(ranges: Iterable[Range]) -> list[Range]:
    merged: list[Range] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Iterable[Range]) -> list[Range]:
    result: list[Range] = []
    next_start = 0
    for lo, hi in _normalise(ranges):
        if lo > next_start:
            result.append((next_start, lo - 1))
        next_start = hi + 1
    if next_start <= MAX_CODEPOINT:
        result.append((next_start, MAX_CODEPOINT))
    return result


def _category_ranges(name: str) -> list[Range]:
    """Code point ranges of a Unicode general category (one letter = the whole group)."""
    if name == "Any":
        return [(0, MAX_CODEPOINT)]
    if name not in _CATEGORIES:
        raise RegexSyntaxError(
            f"Unicode class \\p{{{name}}} is not supported (only general categories such as "
            "L, Lu, N, P are; scripts like Greek are not)")
    ranges: list[Range] = []
    start = -1
    width = len(name)
    category = unicodedata.category
    for code in range(MAX_CODEPOINT + 1):
        found = category(chr(code))
        if found[:width] == name and found != "Cn":
            if start < 0:
                start = code
        elif start >= 0:
            ranges.append((start, code - 1))
            start = -1
    if start >= 0:
        ranges.append((start, MAX_CODEPOINT))
    return ranges


def _char(code: int) -> str:
    if code < 0x80 and chr(code).isalnum():
        return chr(code)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _class_text(ranges: Iterable[Range], negate: bool = False) -> str:
    items = _normalise(ranges)
    if not items:  # matches nothing, as Go's empty class does
        items, negate = [(0, MAX_CODEPOINT)], not negate
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in items)
    return f"[{'^' if negate else ''}{body}]"


class _Translator:
    """One left-to-right pass over a Go pattern, writing the Python pattern."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.out: list[str] = []
        # One frame per open group: [ungreedy, reopen-prefixes of mid-group flag scopes].
        self.frames: list[tuple[bool, list[str]]] = [(False, [])]

    def fail(self, reason: str) -> RegexSyntaxError:
        return RegexSyntaxError(f"{reason} at offset {self.pos} in {self.src!r}")

    def run(self) -> str:
        src = self.src
        while self.pos < len(src):
            ch = src[self.pos]
            if ch == "\\":
                self.out.append(self.escape())
            elif ch == "[":
                self.out.append(self.char_class())
            elif ch == "(":
                self.open_group()
            elif ch == ")":
                self.close_group()
            elif ch == "|":
                scopes = self.frames[-1][1]
                self.out.append(")" * len(scopes) + "|" + "".join(scopes))
                self.pos += 1
            elif ch in "*+?":
                self.pos += 1
                self.quantifier(ch)
            elif ch == "{":
                match = _REPEAT.match(src, self.pos)
                if match is None:
                    self.out.append("\\{")
                    self.pos += 1
                else:
                    for number in (match.group(1), match.group(3)):
                        if number and int(number) > _MAX_REPEAT:
                            raise self.fail(f"repeat count over {_MAX_REPEAT}")
                    self.pos = match.end()
                    self.quantifier(match.group(0))
            elif ch == "}":
                self.out.append("\\}")
                self.pos += 1
            else:
                self.out.append(ch)
                self.pos += 1
        if len(self.frames) > 1:
            raise self.fail("missing closing )")
        self.out.append(")" * len(self.frames[0][1]))
        return "".join(self.out)

    def quantifier(self, text: str) -> None:
        lazy = self.src.startswith("?", self.pos)
        if lazy:
            self.pos += 1
        if self.pos < len(self.src) and (self.src[self.pos] in "*+?"
                                         or _REPEAT.match(self.src, self.pos)):
            raise self.fail("invalid nested repetition operator")
        if lazy != self.frames[-1][0]:  # (?U) swaps the meaning of the trailing "?"
            text += "?"
        self.out.append(text)

    def open_group(self) -> None:
        src, pos = self.src, self.pos
        ungreedy = self.frames[-1][0]
        if not src.startswith("(?", pos):
            self.out.append("(")
            self.pos += 1
            self.frames.append((ungreedy, []))
            return
        named = _GROUP_NAME.match(src, pos)
        if named is not None:
            self.out.append(f"(?P<{named.group(1)}>")
            self.pos = named.end()
            self.frames.append((ungreedy, []))
            return
        flags = _FLAGS.match(src, pos)
        if flags is None or (not flags.group(1) and not flags.group(2)
                             and flags.group(0) != "(?:"):
            raise self.fail("unsupported group syntax (Go RE2 has no lookarounds, "
                            "backreferences, comments or atomic groups)")
        on, off = flags.group(1), flags.group(2) or ""
        if flags.group(2) is not None and not off:
            raise self.fail("missing flags after '-'")
        if "U" in on:
            ungreedy = True
        if "U" in off:
            ungreedy = False
        on, off = on.replace("U", ""), off.replace("U", "")
        prefix = f"(?{on}{'-' + off if off else ''}:" if on or off else "(?:"
        self.pos = flags.end()
        if flags.group(3) == ":":
            self.out.append(prefix)
            self.frames.append((ungreedy, []))
        else:  # "(?i)": applies to the rest of the current group
            scopes = self.frames[-1][1]
            if on or off:
                scopes.append(prefix)
                self.out.append(prefix)
            self.frames[-1] = (ungreedy, scopes)

    def close_group(self) -> None:
        if len(self.frames) == 1:
            raise self.fail("unexpected )")
        _, scopes = self.frames.pop()
        self.out.append(")" * len(scopes) + ")")
        self.pos += 1

    # --- escapes ---
    def escape(self) -> str:
        src = self.src
        if self.pos + 1 >= len(src):
            raise self.fail("trailing backslash")
        letter = src[self.pos + 1]
        if letter == "Q":
            end = src.find("\\E", self.pos + 2)
            literal = src[self.pos + 2:] if end < 0 else src[self.pos + 2:end]
            self.pos = len(src) if end < 0 else end + 2
            return "".join(re.escape(ch) if not ch.isalnum() else ch for ch in literal)
        if letter in "AzbB":
            self.pos += 2
            return {"A": "\\A", "z": "\\Z"}.get(letter) or _WORD_BOUNDARY[letter]
        ranges = self.class_escape()
        if ranges is not None:
            return _class_text(ranges)
        if letter.isascii() and not letter.isalnum() and letter.isprintable():
            self.pos += 2
            return "\\" + letter  # escaped punctuation: Python reads it the same way
        return _char(self.char_escape())

    def class_escape(self) -> list[Range] | None:
        """`\\d \\s \\w \\pL \\p{Lu} \\P{..} \\p{^..}` and negations, as ranges; else None."""
        src = self.src
        letter = src[self.pos + 1]
        if letter.lower() in _PERL:
            self.pos += 2
            ranges = list(_PERL[letter.lower()])
            return _complement(ranges) if letter.isupper() else ranges
        if letter not in "pP":
            return None
        negate = letter == "P"
        if src.startswith("{", self.pos + 2):
            end = src.find("}", self.pos + 3)
            if end < 0:
                raise self.fail("missing } in Unicode class")
            name = src[self.pos + 3:end]
            self.pos = end + 1
        else:
            if self.pos + 2 >= len(src):
                raise self.fail("missing Unicode class name")
            name = src[self.pos + 2]
            self.pos += 3
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        ranges = _category_ranges(name)
        return _complement(ranges) if negate else ranges

    def char_escape(self) -> int:
        """One escaped character as a code point (Go's escapes, octal and hex forms)."""
        src = self.src
        letter = src[self.pos + 1]
        if letter in _SIMPLE_ESCAPES:
            self.pos += 2
            return _SIMPLE_ESCAPES[letter]
        if letter == "x":
            match = _HEX.match(src, self.pos + 2)
            if match is None:
                raise self.fail("invalid \\x escape")
            code = int(match.group(1) or match.group(2), 16)
            if code > MAX_CODEPOINT:
                raise self.fail("\\x escape out of range")
            self.pos = match.end()
            return code
        if letter in "01234567":
            digits = re.match(r"[0-7]{1,3}", src[self.pos + 1:self.pos + 4])
            assert digits is not None
            text = digits.group(0)
            if letter != "0" and len(text) == 1:
                raise self.fail("backreferences are not supported by Go RE2")
            self.pos += 1 + len(text)
            return int(text, 8)
        if letter.isascii() and not letter.isalnum() and letter.isprintable():
            self.pos += 2
            return ord(letter)
        raise self.fail(f"invalid escape \\{letter}")

    # --- bracket classes ---
    def char_class(self) -> str:
        src = self.src
        self.pos += 1
        negate = src.startswith("^", self.pos)
        if negate:
            self.pos += 1
        ranges: list[Range] = []
        first = True
        while True:
            if self.pos >= len(src):
                raise self.fail("missing closing ]")
            ch = src[self.pos]
            if ch == "]" and not first:
                self.pos += 1
                return _class_text(ranges, negate)
            first = False
            if ch == "[" and src.startswith("[:", self.pos):
                end = src.find(":]", self.pos + 2)
                if end >= 0:
                    name = src[self.pos + 2:end]
                    posix_negate = name.startswith("^")
                    name = name.lstrip("^")
                    if name not in _POSIX:
                        raise self.fail(f"unknown POSIX class [:{name}:]")
                    items = list(_POSIX[name])
                    ranges.extend(_complement(items) if posix_negate else items)
                    self.pos = end + 2
                    continue
            if ch == "\\" and self.pos + 1 < len(src):
                found = self.class_escape()
                if found is not None:
                    ranges.extend(found)
                    continue
            lo = self.class_char()
            if (src.startswith("-", self.pos) and self.pos + 1 < len(src)
                    and src[self.pos + 1] != "]"):
                self.pos += 1
                hi = self.class_char()
                if hi < lo:
                    raise self.fail("invalid character class range")
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))

    def class_char(self) -> int:
        src = self.src
        if src[self.pos] == "\\":
            if self.pos + 1 >= len(src):
                raise self.fail("trailing backslash")
            return self.char_escape()
        self.pos += 1
        return ord(src[self.pos - 1])


def translate_regex(source: str) -> str:
    """The Python spelling of the Go (RE2) pattern `source`."""
    return _Translator(source).run()


def compile_go_regex(source: str) -> re.Pattern[str]:
    """Translate and compile; every failure (also Python warnings) is a RegexSyntaxError."""
    translated = translate_regex(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(translated)
    except (re.error, Warning) as exc:
        raise RegexSyntaxError(f"invalid regular expression {source!r}: {exc}") from exc


# --- replacement templates -----------------------------------------------------------------
def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


def _group_index(name: str, pattern: re.Pattern[str]) -> int | None:
    """Go's lookup: a decimal name without a leading zero is a number, else a group name."""
    if name.isascii() and name.isdigit() and (name == "0" or name[0] != "0") and len(name) < 9:
        number = int(name)
        return number if number <= pattern.groups else None
    return pattern.groupindex.get(name)


def translate_replacement(template: str, pattern: re.Pattern[str]) -> str:
    """A Python `re.sub` template for Go's `Expand` syntax, against `pattern`'s groups.

    `$1`, `${1}`, `$name`, `${name}`, `$$`; a bare `$name` takes the longest run of letters,
    digits and `_` (so `$1x` names a group `1x`); unknown or unmatched groups expand to
    nothing; a malformed reference (`$`, `${`, `${x`) is literal text.
    """
    out: list[str] = []
    pos = 0
    length = len(template)
    while True:
        dollar = template.find("$", pos)
        if dollar < 0:
            out.append(template[pos:].replace("\\", "\\\\"))
            return "".join(out)
        out.append(template[pos:dollar].replace("\\", "\\\\"))
        pos = dollar + 1
        if pos < length and template[pos] == "$":
            out.append("$")
            pos += 1
            continue
        brace = pos < length and template[pos] == "{"
        start = pos + 1 if brace else pos
        end = start
        while end < length and _is_name_char(template[end]):
            end += 1
        if end == start or (brace and (end >= length or template[end] != "}")):
            out.append("$")  # malformed: the dollar is literal text
            continue
        index = _group_index(template[start:end], pattern)
        if index is not None:
            out.append(f"\\g<{index}>")
        pos = end + 1 if brace else end
