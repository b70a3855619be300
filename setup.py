"""Build navigator, compiling the request path with mypyc when it can.

The modules in COMPILED are compiled to C extensions (one shared library,
navigator/_native__mypyc) when mypyc and a C compiler are available: the same source, typed for
mypy --strict, runs about a quarter faster per proxied request. Everything else, and everything
when compiling is impossible or NAVIGATOR_PURE=1 is set, installs as plain Python; the build
says which. `navigator --version` reports the build that runs (navigator/build.py).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import setup

# The request path (docs/architecture.md, "One proxied request") and the pure modules it calls.
# Each must compile with mypyc; a module here cannot be monkeypatched (tests inject instead),
# and its classes cannot be subclassed by modules left out. The metrics registry and machine
# idle are here for their per-request accounting (2026-12-03 py-spy under wrk: ~4 % of the
# proxy's CPU ran in them as pure Python). So is http/state.py, whose ServerState is a
# plain class (as a dataclass, compiled, it crashed at import). Left out: the access log
# (mypyc drops msgspec's `rename=` on its Struct).
COMPILED = [
    "navigator/http/wire.py",
    "navigator/http/reader.py",
    "navigator/http/connection.py",
    "navigator/http/exchange.py",
    "navigator/http/client.py",
    "navigator/http/flow.py",
    "navigator/http/failure.py",
    "navigator/http/state.py",
    "navigator/proxy/upstream.py",
    "navigator/proxy/relay.py",
    "navigator/web/routing.py",
    "navigator/web/rules.py",
    "navigator/web/decision.py",
    "navigator/web/handlers.py",
    "navigator/web/snapshot.py",
    "navigator/web/bots.py",
    "navigator/web/static.py",
    "navigator/web/filecache.py",
    "navigator/ops/observer.py",
    "navigator/ops/metrics.py",
    "navigator/tenants/idle.py",
    "navigator/config/runtime.py",
]


def _why_pure() -> str | None:
    """Why this build installs plain Python, or None when it compiles."""
    if os.environ.get("NAVIGATOR_PURE", "") not in ("", "0"):
        return "NAVIGATOR_PURE is set"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler!r} not found)"
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return "mypyc is not installed"
    return None


def _ext_modules() -> list[object]:
    reason = _why_pure()
    if reason is not None:
        print(f"navigator: building pure Python ({reason})", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    print(f"navigator: compiling {len(COMPILED)} modules with mypyc", file=sys.stderr)
    return list(mypycify(COMPILED, opt_level="3", group_name="navigator._native"))


setup(ext_modules=_ext_modules())
