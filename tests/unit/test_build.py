"""navigator.build: which build runs, and a stale in-place compiled build is noticed."""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

from navigator.build import build_kind, compiled_modules, stale_extensions

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))


def test_the_build_kind_matches_the_loaded_modules() -> None:
    import navigator.http.connection as connection

    compiled = not (connection.__file__ or "").endswith(".py")
    assert build_kind() == ("compiled" if compiled else "pure")


def test_a_source_edited_after_the_shared_library_is_stale(tmp_path: Path) -> None:
    touch(tmp_path / f"_native__mypyc{SUFFIX}", 100.0)
    touch(tmp_path / "http" / f"wire{SUFFIX}", 100.0)  # a shim: older than its library is fine
    touch(tmp_path / "http" / "wire.py", 50.0)
    touch(tmp_path / "web" / f"rules{SUFFIX}", 100.0)
    touch(tmp_path / "web" / "rules.py", 150.0)  # edited after the build
    touch(tmp_path / "web" / "auth.py", 150.0)  # not compiled: never stale
    assert len(compiled_modules(tmp_path)) == 3
    assert stale_extensions(tmp_path) == [tmp_path / "web" / "rules.py"]


def test_a_pure_tree_has_nothing_stale(tmp_path: Path) -> None:
    touch(tmp_path / "http" / "wire.py", 150.0)
    assert compiled_modules(tmp_path) == []
    assert stale_extensions(tmp_path) == []
