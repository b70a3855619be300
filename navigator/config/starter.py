"""`navigator init`: a starter concise config for the app in a directory.

Room: config. `detect` is PURE (a listing and a few file texts in, a preset and module out);
`write_starter` reads the directory and writes one new file, never over an existing one. It
never prompts: what it cannot tell, it writes as the generic preset with a comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from navigator.config.presets import PRESETS

STARTER_NAME = "navigator.yml"
_DJANGO_SETTINGS = re.compile(r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)\.settings['\"]")
_FASTAPI_APP = re.compile(r"^(\w+)\s*(?::[^=]*)?=\s*FastAPI\(", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Detected:
    preset: str
    module: str = ""  # "" = the preset's own
    why: str = ""


def detect(read: Callable[[str], str | None]) -> Detected:
    """The app's framework from its files; `read(name)` is a file's text or None."""
    if read("bin/rails") is not None or "rails" in (read("Gemfile") or ""):
        return Detected("rails", why="bin/rails or a Gemfile with rails")
    manage = read("manage.py")
    if manage is not None:
        found = _DJANGO_SETTINGS.search(manage)
        return Detected("django", f"{found.group(1)}.wsgi" if found else "", "manage.py")
    requirements = (read("requirements.txt") or "") + (read("pyproject.toml") or "")
    for name in ("main.py", "app.py", "api.py"):
        text = read(name)
        found = _FASTAPI_APP.search(text or "")
        if found:
            return Detected("fastapi", f"{name[:-3]}:{found.group(1)}", f"FastAPI() in {name}")
    if "fastapi" in requirements.lower():
        return Detected("fastapi", why="fastapi in the requirements")
    package = read("package.json")
    if package is not None:
        try:
            main = json.loads(package).get("main", "")
        except (ValueError, AttributeError):
            main = ""
        return Detected("node", main if isinstance(main, str) else "", "package.json")
    return Detected("generic", why="no Rails, Django, FastAPI or Node app found")


def starter_text(found: Detected) -> str:
    preset = PRESETS[found.preset]
    lines = [
        "# navigator starter config (navigator init): the concise format, docs/concise.md.",
        f"# Detected: {found.preset} ({found.why}). Run: navigator {STARTER_NAME}",
        "version: 2",
        "listen: 3000",
        "app:",
    ]
    if found.preset == "generic":
        lines += ["  # The command that starts one tenant; {{port}} is its port (also in $PORT).",
                  "  command: python3 -m http.server {{port}} --bind 127.0.0.1"]
    else:
        lines.append(f"  preset: {found.preset}")
        if found.module and found.module != preset.module:
            lines.append(f"  module: {found.module}")
    lines += [
        "  env:",
        "    TENANT: ${tenant}    # each tenant's variables fill ${name} here",
        "tenants:",
        "  /alpha/: {tenant: alpha}",
        "  /beta/: {tenant: beta}",
        "",
    ]
    return "\n".join(lines)


def write_starter(directory: Path) -> Path:
    """Write `navigator.yml` for the app in `directory`; FileExistsError if there is one."""
    target = directory / STARTER_NAME

    def read(name: str) -> str | None:
        try:
            return (directory / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    text = starter_text(detect(read))
    with target.open("x", encoding="utf-8") as out:
        out.write(text)
    return target
