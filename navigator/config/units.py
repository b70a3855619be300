"""Durations and sizes as the reference's YAML spells them.

Room: config (PURE). `parse_duration` reads Go's `time.ParseDuration` syntax (plus the
reference's single-unit `d`/`w`/`y` extension); `parse_size` reads memory sizes with
1024-based units. Both raise `ValueError` with a short reason; the config room turns that
into a warning or a `ConfigError` naming the key.

Invariants: results are plain numbers (float seconds, int bytes); nothing here reads the
environment, the clock or the file system.
"""

from __future__ import annotations

import re

_DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_EXTENDED_UNITS: dict[str, float] = {"d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}

# One "<number><unit>" term of a Go duration: digits with an optional fraction, where at
# least one side of the dot has digits (Go accepts ".5s" and "5.s").
_TERM = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_PROBLEM = re.compile(r"(?:\d+\.?\d*|\.\d+)([^\d.]*)")
_EXTENDED = re.compile(r"(\d+\.?\d*|\.\d+)([dwy])")
_SIZE = re.compile(r"\s*(\d+\.?\d*|\.\d+)\s*(?:([kmgt])(i?b)?|(b))?\s*", re.IGNORECASE)
_SIZE_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_duration(text: str, *, extended: bool = True) -> float:
    """Seconds for a Go duration (`"1h30m"`, `"500ms"`, `"1.5s"`, `"0"`, `"-2s"`).

    With `extended` (the default), also one number followed by exactly one of `d`, `w`, `y`
    (`"7d"`, `"1.5w"`); no mixing (`"1d12h"` is an error), as the reference does.
    """
    if not text:
        raise ValueError("empty duration")
    body = text
    sign = 1.0
    if body[0] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    if extended:
        match = _EXTENDED.fullmatch(body)
        if match is not None:
            return sign * float(match.group(1)) * _EXTENDED_UNITS[match.group(2)]
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        if match is None:
            rest = _UNIT_PROBLEM.fullmatch(body, pos)
            if rest is None:
                raise ValueError(f"invalid duration {text!r}")
            if not rest.group(1):
                raise ValueError(f"missing unit in duration {text!r}")
            raise ValueError(f"unknown unit {rest.group(1)!r} in duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def parse_size(text: str) -> int:
    """Bytes for `"512"`, `"10M"`, `"1.5 GiB"`, `"2gb"`, `"100B"`; multiples are powers of 1024."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid size {text!r} (expected a number with K, M, G or T)")
    number = float(match.group(1))
    unit = match.group(2)
    power = _SIZE_POWERS[unit.lower()] if unit else 0
    return int(number * (1024**power))


def format_duration(seconds: float) -> str:
    """Short human form for summaries: `90` → `"1m30s"`, `0.5` → `"500ms"`."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    if whole or not parts:
        parts.append(f"{whole}s")
    return "".join(parts)


def format_size(size: int) -> str:
    """Short human form for summaries: `10485760` → `"10M"`."""
    for unit, power in (("T", 4), ("G", 3), ("M", 2), ("K", 1)):
        scale = 1024**power
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)
