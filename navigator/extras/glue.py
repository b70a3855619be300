"""Connects the client protocol to CGI scripts, the built-in pub/sub and other machines.

Room: I/O glue. `cgi` and `cable` own their protocols (process I/O, websocket framing) and
`resolver` owns reaching another machine; this module only adapts a client exchange to them:
streaming the request body into a CGI script with backpressure, writing its response,
collecting a bounded broadcast body, handing an upgraded socket to a cable session, and
holding a request while the machine a replay could not carry is looked up and connected.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from navigator.http import wire
from navigator.http.flow import PAUSE_BUFFER, BaseHandler, HoldingHandler

if TYPE_CHECKING:
    from navigator.http.connection import Exchange, HttpProtocol
    from navigator.http.state import ServerState
    from navigator.proxy.relay import ProxyExchange
    from navigator.proxy.resolver import InternalResolver
    from navigator.web.decision import ProxyExternal, RunCgi

log = logging.getLogger("navigator.extras")

BROADCAST_LIMIT = 1024 * 1024
CGI_QUEUE_CHUNKS = 16


def hub_of(client: HttpProtocol) -> Any:
    """The server's cable hub, created on first use (one per server state)."""
    from navigator.extras.cable import CableHub

    hub = client.state.extras.get("cable_hub")
    if hub is None:
        hub = client.state.extras["cable_hub"] = CableHub()
    return hub


# --- broadcast ------
class _BodyCollector(BaseHandler):
    """Reads a small request body, then calls `done(body)` (or answers 413)."""

    __slots__ = ("chunks", "client", "done", "ex", "size")

    def __init__(self, client: HttpProtocol, ex: Exchange, done: Any) -> None:
        self.client = client
        self.ex = ex
        self.done = done
        self.chunks: list[bytes] = client.take_buffered_body(ex)
        self.size = sum(len(c) for c in self.chunks)

    def request_body(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > BROADCAST_LIMIT:
            self.ex.handler = None
            self.client.fail(self.ex, 413, "broadcast body too large")
            return
        self.chunks.append(bytes(data))

    def request_end(self) -> None:
        if self.ex.handler is self:
            self.ex.handler = None
            self.done(b"".join(self.chunks))

    def client_lost(self) -> None:
        self.ex.handler = None


def start_broadcast(client: HttpProtocol, ex: Exchange) -> None:
    from navigator.extras.cable import parse_broadcast

    ex.response_type = "broadcast"

    def deliver(body: bytes) -> None:
        try:
            stream, data = parse_broadcast(body)
        except ValueError as exc:
            client.respond_bytes(ex, 400, wire.response(400, str(exc).encode(),
                                                        keep_alive=ex.keep_alive), 0, "broadcast")
            return
        hub_of(client).broadcast(stream, data)
        client.respond_bytes(ex, 200, wire.response(200, b"", keep_alive=ex.keep_alive),
                             0, "broadcast")

    collector = _BodyCollector(client, ex, deliver)
    ex.handler = collector
    if ex.request_complete:
        collector.request_end()


# --- websocket pub/sub ------
def start_cable(client: HttpProtocol, ex: Exchange) -> None:
    from navigator.extras.cable import CableSession
    from navigator.extras.wsframe import handshake_response

    key = _header(ex, b"sec-websocket-key")
    if not ex.upgrade or not key:
        client.respond_bytes(ex, 400, wire.error_response(400, "websocket upgrade required"),
                             0, "websocket")
        return
    assert client.transport is not None
    ex.status = 101
    ex.head_sent = True
    ex.response_type = "websocket"
    client.write(handshake_response(key.decode("latin-1")))
    activity = client.state.activity
    if activity is not None:
        activity.websocket_opened()
    session = CableSession(client.transport, hub_of(client), client.state.loop,
                           on_close=activity.websocket_closed if activity is not None else None)
    pending = client.start_tunnel(session)
    client.finish_tunnel_exchange(ex)
    if pending:
        session.data_received(pending)


# --- CGI ------
class _CgiBody(BaseHandler):
    """Handler feeding the request body to the script's stdin through a bounded queue; it
    also owns the script's task and the drain waiter of the response side."""

    __slots__ = ("client", "drain", "ex", "queue", "task")

    def __init__(self, client: HttpProtocol, ex: Exchange) -> None:
        self.client = client
        self.ex = ex
        self.task: asyncio.Task[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for chunk in client.take_buffered_body(ex):
            self.queue.put_nowait(chunk)
        if ex.request_complete:
            self.queue.put_nowait(None)

    def request_body(self, data: bytes) -> None:
        self.queue.put_nowait(bytes(data))
        if self.queue.qsize() > CGI_QUEUE_CHUNKS:
            self.client.pause_reading(PAUSE_BUFFER)

    def request_end(self) -> None:
        self.queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.queue.get()
            if self.queue.qsize() <= CGI_QUEUE_CHUNKS // 2:
                self.client.resume_reading(PAUSE_BUFFER)
            if chunk is None:
                return
            yield chunk

    async def wait_writable(self) -> None:
        if self.client.write_paused and not self.client.closed:
            self.drain = self.client.state.loop.create_future()
            await self.drain

    def client_resumed(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def client_lost(self) -> None:
        if self.task is not None:
            self.task.cancel()  # run_cgi kills the script's process group


class _CgiSink:
    """Writes the script's response to the client, chunked unless it gave a length."""

    def __init__(self, client: HttpProtocol, ex: Exchange, body: _CgiBody) -> None:
        self.client = client
        self.ex = ex
        self.body_handler = body
        self.chunked = False

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        ex = self.ex
        ex.status = status
        ex.head_sent = True
        lines = [wire.status_line(status)]
        has_length = False
        for name, value in headers:
            lname = name.lower()
            if lname.encode() in wire.HOP_BY_HOP:
                continue
            has_length = has_length or lname == "content-length"
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not has_length and ex.method != b"HEAD" and status not in (204, 304):
            if ex.http_minor >= 1:
                lines.append(b"Transfer-Encoding: chunked\r\n")
                self.chunked = True
            else:
                ex.keep_alive = False
        if not ex.keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        self.client.writelines(lines)

    async def body(self, chunk: bytes) -> None:
        if not chunk or self.ex.method == b"HEAD":
            return
        self.ex.bytes_sent += len(chunk)
        self.client.write(wire.encode_chunk(chunk) if self.chunked else chunk)
        await self.body_handler.wait_writable()

    async def end(self) -> None:
        """Called once by run_cgi after the last body chunk."""
        if self.chunked:
            self.client.write(wire.LAST_CHUNK)


def start_cgi(client: HttpProtocol, ex: Exchange, decision: RunCgi) -> None:
    from navigator.extras.cgi import build_cgi_env, check_cgi_access

    assert ex.info is not None
    ex.response_type = "cgi"
    denied = check_cgi_access(decision.script, ex.info.remote_user or None)
    if denied is not None:
        headers = [("WWW-Authenticate", 'Basic realm="Restricted"')] if denied == 401 else []
        text = b"Unauthorized" if denied == 401 else b"Forbidden"
        keep = ex.keep_alive and ex.request_complete
        client.respond_bytes(ex, denied, wire.response(denied, text, headers, keep_alive=keep),
                             len(text), "cgi")
        return
    env = build_cgi_env(decision.script, ex.info, ex.headers, client.state.listen_port,
                        dict(os.environ))
    body = _CgiBody(client, ex)
    ex.handler = body
    body.task = client.state.spawn(_run(client, ex, decision, env, body))


async def _run(client: HttpProtocol, ex: Exchange, decision: RunCgi, env: dict[str, str],
               body: _CgiBody) -> None:
    from navigator.extras.cgi import run_cgi

    sink = _CgiSink(client, ex, body)
    try:
        outcome = await run_cgi(decision.script, env, body.chunks(), sink)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("CGI %s failed: %s", decision.script.script, exc)
        client.fail(ex, 502, f"cgi failed: {exc}")
        return
    ex.handler = None
    if not outcome.completed:  # killed after the head went out: the body is cut short
        ex.keep_alive = False
    client.finish(ex)
    if outcome.reload and client.state.on_reload_request is not None:
        client.state.on_reload_request(decision.script.reload_config)


def _header(ex: Exchange, name: bytes) -> bytes:
    for key, value in ex.headers:
        if key.lower() == name:
            return value.strip()
    return b""


# --- another machine (deployment stamps) ------
def resolver_of(state: ServerState, servers: tuple[str, ...]) -> InternalResolver:
    """The server's `.internal` resolver, made again when a reload changes the DNS servers."""
    from navigator.proxy.resolver import InternalResolver

    current: InternalResolver | None = state.extras.get("stamps_resolver")
    if current is None or current.servers != servers:
        if current is not None:
            state.spawn(current.close())
        current = state.extras["stamps_resolver"] = InternalResolver(state.loop, servers)
    return current


def start_machine_proxy(client: HttpProtocol, ex: Exchange, decision: ProxyExternal,
                        proxy: ProxyExchange) -> None:
    """Proxy to another machine by name; unresolvable or unreachable → maintenance page.

    With the name cached and an idle connection pooled this runs without a task. A new
    connection is opened here rather than by `ProxyExchange`, whose connect failure is a 502,
    and handed to it with `start_on`.
    """
    state = client.state
    target = decision.target
    resolver = resolver_of(state, state.snapshot.config.stamp.dns_servers)
    addresses = resolver.cached(target.host)
    if addresses is not None:
        key = (addresses[0], target.port, False)
        conn = state.pool.acquire(key)
        if conn is not None:
            proxy.start_on(key, conn)
            return
    holder = HoldingHandler(client, ex)
    ex.handler = holder
    state.spawn(_reach_then_proxy(client, ex, decision, proxy, holder, resolver))


async def _reach_then_proxy(client: HttpProtocol, ex: Exchange, decision: ProxyExternal,
                            proxy: ProxyExchange, holder: HoldingHandler,
                            resolver: InternalResolver) -> None:
    from navigator.proxy.resolver import Unreachable, reach

    state = client.state
    snapshot = state.snapshot
    target = decision.target
    try:
        conn, key = await reach(state.pool, resolver, target.host, target.port,
                                retries=decision.idempotent_retries,
                                budget=snapshot.config.limits.upstream_connect_timeout)
    except Unreachable as exc:
        log.warning("machine for %s %s unreachable (fly-request-id %s): %s",
                    ex.method.decode("latin-1"), decision.path,
                    ex.x.get(b"fly-request-id", b"-").decode("latin-1"), exc)
        if not client.closed and ex.handler is holder:
            ex.handler = None
            ex.error = str(exc)
            client.respond(ex, snapshot.maintenance)
        return
    if client.closed or ex.handler is not holder:
        conn.close()
        return
    proxy.start_on(key, conn)
