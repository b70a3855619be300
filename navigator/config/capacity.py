"""A tenant's process pool settings (`applications.pools` defaults, per-tenant overrides),
resolved into `runtime.Capacity`.

Room: config (pure). Invariants: `1 <= max_processes`, `0 <= min_instances <= max_processes`,
no negative counts; a bad value is a ConfigError naming the key. A tenant's `idle_timeout`
may be a duration (`"5m"`) or plain seconds (`300`), as the reference's docs write it.
"""

from __future__ import annotations

from navigator.config import runtime as rt
from navigator.config import schema as sc
from navigator.config.context import Context
from navigator.config.schema import ConfigError, KeyPath

DEFAULT_DRAIN_TIMEOUT = 300.0


def check_pool_defaults(pools: sc.PoolsSpec) -> None:
    """The `applications.pools` counts are checked even when no tenant uses them yet."""
    pkey: KeyPath = ("applications", "pools")
    for name, least in (("max_processes", 1), ("min_instances", 0), ("max_concurrency", 0),
                        ("max_queue", 0), ("max_requests", 0)):
        value = getattr(pools, name)
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, not {value}", (*pkey, name))
    if pools.min_instances > pools.max_processes:
        raise ConfigError(f"min_instances ({pools.min_instances}) is more than "
                          f"max_processes ({pools.max_processes})", (*pkey, "min_instances"))


def resolve_capacity(pools: sc.PoolsSpec, spec: sc.TenantSpec, key: KeyPath,
                     startup_timeout: float, ctx: Context) -> rt.Capacity:
    pkey: KeyPath = ("applications", "pools")

    def count(own: int | None, default: int, name: str, least: int) -> int:
        value, where = (default, (*pkey, name)) if own is None else (own, (*key, name))
        if value < least:
            raise ConfigError(f"{name} must be at least {least}, not {value}", where)
        return value

    def seconds(own: str, default_text: str, name: str, default: float) -> float:
        fallback = ctx.seconds(default_text, (*pkey, name), default)
        return ctx.seconds(own, (*key, name), fallback)

    most = count(spec.max_processes, pools.max_processes, "max_processes", 1)
    least = count(spec.min_instances, pools.min_instances, "min_instances", 0)
    if least > most:
        raise ConfigError(f"min_instances ({least}) is more than max_processes ({most})",
                          (*key, "min_instances") if spec.min_instances is not None
                          else (*pkey, "min_instances"))
    soft = (ctx.size(spec.memory_soft_limit, (*key, "memory_soft_limit"))
            or ctx.size(pools.memory_soft_limit, (*pkey, "memory_soft_limit")))
    return rt.Capacity(
        max_processes=most, min_instances=least,
        max_concurrency=count(spec.max_concurrency, pools.max_concurrency, "max_concurrency",
                              0),
        max_queue=count(spec.max_queue, pools.max_queue, "max_queue", 0),
        queue_timeout=seconds(spec.queue_timeout, pools.queue_timeout, "queue_timeout",
                              startup_timeout),
        idle_timeout=_idle_timeout(spec.idle_timeout, (*key, "idle_timeout"), ctx),
        max_requests=count(spec.max_requests, pools.max_requests, "max_requests", 0),
        memory_soft_limit=soft,
        drain_timeout=seconds(spec.drain_timeout, pools.drain_timeout, "drain_timeout",
                              DEFAULT_DRAIN_TIMEOUT))


def _idle_timeout(own: str, key: KeyPath, ctx: Context) -> float | None:
    """A duration (`5m`) or plain seconds (`300`; YAML numbers arrive here as text); None
    when unset (the pool's `timeout`)."""
    if not own:
        return None
    try:
        seconds = float(own)
    except ValueError:
        return ctx.duration(own, key, None)
    if seconds < 0:
        raise ConfigError(f"idle_timeout must not be negative, not {own}", key)
    return seconds
