"""The one mutable server-wide object handed to every connection (as uvicorn's ServerState).

Room: plain container. `server` builds it and is the only writer of `snapshot` (reload swaps
the reference). Connections read `snapshot` once per request, so a reload never changes a
request half-way. Collaborators are typed fields (no dict of collaborators): the supervisor
and machine idle through small Protocols, the rest by their classes, imported for types only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from binascii import b2a_hex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from navigator.extras.cable import CableHub
from navigator.proxy.resolver import MachineResolver

if TYPE_CHECKING:
    from navigator.config.runtime import Tenant
    from navigator.http.exchange import Exchange, TenantLease
    from navigator.ops.metrics import Metrics
    from navigator.proxy.upstream import UpstreamPool
    from navigator.web.filecache import FileCache
    from navigator.web.snapshot import Snapshot


log = logging.getLogger("navigator.protocol")


class TenantRunner(Protocol):
    """The part of the supervisor that the request path uses."""

    def acquire_now(self, tenant: Tenant) -> TenantLease | None: ...
    async def acquire(self, tenant: Tenant) -> TenantLease: ...


class ActivityTracker(Protocol):
    """Machine-idle accounting (navigator.tenants.idle.MachineIdle)."""

    def request_started(self) -> None: ...
    def request_finished(self) -> None: ...
    def websocket_opened(self) -> None: ...
    def websocket_closed(self) -> None: ...
    @property
    def resuming(self) -> bool: ...
    async def wait_resumed(self) -> None: ...


class RequestObserver(Protocol):
    """Access log + metrics, told once per finished request."""

    def request_done(self, record: Any) -> None: ...


@dataclass(slots=True, eq=False)
class ServerState:
    loop: asyncio.AbstractEventLoop
    snapshot: Snapshot
    pool: UpstreamPool
    tenants: TenantRunner
    activity: ActivityTracker | None = None
    observer: RequestObserver | None = None
    listen_port: int = 0
    connections: set[Any] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    shutting_down: bool = False
    on_reload_request: Callable[[str], None] | None = None  # CGI reload_config
    files: FileCache | None = None  # small static files served from memory
    cable: CableHub = field(default_factory=CableHub)  # the built-in pub/sub
    machines: MachineResolver = field(init=False)  # other machines by .internal name
    metrics: Metrics | None = None  # rendered on a `/metrics` route of the main listener
    status_page: Callable[[], bytes] | None = None  # the HTML status page, rendered now
    # Request ids need uniqueness, not secrecy: a seeded PRNG costs no syscall per request.
    ids: random.Random = field(default_factory=lambda: random.Random(os.urandom(16)))

    def __post_init__(self) -> None:
        self.machines = MachineResolver(self.loop)

    def request_done(self, ex: Exchange) -> None:
        """An exchange ended (answered, refused or abandoned): close its accounting with the
        supervisor and machine idle, then log it (access log and metrics)."""
        lease = ex.lease
        if lease is not None:  # a websocket's tunnel took it over before this
            ex.lease = None
            lease.release()
        if ex.activity_counted and self.activity is not None:
            ex.activity_counted = False
            self.activity.request_finished()
        observer = self.observer
        if observer is not None:
            try:
                observer.request_done(ex)
            except Exception:
                log.exception("access log failed")

    def new_request_id(self) -> bytes:
        """32 hex digits for X-Request-Id when the client sent none."""
        return b2a_hex(self.ids.randbytes(16))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a slow-path coroutine, keeping a strong reference until it ends."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
