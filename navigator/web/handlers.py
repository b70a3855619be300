"""Acting on a request: `handle` routes it and `dispatch` acts on the Decision, one function
per kind.

Room: I/O glue. Each function takes the client (the narrow `http.client.Client`), the
exchange and the decision, and either answers at once or installs a handler that produces
the response. Pure choices (what to answer) were made by `routing`; sequencing and waiting
happen here. Failures are named with `http.failure.Failure`, never as status numbers.

Invariants:
- the fast path (tenant ready, pooled backend connection) runs without creating a task;
- a tenant request holds a slot on one process (`Exchange.lease`) from the moment it gets
  one until the exchange ends; one that gets none within its tenant's queue timeout (or
  finds the queue full) gets the maintenance page (503, Retry-After) while a start goes on;
  other tenants are never blocked by it;
- a file is streamed in chunks, pausing while the client's write buffer is full.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from typing import TYPE_CHECKING

from navigator.http import wire
from navigator.http.client import Client, HoldingHandler, respond
from navigator.http.exchange import BaseHandler, Exchange
from navigator.http.failure import Failure
from navigator.ops.metrics import CONTENT_TYPE
from navigator.proxy.machine import start_machine_proxy
from navigator.proxy.relay import ProxyExchange, build_request_head
from navigator.tenants.supervisor import TenantLaunchError
from navigator.web.decision import (
    CableBroadcast,
    CableSocket,
    Decision,
    ProxyExternal,
    ProxyTenant,
    ReplayWhenUp,
    Respond,
    RunCgi,
    ServeFile,
    ServeMetrics,
    ServeStatusPage,
)
from navigator.web.filecache import MAX_FILE_BYTES
from navigator.web.routing import maintenance_response, route
from navigator.web.static import prepare_file

if TYPE_CHECKING:
    from navigator.config.runtime import Tenant
    from navigator.http.state import ActivityTracker

log = logging.getLogger("navigator.handlers")

FILE_CHUNK = 256 * 1024
SENDFILE_CHUNK = 4 * 1024 * 1024  # per call; the kernel sends what the socket takes
SENDFILE_FALLBACK_CHUNK = 16 * 1024  # through the transport while the socket is full
SENDFILE_MIN = 64 * 1024  # smaller bodies: one read and one write cost less
LOOPBACK = "127.0.0.1"


# --- tenants ------
def proxy_to_tenant(client: Client, ex: Exchange, decision: ProxyTenant) -> None:
    tenant = decision.tenant
    state = client.state
    ex.tenant = tenant
    ex.response_type = "proxy"
    ex.destination = f"tenant:{tenant.name}"
    head = build_request_head(ex, decision.path.encode("latin-1"), client.peer_ip,
                              ex.snapshot.config.trust_proxy, decision.set_headers,
                              tenant.forwarded_prefix)
    proxy = ProxyExchange(client, ex, head, decision.response_headers, tenant=tenant)
    lease = state.tenants.acquire_now(tenant)
    if lease is not None and lease.port is not None:
        ex.lease = lease  # released when the exchange ends (or by the tunnel it becomes)
        proxy.start((LOOPBACK, lease.port, False))
        return
    if lease is not None:
        lease.release()
    waiting = _Waiting(client, ex)
    ex.handler = waiting
    waiting.task = state.spawn(_start_tenant_then_proxy(client, ex, tenant, proxy))


async def _start_tenant_then_proxy(client: Client, ex: Exchange, tenant: Tenant,
                                   proxy: ProxyExchange) -> None:
    """Wait for a slot (the supervisor starts a process or queues us, up to the tenant's
    queue_timeout; a start goes on after that): the slot, or the maintenance page (503)."""
    state = client.state
    try:
        lease = await state.tenants.acquire(tenant)
    except TenantLaunchError as exc:
        log.error("tenant %s failed to start: %s", tenant.name, exc)
        if not client.closed and ex.handler is not None:
            ex.handler = None
            client.fail(ex, Failure.HANDLER_ERROR, "Failed to start application")
        return
    except Exception as unavailable:  # TenantUnavailable (queue full or timed out,
        # crash-loop back-off, shutting down), the unexpected
        log.warning("tenant %s unavailable: %s", tenant.name, unavailable)
        if not client.closed and ex.handler is not None:
            ex.handler = None
            ex.error = str(unavailable)
            respond(client, ex, maintenance_response(ex.snapshot))
        return
    port = lease.port
    if client.closed or ex.handler is None or port is None:
        lease.release()  # the client left (or was answered) while it waited
        return
    ex.lease = lease
    proxy.start((LOOPBACK, port, False))


class _Waiting(HoldingHandler):
    """Handler while a request waits for a tenant slot (a start, the queue): holds the body
    (bounded by pausing reads); a client that leaves gives up its place in the queue."""

    __slots__ = ("task",)

    def __init__(self, client: Client, ex: Exchange) -> None:
        super().__init__(client, ex)
        self.task: asyncio.Task[None] | None = None

    def client_lost(self) -> None:
        super().client_lost()
        if self.task is not None:
            self.task.cancel()

    def describe(self) -> str:
        """For the connection dump."""
        return f"waiting for its tenant to start (buffered {self.ex.body_buffered} bytes)"


# --- external upstreams ------
def proxy_to_external(client: Client, ex: Exchange, decision: ProxyExternal) -> None:
    target = decision.target
    ex.response_type = decision.response_type
    ex.destination = f"{target.scheme}://{target.host}:{target.port}"
    head = build_request_head(ex, decision.path.encode("latin-1"), client.peer_ip,
                              ex.snapshot.config.trust_proxy, decision.set_headers)
    proxy = ProxyExchange(client, ex, head, decision.response_headers)
    if decision.response_type == "fly-replay-proxy":  # another machine, by .internal name
        start_machine_proxy(client, ex, decision, proxy)
        return
    proxy.start((target.host, target.port, target.scheme == "https"))


# --- static files ------
def serve_file(client: Client, ex: Exchange, decision: ServeFile) -> None:
    info = ex.info
    assert info is not None
    ex.response_type = decision.response_type
    path_text = ex.file_path = decision.file
    cache = client.state.files
    plain = (cache is not None and info.method == "GET" and not info.range
             and not info.if_none_match and not info.if_modified_since)
    if plain:
        assert cache is not None
        hit = cache.get(path_text, info.accept_encoding, decision.headers, decision.stat)
        if hit is not None:
            ex.keep_alive = ex.keep_alive and ex.request_complete
            data = (hit.keep_alive_response if ex.keep_alive
                    else hit.head + b"Connection: close\r\n\r\n" + hit.body)
            client.respond_bytes(ex, 200, data, len(hit.body), "static")
            return
    try:
        prepared = prepare_file(decision, info)
        fd = os.open(prepared.path, os.O_RDONLY) if prepared.length and prepared.body_allowed \
            else -1
    except OSError as exc:
        log.info("cannot serve %s: %s", decision.file, exc)
        client.respond_bytes(ex, 404, wire.error_response(404, keep_alive=ex.keep_alive
                                                          and ex.request_complete), 0, "static")
        return
    ex.status = prepared.status
    ex.keep_alive = ex.keep_alive and ex.request_complete
    lines = [wire.status_line(prepared.status)]
    lines += [f"{name}: {value}\r\n".encode("latin-1") for name, value in prepared.headers]
    if not ex.keep_alive:
        lines.append(b"Connection: close\r\n")
    if plain and fd >= 0 and prepared.length <= MAX_FILE_BYTES:
        assert cache is not None
        cache.put(path_text, info.accept_encoding,
                  decision.headers, prepared,
                  b"".join(lines[:-1] if not ex.keep_alive else lines))
    lines.append(b"\r\n")
    ex.head_sent = True
    if fd < 0:
        client.writelines(lines)
        client.finish(ex)
        return
    sender = _FileSender(client, ex, fd, prepared.offset, prepared.length)
    ex.handler = sender
    client.writelines(lines)
    sender.pump()


class _FileSender(BaseHandler):
    """Streams a byte range of a file, pausing while the client's buffer is full.

    uvloop has no loop.sendfile, so this calls os.sendfile on the client's socket itself,
    but only while the transport has nothing queued (bytes must not overtake each other).
    When the socket is full, one chunk goes through the transport instead, with its
    high-water mark at 0 for the duration: the loop then tells us (resume_writing) exactly
    when everything is sent and sendfile can go on. Without a usable socket (or when
    sendfile refuses), page-cache reads of 256 KiB go through the transport.
    """

    __slots__ = ("client", "ex", "fd", "offset", "remaining", "sock_fd")

    def __init__(self, client: Client, ex: Exchange, fd: int, offset: int,
                 length: int) -> None:
        self.client = client
        self.ex = ex
        self.fd = fd
        self.offset = offset
        self.remaining = length
        self.sock_fd = -1
        transport = client.transport
        if transport is not None and length > SENDFILE_MIN:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self.sock_fd = sock.fileno()
                transport.set_write_buffer_limits(high=0)  # resume_writing = fully drained

    def pump(self) -> None:
        client = self.client
        transport = client.transport
        while self.remaining > 0 and not client.write_paused and not client.closed:
            if self.sock_fd >= 0 and transport is not None \
                    and not transport.get_write_buffer_size():
                sent = self._sendfile()
                if sent > 0:
                    continue
                if sent == 0:  # file shrank under us
                    self._short_file()
                    return
                if client.closed:
                    return
            size = min(FILE_CHUNK if self.sock_fd < 0 else SENDFILE_FALLBACK_CHUNK,
                       self.remaining)
            try:
                chunk = os.pread(self.fd, size, self.offset)
            except OSError as exc:
                log.warning("read error while sending a file: %s", exc)
                chunk = b""
            if not chunk:  # file shrank under us: the length we promised cannot be kept
                self._short_file()
                return
            self._advance(len(chunk))
            client.write(chunk)
        if self.remaining <= 0:
            self._done()
            client.finish(self.ex)

    def _sendfile(self) -> int:
        """Bytes sent; -1 when the socket is full (or sendfile is unusable here)."""
        try:
            sent = os.sendfile(self.sock_fd, self.fd, self.offset,
                               min(SENDFILE_CHUNK, self.remaining))
        except BlockingIOError:
            return -1
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.client.abort()  # the client went away under us
            else:  # e.g. a filesystem sendfile cannot read: plain reads from now on
                log.info("sendfile unusable (%s): reading instead", exc)
                self._stop_sendfile()
            return -1
        if sent > 0:
            self._advance(sent)
        return sent

    def _advance(self, count: int) -> None:
        self.offset += count
        self.remaining -= count
        self.ex.bytes_sent += count

    def _short_file(self) -> None:
        self._done()
        self.ex.keep_alive = False
        self.client.finish(self.ex)

    def _stop_sendfile(self) -> None:
        if self.sock_fd >= 0:
            self.sock_fd = -1
            transport = self.client.transport
            if transport is not None and not self.client.closed:
                transport.set_write_buffer_limits()  # back to the defaults

    def _done(self) -> None:
        self._stop_sendfile()
        self._close_fd()

    def _close_fd(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def client_resumed(self) -> None:
        self.pump()

    def client_lost(self) -> None:
        self.sock_fd = -1
        self._close_fd()


# --- metrics ------
def serve_metrics(client: Client, ex: Exchange) -> None:
    metrics = client.state.metrics
    body = metrics.render() if metrics is not None else b""
    keep = ex.keep_alive and ex.request_complete
    ex.keep_alive = keep
    data = wire.response(200, body, (("Content-Type", CONTENT_TYPE),), keep_alive=keep,
                         head_only=ex.method == b"HEAD", content_type=None)
    client.respond_bytes(ex, 200, data, len(body), "metrics")


def serve_status_page(client: Client, ex: Exchange) -> None:
    render = client.state.status_page
    body = render() if render is not None else b""
    keep = ex.keep_alive and ex.request_complete
    ex.keep_alive = keep
    data = wire.response(200, body, (("Content-Type", "text/html; charset=utf-8"),
                                     ("Cache-Control", "no-store")), keep_alive=keep,
                         head_only=ex.method == b"HEAD", content_type=None)
    client.respond_bytes(ex, 200, data, len(body), "status")


# --- dispatch ------
def handle(client: Client, ex: Exchange) -> None:
    """Route a request whose facts are read (`ex.info`) on its snapshot, count it for machine
    idle, then act on the decision."""
    info = ex.info
    assert info is not None
    try:
        decision = route(ex.snapshot, info)
    except Exception:
        log.exception("routing failed for %s %s", info.method, info.path)
        client.fail(ex, Failure.HANDLER_ERROR)
        return
    activity = client.state.activity
    # Synthetic health answers are not activity: a platform probe must not keep the
    # machine awake forever (reference section 5.1 defect).
    if activity is not None and not (type(decision) is Respond
                                     and decision.response_type == "health"):
        activity.request_started()
        ex.activity_counted = True
        if activity.resuming:  # machine just resumed: hold until resume hooks are done
            ex.body_buffer = ex.body_buffer or []
            client.state.spawn(_dispatch_after_resume(client, ex, decision, activity))
            return
    dispatch(client, ex, decision)


async def _dispatch_after_resume(client: Client, ex: Exchange, decision: Decision,
                                 activity: ActivityTracker) -> None:
    await activity.wait_resumed()
    if client.answering(ex):
        dispatch(client, ex, decision)


def dispatch(client: Client, ex: Exchange, decision: Decision) -> None:
    """Act on a routing Decision: answer now or install the handler that will."""
    kind = type(decision)
    if kind is Respond:
        assert isinstance(decision, Respond)
        respond(client, ex, decision)
    elif kind is ProxyTenant:
        assert isinstance(decision, ProxyTenant)
        proxy_to_tenant(client, ex, decision)
    elif kind is ProxyExternal:
        assert isinstance(decision, ProxyExternal)
        proxy_to_external(client, ex, decision)
    elif kind is ServeFile:
        assert isinstance(decision, ServeFile)
        serve_file(client, ex, decision)
    elif kind is RunCgi:
        assert isinstance(decision, RunCgi)
        from navigator.extras.cgi_handler import start_cgi  # only if used
        start_cgi(client, ex, decision)
    elif kind is CableSocket:
        from navigator.extras.cable_handler import start_cable  # only if used
        start_cable(client, ex)
    elif kind is CableBroadcast:
        from navigator.extras.cable_handler import start_broadcast
        start_broadcast(client, ex)
    elif kind is ServeMetrics:
        serve_metrics(client, ex)
    elif kind is ReplayWhenUp:
        assert isinstance(decision, ReplayWhenUp)
        from navigator.proxy.wake import start_checked_replay  # only with machine_start
        start_checked_replay(client, ex, decision)
    elif kind is ServeStatusPage:
        serve_status_page(client, ex)
    else:  # pragma: no cover - exhaustive
        client.fail(ex, Failure.HANDLER_ERROR, "unknown decision")
