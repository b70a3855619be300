"""Shutdown budget: how `server.limits.shutdown_timeout` is shared between the phases.

Room: PURE (config arithmetic). The platform kills navigator a fixed time after SIGTERM (Fly:
`kill_timeout`), so the whole shutdown must fit one budget by construction:

    budget = drain + server stop hooks + tenant stop hooks + tenant grace + managed grace + margin

Everything after the drain is reserved first (each stop hook at its own `timeout`, or
`server.limits.stop_hook_timeout` when it has none; tenants stop in parallel, so their
longest hook chain counts; a SIGTERM → SIGKILL grace for tenants, then one for managed
processes, each only when there are any; a small margin for killing and reaping) and in-flight
requests get what remains. When the reserve alone exceeds the budget the drain is zero and
`warnings` says so; the server still clips every phase to the budget's end.

Must not touch: files, clocks, processes, os.environ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from navigator.config.runtime import Config, Hook
from navigator.config.units import format_duration, parse_duration

DEFAULT_STOP_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL for a tenant or managed process (SupervisorPolicy)."""

EXIT_MARGIN = 1.0
"""Seconds kept for SIGKILL, reaping and closing after the last grace period."""

FLY_DEFAULT_KILL_TIMEOUT = 5.0
"""Fly.io's kill_timeout when fly.toml sets none."""


def hooks_time(hooks: Sequence[Hook], default: float) -> float:
    """Worst case of a hook list run one after another."""
    return sum(default if hook.timeout is None else hook.timeout for hook in hooks)


@dataclass(frozen=True, slots=True)
class ShutdownPlan:
    budget: float
    server_hooks: float
    tenant_hooks: float
    tenant_grace: float
    managed_grace: float
    margin: float = EXIT_MARGIN

    @property
    def after_tenant_hooks(self) -> float:
        """Time kept back for stopping processes once the tenant stop hooks end."""
        return self.tenant_grace + self.managed_grace + self.margin

    @property
    def after_server_hooks(self) -> float:
        return self.tenant_hooks + self.after_tenant_hooks

    @property
    def after_drain(self) -> float:
        return self.server_hooks + self.after_server_hooks

    @property
    def drain(self) -> float:
        """What in-flight requests get: the budget minus everything reserved after them."""
        return max(0.0, self.budget - self.after_drain)

    def describe(self) -> str:
        parts = (("drain", self.drain), ("server stop hooks", self.server_hooks),
                 ("tenant stop hooks", self.tenant_hooks), ("tenant grace", self.tenant_grace),
                 ("managed grace", self.managed_grace), ("margin", self.margin))
        return (f"shutdown budget {format_duration(self.budget)} = "
                + " + ".join(f"{name} {format_duration(value)}" for name, value in parts))


def plan_shutdown(config: Config, stop_grace: float) -> ShutdownPlan:
    """The plan for `config`; `stop_grace` is the SIGTERM → SIGKILL wait per process."""
    default = config.limits.stop_hook_timeout
    shared = hooks_time(config.tenant_hooks.stop, default)
    tenant_hooks = max((shared + hooks_time(t.hooks.stop, default) for t in config.tenants),
                       default=0.0)
    managed = bool(config.managed_processes) or (config.logging.vector.enabled
                                                 and bool(config.logging.vector.config))
    return ShutdownPlan(
        budget=config.limits.shutdown_timeout,
        server_hooks=hooks_time(config.server_hooks.stop, default),
        tenant_hooks=tenant_hooks,
        tenant_grace=stop_grace if config.tenants else 0.0,
        managed_grace=stop_grace if managed else 0.0,
    )


def phase_window(reserved: float, remaining: float, kept_after: float) -> float:
    """Time a shutdown phase may take: up to the budget's end less what later phases keep
    (so it inherits a short drain's slack); when the budget is overdrawn, its own reserve as
    long as any budget is left."""
    return max(0.0, remaining - kept_after, min(reserved, remaining))


def budget_warnings(plan: ShutdownPlan) -> list[str]:
    """Why this plan cannot keep its promises (empty when it can)."""
    if plan.after_drain <= plan.budget:
        return []
    need, budget = format_duration(plan.after_drain), format_duration(plan.budget)
    return [f"stop hooks and process stops need {need}, more than the shutdown budget of "
            f"{budget}: in-flight requests get no drain time and stop hooks are cut off at "
            "the budget; raise shutdown_timeout (and the platform's kill timeout) or lower "
            "the stop hooks' timeouts"]


def kill_timeout_warnings(plan: ShutdownPlan, kill_timeout: float, source: str) -> list[str]:
    """The platform must wait at least the whole budget before it kills navigator."""
    if kill_timeout >= plan.budget:
        return []
    kill, budget = format_duration(kill_timeout), format_duration(plan.budget)
    return [f"{source}: kill_timeout {kill} is shorter than the shutdown budget of {budget} "
            "(server.limits.shutdown_timeout): the platform kills navigator before stop hooks "
            f"and tenants have finished; set kill_timeout to at least "
            f"{math.ceil(plan.budget) + 2} or lower shutdown_timeout"]


def fly_kill_timeout(document: dict[str, object]) -> float | None:
    """kill_timeout from a parsed fly.toml: seconds as a number or a duration string;
    Fly's default when absent; None when unreadable."""
    value = document.get("kill_timeout")
    if value is None:
        return FLY_DEFAULT_KILL_TIMEOUT
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return None
    return None
