"""Deployment stamps: where each tenant lives, and what Fly's proxy tells us about a request.

Room: PURE. `placement_rules` compiles the tenants' `region:` / `machine:` keys (our
declarative placement map) into replay rules at config load, so the request path reuses the
rule list (`rules`), which folds a run of them into one longest-prefix lookup: no per-request
scan over tenants, no regex per tenant.

Invariants:
- placement rules come longest tenant path first, so "first match" equals the tenant
  routing's "longest prefix" (a tenant nested in another one decides for its own paths);
- a placement rule without a region or machine (a nested unplaced tenant) means "here";
- a tenant with `machine:` is placed on that machine (its region, if also given, is only
  documentation); `region:` alone places it on any machine of the region;
- names that end up in `.internal` DNS names are checked here (`valid_stamp_name`).
  (`Fly-Client-IP` is read by `wire.trusted_client`, only with `server.trust_proxy`.)

Must not touch: I/O, the environment (FLY_* arrive in `Config.stamp`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from navigator.config.runtime import ReplayTarget, Rule, Tenant

_STAMP_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def valid_stamp_name(name: str) -> bool:
    """A region, app or machine id usable as one DNS label (`<region>.<app>.internal`)."""
    return bool(_STAMP_NAME.match(name))


def placement_rules(tenants: Iterable[Tenant]) -> tuple[Rule, ...]:
    """One replay rule per placed tenant, matching its path prefix; longest path first.

    A tenant without a placement that is nested in a placed one (`/sally/shared/` inside
    `/sally/`) gets a rule without a target: it lives everywhere, so its own paths stay here.
    """
    tenants = list(tenants)
    placed_paths = {t.path for t in tenants if t.region or t.machine}
    chosen = [t for t in tenants if t.path in placed_paths or _nested(t.path, placed_paths)]
    chosen.sort(key=lambda t: len(t.path), reverse=True)
    return tuple(
        Rule("replay", re.compile("^" + re.escape(tenant.path)), replay=ReplayTarget(
            region="" if tenant.machine else tenant.region, machine=tenant.machine,
            placement=tenant.path))
        for tenant in chosen)


def _nested(path: str, placed: set[str]) -> bool:
    end = len(path) - 1
    while (end := path.rfind("/", 0, end)) >= 0:
        if path[:end + 1] in placed:
            return True
    return False

