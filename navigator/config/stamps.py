"""Deployment stamps: where each tenant lives, and what Fly's proxy tells us about a request.

Room: PURE. `place_users` applies `stamps.users` (one machine per user: path globs → a
machine or region) to the tenants that carry no placement of their own; `placement_rules`
compiles the tenants' `region:` / `machine:` / `prefer_instance:` keys (our declarative
placement map) into replay rules at config load, so the request path reuses the rule list
(`rules`), which folds a run of them into one longest-prefix lookup: no per-request scan over
tenants, no regex per tenant.

Invariants:
- placement rules come longest tenant path first, so "first match" equals the tenant
  routing's "longest prefix" (a tenant nested in another one decides for its own paths);
- a placement rule without a region or machine (a nested unplaced tenant) means "here";
- a tenant with `machine:` is placed on that machine (its region, if also given, is only
  documentation); else `prefer_instance:` prefers that machine (Fly may pick any other);
  `region:` alone places it on any machine of the region;
- a tenant's own placement wins over its user's; two users claiming a tenant is an error;
- names that end up in `.internal` DNS names are checked here (`valid_stamp_name`).
  (`Fly-Client-IP` is read by `wire.trusted_client`, only with `server.trust_proxy`.)

Must not touch: I/O, the environment (FLY_* arrive in `Config.stamp`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping

from navigator.config.context import slashed
from navigator.config.runtime import ReplayTarget, Rule, Tenant
from navigator.config.schema import ConfigError, KeyPath, PlacementSpec

_STAMP_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def valid_stamp_name(name: str) -> bool:
    """A region, app or machine id usable as one DNS label (`<region>.<app>.internal`)."""
    return bool(_STAMP_NAME.match(name))


def check_stamp_names(owner: object, key: KeyPath,
                      keys: tuple[str, ...] = ("region", "machine", "prefer_instance")) -> None:
    """`region`, `machine`, `prefer_instance` of a tenant or user are DNS labels."""
    for which in keys:
        value = getattr(owner, which)
        if value and not valid_stamp_name(value):
            what = "region" if which == "region" else "machine"
            raise ConfigError(f"{value!r} is not a valid Fly {what} name (letters, digits "
                              "and '-')", (*key, which))


def path_glob(pattern: str) -> re.Pattern[str]:
    """A tenant path glob: `*` and `?` stay within one path segment; a trailing "/" added."""
    text = slashed(pattern)
    parts = (("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)) for ch in text)
    return re.compile("".join(parts) + r"\Z")


def place_users(tenants: tuple[Tenant, ...], users: Mapping[str, PlacementSpec],
                warn: Callable[[KeyPath, str], None]) -> tuple[Tenant, ...]:
    """Each user's placement onto their tenants that have none of their own."""
    if not users:
        return tenants
    claims: dict[str, str] = {}
    placed = {t.path: t for t in tenants}
    for name, spec in users.items():
        key: KeyPath = ("stamps", "users", name)
        check_stamp_names(spec, key)
        if not (spec.region or spec.machine or spec.prefer_instance):
            raise ConfigError("a user needs a region, machine or prefer_instance", key)
        for index, pattern in enumerate(spec.tenants):
            glob = path_glob(pattern)
            matched = [t for t in tenants if glob.match(t.path)]
            if not matched:
                warn((*key, "tenants", index), f"{pattern!r} matches no tenant")
            for tenant in matched:
                other = claims.setdefault(tenant.path, name)
                if other != name:
                    raise ConfigError(f"tenant {tenant.path!r} is also user {other!r}'s",
                                      (*key, "tenants", index))
                if tenant.region or tenant.machine or tenant.prefer_instance:
                    continue  # its own placement wins
                placed[tenant.path] = dataclasses.replace(
                    tenant, region=spec.region, machine=spec.machine,
                    prefer_instance=spec.prefer_instance)
    return tuple(placed[t.path] for t in tenants)


def placement_rules(tenants: Iterable[Tenant]) -> tuple[Rule, ...]:
    """One replay rule per placed tenant, matching its path prefix; longest path first.

    A tenant without a placement that is nested in a placed one (`/sally/shared/` inside
    `/sally/`) gets a rule without a target: it lives everywhere, so its own paths stay here.
    """
    tenants = list(tenants)
    placed_paths = {t.path for t in tenants if t.region or t.machine or t.prefer_instance}
    chosen = [t for t in tenants if t.path in placed_paths or _nested(t.path, placed_paths)]
    chosen.sort(key=lambda t: len(t.path), reverse=True)
    return tuple(
        Rule("replay", re.compile("^" + re.escape(tenant.path)), replay=ReplayTarget(
            region="" if tenant.machine or tenant.prefer_instance else tenant.region,
            machine=tenant.machine,
            prefer_instance="" if tenant.machine else tenant.prefer_instance,
            placement=tenant.path))
        for tenant in chosen)


def _nested(path: str, placed: set[str]) -> bool:
    end = len(path) - 1
    while (end := path.rfind("/", 0, end)) >= 0:
        if path[:end + 1] in placed:
            return True
    return False

