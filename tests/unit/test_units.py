"""Durations (Go syntax plus d/w/y) and sizes (1024-based)."""

from __future__ import annotations

import pytest

from navigator.config.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0),
    ("-0", 0.0),
    ("30s", 30.0),
    ("1h30m", 5400.0),
    ("500ms", 0.5),
    ("1.5h", 5400.0),
    (".5s", 0.5),
    ("5.s", 5.0),
    ("1m0.5s", 60.5),
    ("2ns", 2e-9),
    ("3us", 3e-6),
    ("3µs", 3e-6),
    ("3μs", 3e-6),
    ("1h1m1s1ms", 3661.001),
    ("-2s", -2.0),
    ("+3s", 3.0),
    ("7d", 7 * 86400.0),
    ("1.5d", 1.5 * 86400.0),
    ("2w", 14 * 86400.0),
    ("1y", 365 * 86400.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "", "10", "s", "1x", "1 s", " 1s", "-", "+", "1.2.3s", ".s", "1d12h", "12h1d", "d", "1S",
    "1H", "one second", "1e3s",
])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["7d", "1w", "1y"])
def test_go_form_only_rejects_extended_units(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text, extended=False)
    assert parse_duration(text) > 0


def test_missing_unit_is_named() -> None:
    with pytest.raises(ValueError, match="missing unit"):
        parse_duration("10")


@pytest.mark.parametrize(("text", "size"), [
    ("512", 512),
    ("0", 0),
    ("100B", 100),
    ("10K", 10 * 1024),
    ("10k", 10 * 1024),
    ("10KB", 10 * 1024),
    ("10M", 10 * 1024**2),
    ("10MiB", 10 * 1024**2),
    ("10 mib", 10 * 1024**2),
    ("1.5G", int(1.5 * 1024**3)),
    ("2gb", 2 * 1024**3),
    (" 1 GiB ", 1024**3),
    ("1T", 1024**4),
    (".5M", 512 * 1024),
])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "10X", "1iB", "-5M", "10 MB extra", "1P", "1,5G",
                                  "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.5, "500ms"), (90, "1m30s"), (600, "10m"), (86400 + 1, "1d1s"), (1.5, "1.5s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [
    (512, "512"), (10 * 1024**2, "10M"), (1024**3, "1G"), (1536, "1536"),
])
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
