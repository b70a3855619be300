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
from typing import TYPE_CHECKING, Any, Protocol

from mypy_extensions import mypyc_attr

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

_IDS_PER_DRAW = 64  # request ids made per PRNG draw (see ServerState.new_request_id)


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


@mypyc_attr(allow_interpreted_subclasses=True)
class RequestObserver:
    """Access log + metrics, told once per finished request (ops.observer.RequestRecorder).
    A base class, not a Protocol: compiled, the call is a vtable call, not a method lookup."""

    __slots__ = ()

    def request_done(self, ex: Exchange) -> None:
        raise NotImplementedError


class ServerState:
    """What every connection shares: the current snapshot, the upstream pool, the tenant
    runner, and the accounting told once per request (a plain class so that mypyc compiles
    it: the request path calls `request_done` and `new_request_id` on every request)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, snapshot: Snapshot, pool: UpstreamPool,
                 tenants: TenantRunner, *, activity: ActivityTracker | None = None,
                 observer: RequestObserver | None = None, listen_port: int = 0,
                 on_reload_request: Callable[[str], None] | None = None,
                 files: FileCache | None = None, metrics: Metrics | None = None,
                 status_page: Callable[[], bytes] | None = None) -> None:
        self.loop = loop
        self.clock: Callable[[], float] = loop.time  # bound once: the deadlines read it
        self.snapshot = snapshot
        self.pool = pool
        self.tenants = tenants
        self.activity = activity
        self.observer = observer
        self.listen_port = listen_port
        self.connections: set[Any] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.shutting_down = False
        self.on_reload_request = on_reload_request  # CGI reload_config
        self.files = files  # small static files served from memory
        self.cable = CableHub()  # the built-in pub/sub
        self.machines = MachineResolver(loop)  # other machines by .internal name
        self.metrics = metrics  # rendered on a `/metrics` route of the main listener
        self.status_page = status_page  # the HTML status page, rendered now
        # Request ids need uniqueness, not secrecy: a seeded PRNG costs no syscall per request.
        self.ids = random.Random(os.urandom(16))
        self._id_digits = b""  # hex digits of ids drawn ahead, 32 per id (see new_request_id)
        self._id_next = 0

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
        digits, at = self._id_digits, self._id_next
        if at >= len(digits):  # 64 ids in one draw: a slice each, not three calls each
            digits = self._id_digits = b2a_hex(self.ids.randbytes(16 * _IDS_PER_DRAW))
            at = 0
        self._id_next = at + 32
        return digits[at:at + 32]

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a slow-path coroutine, keeping a strong reference until it ends."""
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
