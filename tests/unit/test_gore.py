"""Go (RE2) patterns and Go replacement templates, translated for Python's `re`."""

from __future__ import annotations

import re

import pytest

from navigator.config.goregex import (
    RegexSyntaxError,
    compile_go_regex,
    translate_regex,
    translate_replacement,
)


@pytest.mark.parametrize("pattern", [
    "^/t1$", "^/showcase/2025/boston$", r"^/foo\.html$", "^/(sam|sally)/?$", "/assets/.*",
    "(?i:abc)", "a+?", "[abc]",
])
def test_plain_patterns_translate_to_an_equivalent_python_pattern(pattern: str) -> None:
    translated = translate_regex(pattern)
    if "[" not in pattern:
        assert translated == pattern  # keeps the rule list's exact-literal fast path
    re.compile(translated)


@pytest.mark.parametrize(("pattern", "subject", "expected"), [
    (r"^\d+$", "123", "123"),
    (r"^\d+$", "\u0661\u0662", None),  # Go's \d is ASCII only
    (r"\w+", "héllo", "h"),
    (r"^\s$", "\v", None),  # Go's \s has no vertical tab
    (r"^\s$", "\t", "\t"),
    (r"^[[:alpha:]]+\z", "abc", "abc"),
    (r"^[[:alpha:]]+\z", "abc\n", None),  # \z is the very end
    (r"[[:^digit:]]+", "12ab3", "ab"),
    (r"[^[:space:][:punct:]]+", "  a-b ", "a"),
    (r"[[:xdigit:]]+", "xyzBEEF", "BEEF"),
    ("(?i)abc", "xABCx", "ABC"),
    ("a(?i)b|c", "C", "C"),  # the flag reaches the next alternative, as in Go
    ("a(?i)b|c", "aB", "aB"),
    ("a(?i)b|c", "AB", None),
    ("(?U)a+", "aaa", "a"),  # ungreedy swaps the meaning of ?
    ("(?U)a+?", "aaa", "aaa"),
    ("(?s:a.b)", "a\nb", "a\nb"),
    ("a.b", "a\nb", None),
    ("x{,5}", "x{,5}", "x{,5}"),  # not a repetition in Go
    ("a{2,3}", "aaaa", "aaa"),
    ("a{2,}?", "aaaa", "aa"),
    (r"\pL+", "héllo1", "héllo"),
    (r"\p{Lu}+", "abCDe", "CD"),
    (r"\PL+", "ab12c", "12"),
    (r"\p{^L}+", "ab12c", "12"),
    (r"[\p{N}x]+", "ax\u06612y", "x\u06612"),
    (r"\x{263a}", "I ☺ it", "☺"),
    (r"\x41\101", "AA", "AA"),
    (r"a\012b", "a\nb", "a\nb"),  # octal, not a backreference
    (r"\Qa.b\E", "axb a.b", "a.b"),
    (r"\bfoo\b", "éfooé", "foo"),  # ASCII word boundaries
    (r"[]a]+", "x]a]", "]a]"),
    (r"[a-]+", "x-a-", "-a-"),
    (r"[a\-z]+", "b-az", "-az"),
    (r"[\d.]+", "v1.25", "1.25"),
    (r"(?P<year>\d{4})/(?<site>\w+)", "/2025/boston", "2025/boston"),
    (r"^/a\/b$", "/a/b", "/a/b"),
    ("[[]+", "a[[", "[["),
    (r"\A/x", "/x", "/x"),
])
def test_go_semantics(pattern: str, subject: str, expected: str | None) -> None:
    match = compile_go_regex(pattern).search(subject)
    assert (match.group(0) if match else None) == expected


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(?=x)", "unsupported group"),
    ("(?!x)", "unsupported group"),
    ("(?<=x)a", "unsupported group"),
    ("(?P=n)", "unsupported group"),
    ("(?#comment)", "unsupported group"),
    (r"(a)\1", "backreference"),
    ("a*+", "nested repetition"),
    ("a**", "nested repetition"),
    ("a{2}{3}", "nested repetition"),
    (r"\Z", "invalid escape"),
    (r"\e", "invalid escape"),
    ("\\", "trailing backslash"),
    (r"\p{Greek}", "not supported"),
    ("(abc", "missing closing"),
    ("abc)", "unexpected"),
    ("[abc", "missing closing"),
    ("[[:foo:]]", "unknown POSIX class"),
    ("x{1001}", "repeat count"),
    ("[z-a]", "invalid character class range"),
    ("(?)", "unsupported group"),
    ("*a", "invalid regular expression"),
])
def test_rejected_patterns(pattern: str, reason: str) -> None:
    with pytest.raises(RegexSyntaxError, match=reason):
        compile_go_regex(pattern)


_GROUPS = r"^/(\w+)/(?P<id>\d+)"


@pytest.mark.parametrize(("template", "subject", "expected"), [
    ("/$1/list/", "/sam/12", "/sam/list/"),
    ("$1-$id", "/sam/12/x", "sam-12/x"),
    ("${1}x", "/sam/12", "samx"),
    ("$1x", "/sam/12", ""),  # `$1x` names a group "1x": empty
    ("${id}", "/sam/12", "12"),
    ("$$1", "/sam/12", "$1"),
    ("cost: $", "/sam/12", "cost: $"),  # a lone dollar is literal
    ("${", "/sam/12", "${"),
    ("${1", "/sam/12", "${1"),
    ("${}", "/sam/12", "${}"),
    ("$9", "/sam/12", ""),  # out of range: empty
    ("$nope", "/sam/12", ""),  # unknown name: empty
    ("$0!", "/sam/12", "/sam/12!"),
    ("$01", "/sam/12", ""),  # a leading zero makes it a name
    ("a\\b$1", "/sam/12", "a\\bsam"),  # backslashes are literal text
    ("\\g<1>", "/sam/12", "\\g<1>"),
    ("$id.html", "/sam/12", "12.html"),  # a bare name stops at `.`
])
def test_replacement(template: str, subject: str, expected: str) -> None:
    pattern = compile_go_regex(_GROUPS)
    assert pattern.sub(translate_replacement(template, pattern), subject) == expected


def test_replacement_uses_name_then_dot() -> None:
    pattern = compile_go_regex(r"(?P<n>\w+)\.txt")
    assert pattern.sub(translate_replacement("$n.html", pattern), "a.txt") == "a.html"


def test_every_match_is_replaced() -> None:
    pattern = compile_go_regex("o")
    assert pattern.sub(translate_replacement("0", pattern), "/foo/boo") == "/f00/b00"


def test_unmatched_optional_group_is_empty() -> None:
    pattern = compile_go_regex("^/a(/b)?$")
    assert pattern.sub(translate_replacement("[$1]", pattern), "/a") == "[]"
