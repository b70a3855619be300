"""Framework presets of the concise format: what a Rails, Django, FastAPI or Node app needs
to run as one of several tenants, as data.

Room: config (PURE data). `concise_lower` fills every `app:` key the file leaves out from
the preset it names; the reference format never reads these (its Rails default stays in
`applications.tenant_argv`). The values come from the working examples in examples/ and
docs/frameworks.md: one place to change when a framework changes.

Invariants:
- `generic` is the reference format's defaults (full path, cookies as the app sets them,
  probe `/`, any HTTP answer means ready, 5 s start-up, built-in cable on) minus its Rails
  command: a generic app must name its command;
- `{module}` in a command is the preset's `module` (or `app.module`), `{{port}}` the port;
  `${prefix}` in env is the tenant's path without its last "/" (`/django/alpha`);
- the per-tenant PID file is navigator's own for every preset (the supervisor sets
  `PIDFILE=<root>/tmp/pids/<tenant name>.pid` unless the env names one; Rails and Puma read
  it), so no preset repeats it.

Must not touch: anything but these constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrefixMode = Literal["full", "strip", "script_name"]
PREFIX_MODES: tuple[PrefixMode, ...] = ("full", "strip", "script_name")


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    command: tuple[str, ...]  # () = the file must give one (generic)
    module: str = ""  # what `{module}` in the command stands for
    port_env: str = "PORT"
    health: str = "/"
    health_under_prefix: bool = False  # probe <prefix><health> (WSGI SCRIPT_NAME servers)
    ready_on_5xx: bool = True
    prefix: PrefixMode = "full"  # full path, strip it (X-Forwarded-Prefix), or SCRIPT_NAME
    scope_cookies: bool = False
    startup_timeout: str = "5s"
    env: tuple[tuple[str, str], ...] = ()
    migrate: tuple[str, ...] = ()  # before_start hook argv; () = none
    migrate_timeout: str = "2m"
    public_dir: str = "public"
    assets: str = ""  # URL prefix of fingerprinted assets: cached for a year, immutable
    cable: bool = True  # navigator's built-in pub/sub (Turbo Streams broadcasts)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("generic", ()),
    Preset(
        "rails",
        ("bin/rails", "server", "--binding", "127.0.0.1", "--port", "{{port}}"),
        health="/up", ready_on_5xx=False, scope_cookies=True, startup_timeout="30s",
        env=(("RAILS_ENV", "production"), ("RAILS_APP_SCOPE", "${prefix}")),
        migrate=("bin/rails", "db:prepare"), assets="/assets/"),
    Preset(
        "django",
        ("gunicorn", "{module}", "--bind", "127.0.0.1:{{port}}", "--workers", "2",
         "--no-control-socket"),
        module="config.wsgi", health_under_prefix=True, ready_on_5xx=False,
        prefix="script_name", scope_cookies=True, startup_timeout="15s",
        migrate=("python", "manage.py", "migrate", "--noinput"), assets="/static/",
        cable=False),
    Preset(
        "fastapi",
        ("uvicorn", "{module}", "--host", "127.0.0.1", "--port", "{{port}}",
         "--no-access-log"),
        module="main:app", ready_on_5xx=False, prefix="strip", scope_cookies=True,
        startup_timeout="10s", env=(("UVICORN_ROOT_PATH", "${prefix}"),),
        assets="/static/", cable=False),
    Preset(
        "node", ("node", "{module}"), module="server.js", ready_on_5xx=False, prefix="strip",
        scope_cookies=True, startup_timeout="10s", env=(("NODE_ENV", "production"),),
        cable=False),
)}


def preset_command(preset: Preset, module: str) -> tuple[str, ...]:
    return tuple(arg.replace("{module}", module or preset.module) for arg in preset.command)
