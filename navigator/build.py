"""Which build runs: mypyc-compiled request path or pure Python (setup.py decides at install).

`navigator --version` prints it. An in-place compiled build (`make compiled`) goes stale when
a compiled module's source changes after the build: Python keeps loading the old extension,
so `stale_extensions` names them (the test suite refuses to run on a stale build).
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# One module of the compiled set stands for the build: setup.py compiles all or none.
_PROBE = "navigator.http.connection"


def compiled_modules(root: Path | None = None) -> list[Path]:
    """The compiled extension files next to the package's sources."""
    base = root or Path(__file__).resolve().parent
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(p for p in base.rglob("*") if p.name.endswith(suffixes))


def stale_extensions(root: Path | None = None) -> list[Path]:
    """Compiled modules whose source changed after the build (an in-place build, then an
    edit). The code lives in the one shared library (`_native__mypyc`); each module's own
    extension is a shim, so the library's time is the build's time."""
    extensions = compiled_modules(root)
    libraries = [ext.stat().st_mtime for ext in extensions if "__mypyc" in ext.name]
    built = min(libraries, default=0.0)
    stale = []
    for ext in extensions:
        source = ext.with_name(ext.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > built:
            stale.append(source)
    return stale


def build_kind() -> str:
    """'compiled' when the request path runs as mypyc extensions, else 'pure'."""
    import importlib

    module = importlib.import_module(_PROBE)
    origin = getattr(module, "__file__", "") or ""
    return "pure" if origin.endswith(".py") else "compiled"
