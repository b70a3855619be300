"""The helpers every part of config resolution shares: where relative paths start, the
environment read at load time, warnings, and value parsing that names the key it failed on.

Room: config (pure). Used by `loader` and `applications`; imports neither.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, cast

from navigator.config import runtime as rt
from navigator.config import schema as sc
from navigator.config.goregex import RegexSyntaxError, compile_go_regex
from navigator.config.schema import ConfigError, KeyPath
from navigator.config.units import format_duration, parse_duration, parse_size

Issues = list[tuple[KeyPath, str]]


class Context:
    """Per-resolve helpers: where relative paths start, FLY_*/`${NAME}` values, warnings."""

    def __init__(self, cwd: Path, environ: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.environ = environ
        self.issues: Issues = []

    def warn(self, key: KeyPath, reason: str) -> None:
        self.issues.append((key, reason))

    def path(self, text: str, base: Path | None = None) -> Path:
        return Path(os.path.normpath((base or self.cwd) / os.path.expanduser(text)))

    def duration(self, text: str, key: KeyPath, default: float | None, *,
                 extended: bool = True) -> float | None:
        """Empty → default; unparseable or negative → default and a warning."""
        if not text:
            return default
        try:
            seconds = parse_duration(text, extended=extended)
        except ValueError as exc:
            reason = str(exc)
        else:
            if seconds >= 0:
                return seconds
            reason = f"negative duration {text!r}"
        shown = "none" if default is None else format_duration(default)
        self.warn(key, f"{reason}; using the default ({shown})")
        return default

    def seconds(self, text: str, key: KeyPath, default: float, *, extended: bool = True) -> float:
        value = self.duration(text, key, default, extended=extended)
        return default if value is None else value

    def size(self, text: str, key: KeyPath) -> int | None:
        if not text:
            return None
        try:
            return parse_size(text)
        except ValueError as exc:
            raise ConfigError(str(exc), key) from None

    def regex(self, text: str, key: KeyPath) -> re.Pattern[str]:
        try:
            return compile_go_regex(text)
        except RegexSyntaxError as exc:
            raise ConfigError(str(exc), key) from None


def pairs(mapping: Mapping[str, str]) -> rt.Pairs:
    return tuple(mapping.items())



def slashed(path: str) -> str:
    path = path.strip()
    if not path.startswith("/"):
        path = "/" + path
    return path if path.endswith("/") else path + "/"


_BOT_ACTIONS = frozenset({"reject", "ignore", "static-only"})


def resolve_bots(spec: sc.BotDetectionSpec, key: KeyPath, ctx: Context) -> rt.BotDetection:
    action = spec.action or "reject"
    if action not in _BOT_ACTIONS:
        ctx.warn((*key, "action"), f"unknown action {action!r}; using 'reject'")
        action = "reject"
    return rt.BotDetection(spec.enabled,
                           cast(Literal["reject", "ignore", "static-only"], action))


def resolve_hooks(specs: Sequence[sc.HookSpec], key: KeyPath,
                  ctx: Context) -> tuple[rt.Hook, ...]:
    return tuple(rt.Hook(h.command, tuple(h.args),
                         ctx.duration(h.timeout, (*key, i, "timeout"), None), h.reload_config)
                 for i, h in enumerate(specs))


def resolve_tenant_hooks(spec: sc.TenantHooksSpec, key: KeyPath,
                         ctx: Context) -> rt.TenantHooks:
    return rt.TenantHooks(before_start=resolve_hooks(spec.before_start, (*key, "before_start"),
                                                     ctx),
                          start=resolve_hooks(spec.start, (*key, "start"), ctx),
                          stop=resolve_hooks(spec.stop, (*key, "stop"), ctx))
