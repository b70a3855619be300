"""Session checks: which build the suite runs against, and never a stale compiled one."""

from __future__ import annotations

import pytest

from navigator.build import build_kind, stale_extensions


def pytest_report_header() -> str:
    return f"navigator build: {build_kind()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """An in-place compiled build older than its sources would test yesterday's code."""
    stale = stale_extensions()
    if stale:
        names = ", ".join(str(path) for path in stale)
        raise pytest.UsageError(f"compiled navigator is older than {names}: run `make compiled` "
                                "again, or `make pure` to test the sources")
