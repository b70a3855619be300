"""Snapshot: everything one request reads, built once per config and never changed.

Room: snapshot (load-time I/O only). `build_snapshot` reads the htpasswd file and the
maintenance page once and builds the route table; the server swaps one reference on reload, so
a request that read the snapshot keeps a consistent view even if a reload happens meanwhile.

Invariants:
- a Snapshot is frozen; its `auth` object only refreshes its own user table when the file
  changed (the server's once-a-second sweep asks it), which is the same users a reload
  would read;
- a failure names the config key: `SnapshotError("auth.htpasswd: cannot read /x: No such file
  or directory")`; SnapshotError is a ValueError so callers catching ValueError reject the
  config as a whole;
- an unreadable maintenance page is not an error: the built-in page (auto-refreshing) is used.

Must not touch: sockets, asyncio, os.environ, module-level mutable state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from navigator.config.runtime import Config
from navigator.web.auth import Htpasswd, everything_public
from navigator.web.decision import Respond
from navigator.web.routing import RouteTable

log = logging.getLogger("navigator.snapshot")

MAINTENANCE_HEADERS = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-cache, no-store, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("Retry-After", "5"),  # RFC 9110 §10.2.3: as the built-in page's refresh
)

BUILTIN_MAINTENANCE_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta http-equiv="refresh" content="5">
<title>Service Temporarily Unavailable</title>
<style>
body { font-family: system-ui, sans-serif; text-align: center; margin-top: 50px; }
h1 { color: #d73502; }
p { color: #666; line-height: 1.6; }
</style>
</head>
<body>
<h1>Service Temporarily Unavailable</h1>
<p>The service is starting or under maintenance. This page will refresh automatically.</p>
</body>
</html>
"""


class SnapshotError(ValueError):
    """A config that resolved but cannot be served (unreadable htpasswd file, ...)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: Config
    routes: RouteTable
    auth: Htpasswd | None
    maintenance_body: bytes
    maintenance: Respond


def _maintenance_page_path(config: Config) -> Path | None:
    if config.maintenance.page is not None:
        return config.maintenance.page
    if config.static is not None:
        return config.static.public_dir / "503.html"
    return None


def _read_maintenance_page(config: Config) -> bytes:
    page = _maintenance_page_path(config)
    if page is None:
        return BUILTIN_MAINTENANCE_PAGE
    try:
        return page.read_bytes()
    except OSError as exc:
        level = logging.WARNING if config.maintenance.page is not None else logging.DEBUG
        log.log(level, "maintenance page %s unreadable (%s): using the built-in page", page,
                exc.strerror)
        return BUILTIN_MAINTENANCE_PAGE


def _load_auth(config: Config, previous: Snapshot | None) -> Htpasswd | None:
    settings = config.auth
    if not settings.enabled or settings.htpasswd is None:
        return None
    try:
        return Htpasswd.load(settings.htpasswd)
    except OSError as exc:
        if previous is not None and previous.auth is not None:
            # Section 14.3: on reload a failed re-read keeps the previous user table.
            log.error("auth.htpasswd: cannot read %s: %s; keeping the previous users",
                      settings.htpasswd, exc.strerror)
            return previous.auth
        raise SnapshotError(
            f"auth.htpasswd: cannot read {settings.htpasswd}: {exc.strerror or exc}") from exc


def snapshot_warnings(snapshot: Snapshot) -> tuple[str, ...]:
    """Problems only the built snapshot can see (`navigator check` and the start-up log
    show them beside `Config.warnings`): auth that protects nothing."""
    config = snapshot.config
    return everything_public(config.auth, snapshot.routes.public,
                             [tenant.path for tenant in config.tenants
                              if not tenant.helper_route])


def build_snapshot(config: Config, previous: Snapshot | None = None) -> Snapshot:
    """Everything requests need for `config`; `previous` lets a reload keep old htpasswd data."""
    body = _read_maintenance_page(config)
    return Snapshot(
        config=config,
        routes=RouteTable.build(config),
        auth=_load_auth(config, previous),
        maintenance_body=body,
        maintenance=Respond(503, MAINTENANCE_HEADERS, body, "maintenance"),
    )
