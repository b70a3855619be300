"""The soft memory limit: a periodic look at the RSS of each tenant process tree.

Room: I/O (psutil in a worker thread, one sleeping task). It only measures and reports a
process over its tenant's `memory_soft_limit` to the supervisor, which replaces it
gracefully; the decision is `dispatch.recycle_reason`. Never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import psutil

from navigator.tenants.dispatch import recycle_reason
from navigator.tenants.pool import TenantPool
from navigator.tenants.tenantstate import TenantRecord

MEMORY_CHECK_INTERVAL = 5.0  # seconds between looks


def tree_rss(pid: int) -> int | None:
    """Resident memory of `pid` and its descendants, bytes (None when it is gone)."""
    try:
        root = psutil.Process(pid)
        total = int(root.memory_info().rss)
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += int(child.memory_info().rss)
    except psutil.Error:
        return None
    return total


async def watch_memory(pools: Callable[[], list[TenantPool]],
                       recycle: Callable[[TenantPool, TenantRecord, str], None],
                       closing: Callable[[], bool],
                       interval: float = MEMORY_CHECK_INTERVAL) -> None:
    """Until `closing()`: every `interval`, hand each serving process over its tenant's
    soft limit to `recycle` (once: it is marked `recycling`)."""
    while not closing():
        await asyncio.sleep(interval)
        for pool in pools():
            limit = pool.tenant.capacity.memory_soft_limit
            if not limit:
                continue
            for record in pool.serving():
                child = record.child
                if child is None or record.recycling:
                    continue
                rss = await asyncio.to_thread(tree_rss, child.pid)
                if recycle_reason(0, 0, rss, limit) and record.child is child \
                        and not record.recycling:
                    recycle(pool, record, f"memory {rss} bytes > {limit}")
