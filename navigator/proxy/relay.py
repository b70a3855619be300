"""One proxied request: connect (or reuse), relay the request, relay the response.

Room: I/O glue between a client exchange (through the narrow `http.client.Client`) and an
`UpstreamConnection`. The header decisions are `wire`'s; this module only sequences them.

Invariants:
- the request head is rebuilt (hop-by-hop gone, X-Forwarded-* ours, our own framing);
- body bytes flow as they arrive, with pause/resume in both directions, never buffered whole;
- a reused pooled connection that dies before answering is retried once on a fresh one, but
  only for idempotent requests without a body (RFC 9110 §9.2.2);
- a 101 from the backend turns this object into the tunnel for both sockets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from navigator.http import wire
from navigator.http.client import Client, Deadline, hold_body
from navigator.http.failure import Failure
from navigator.http.flow import PAUSE_UPSTREAM
from navigator.http.wire import CRLF
from navigator.proxy.connectqueue import ConnectQueueTimeout
from navigator.proxy.cookies import scope_set_cookies
from navigator.proxy.upstream import PoolKey, ResponseSink, UpstreamConnection

if TYPE_CHECKING:
    from navigator.config.runtime import Pairs, Tenant
    from navigator.http.exchange import Exchange, TenantLease

log = logging.getLogger("navigator.proxy")

# Final: compiled, module constants are C statics instead of lookups in the module's dict.
_UPSTREAM: Final = Deadline.UPSTREAM
_WEBSOCKET: Final = Deadline.WEBSOCKET
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_NO_DROP: Final[frozenset[bytes]] = frozenset()
# What the rebuilt heads leave out, hop-by-hop names included: sets built once, not per request.
_REQUEST_SKIP: Final = wire.HeaderFilter(wire.hop_by_hop_and(wire.REBUILT_REQUEST_HEADERS))
_REQUEST_SKIP_PREFIXED: Final = wire.HeaderFilter(wire.hop_by_hop_and(
    wire.REBUILT_REQUEST_HEADERS | {b"x-forwarded-prefix"}))
_RESPONSE_SKIP: Final = wire.HeaderFilter(wire.hop_by_hop_and(wire.REBUILT_RESPONSE_HEADERS))
_RESPONSE_SKIP_NO_BODY: Final = wire.HeaderFilter(wire.hop_by_hop_and(_NO_DROP))


def build_request_head(ex: Exchange, target: bytes, peer_ip: str, trust_proxy: bool,
                       set_headers: Pairs, prefix: bytes = b"") -> bytes:
    """The request head we send upstream (RFC 9110 §7.6.1, reference section 10.6).
    `prefix`: the X-Forwarded-Prefix of a tenant that strips its path (the client's is
    dropped then, never trusted)."""
    kept = ex.kept
    skip = _REQUEST_SKIP_PREFIXED if prefix else _REQUEST_SKIP
    named = _NO_DROP
    if set_headers:  # a route's own value replaces ours (e.g. X-Forwarded-Proto: $scheme)
        named = frozenset(name.lower().encode("latin-1") for name, _ in set_headers)
        skip = skip.adding(named)
    if ex.conn_tokens:
        skip = skip.adding(ex.conn_tokens)
    parts = [ex.method, b" ", target, b" HTTP/1.1\r\n"]
    wire.append_headers(parts, ex.headers, skip)
    # One append per piece: `parts += (a, b, c)` builds a tuple and takes the generic
    # sequence path, ~400 instructions per line.
    if b"x-forwarded-for" not in named:
        parts.append(b"X-Forwarded-For: ")
        parts.append(wire.forwarded_for(kept.get(b"x-forwarded-for"), peer_ip))
        parts.append(CRLF)
    # Incoming X-Forwarded-Proto/-Host are kept only from a trusted proxy (server.trust_proxy);
    # X-Real-IP is always ours: the client address we believe (the peer unless trusted).
    if b"x-forwarded-proto" not in named:
        proto = kept.get(b"x-forwarded-proto") if trust_proxy else None
        parts.append(b"X-Forwarded-Proto: ")
        parts.append(proto or b"http")
        parts.append(CRLF)
    if b"x-forwarded-host" not in named:
        fhost = kept.get(b"x-forwarded-host") if trust_proxy else None
        parts.append(b"X-Forwarded-Host: ")
        parts.append(fhost or kept.get(b"host", b""))
        parts.append(CRLF)
    if b"x-real-ip" not in named:
        info = ex.info
        client = info.client_ip if info is not None and info.client_ip else peer_ip
        parts.append(b"X-Real-IP: ")
        parts.append(client.encode("ascii"))
        parts.append(CRLF)
    if b"host" not in kept:  # HTTP/1.0 without Host: HTTP/1.1 requires one (RFC 9112 §3.2)
        parts.append(b"Host: localhost\r\n")
    if prefix:
        parts.append(b"X-Forwarded-Prefix: ")
        parts.append(prefix)
        parts.append(CRLF)
    if b"x-request-id" not in kept:
        parts.append(b"X-Request-Id: ")
        parts.append(ex.request_id)
        parts.append(CRLF)
    if ex.chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    elif ex.content_length is not None:
        parts.append(b"Content-Length: %d\r\n" % ex.content_length)
    if ex.upgrade:
        parts.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % kept.get(b"upgrade", b"websocket"))
    for name, value in set_headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"\r\n")
    return b"".join(parts)


class ProxyExchange(ResponseSink):
    """Relays one exchange; after a 101, relays raw bytes both ways."""

    __slots__ = (
        "attempts", "client", "conn", "connecting", "ex", "head", "key", "lease", "out",
        "rechunk", "response_headers", "tenant", "tunnel_open", "waiting_armed",
    )

    def __init__(self, client: Client, ex: Exchange, head: bytes,
                 response_headers: Pairs = (), tenant: Tenant | None = None) -> None:
        self.client = client
        self.ex = ex
        self.head = head
        self.response_headers = response_headers
        self.tenant = tenant
        self.conn: UpstreamConnection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.key: PoolKey = ("", 0, False)
        self.rechunk = False
        self.out: list[bytes | memoryview] = []  # response bytes of one upstream packet
        self.attempts = 0
        self.tunnel_open = False
        self.waiting_armed = False  # the upstream deadline runs (armed when the request ended)
        self.lease: TenantLease | None = None  # a tunnel's process slot, held until it closes

    def describe(self) -> str:
        """For the connection dump: where this exchange is waiting."""
        conn = self.conn
        if conn is None:
            where = "connecting" if self.connecting is not None else "no-backend"
        else:
            where = conn.describe()
        return (f"backend={self.key[0]}:{self.key[1]} {where} attempts={self.attempts} "
                f"tunnel={self.tunnel_open} queued_out={len(self.out)}")

    # --- starting ----------------------------------------------------------------------
    def start(self, key: PoolKey) -> None:
        """Send on a pooled connection now, or open one in the background."""
        self.key = key
        self.ex.handler = self
        conn = self.client.state.pool.acquire(key)
        if conn is not None:
            self._attach(conn)
        else:
            self.connecting = self.client.state.spawn(self._connect())

    def start_on(self, key: PoolKey, conn: UpstreamConnection) -> None:
        """Send on a connection the caller opened (another machine, reached by name)."""
        self.key = key
        self.ex.handler = self
        self._attach(conn)

    async def _connect(self) -> None:
        state = self.client.state
        try:
            conn = await state.pool.connect(self.key, self.ex.snapshot.config.limits
                                            .upstream_connect_timeout)
        except ConnectQueueTimeout as exc:  # saturated, not down: 503 (see failure.py)
            log.warning("%s", exc)
            self.client.fail(self.ex, Failure.UNAVAILABLE, str(exc))
            return
        except (OSError, TimeoutError) as exc:
            log.warning("cannot connect to %s:%d: %s", self.key[0], self.key[1], exc)
            self.client.fail(self.ex, Failure.UNREACHABLE, f"connect failed: {exc}")
            return
        if self.client.closed or self.ex.handler is not self:
            conn.close()
            return
        self._attach(conn)

    def _attach(self, conn: UpstreamConnection) -> None:
        self.connecting = None
        if conn.closed:
            # Lost between connecting and now (the backend died): its connection_lost found
            # no owner to tell, and nothing else will ever report on it.
            self.conn = conn
            self._upstream_failed("backend closed the connection before the request")
            return
        self.conn = conn
        ex = self.ex
        client = self.client
        conn.begin(self, ex.method == b"HEAD")
        parts = [self.head]
        pending = client.take_buffered_body(ex)
        if pending:
            parts += [wire.encode_chunk(c) for c in pending] if ex.chunked else pending
        elif ex.expect_continue and not ex.request_complete:
            client.write(wire.CONTINUE_100)
        if ex.request_complete:
            if ex.chunked:
                parts.append(wire.LAST_CHUNK)
            client.arm_deadline(_UPSTREAM,
                                ex.snapshot.config.limits.upstream_response_timeout)
            self.waiting_armed = True
        conn.writelines(parts)

    # --- client -> upstream (Handler) ------------------------------------------------------
    def request_body(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:  # still connecting: keep it for _attach (which resumes reading)
            hold_body(self.client, self.ex, data)
            return
        conn.write(wire.encode_chunk(data) if self.ex.chunked else bytes(data))

    def request_end(self) -> None:
        conn = self.conn
        if conn is None:
            return
        if self.ex.chunked:
            conn.write(wire.LAST_CHUNK)
        if not self.ex.head_sent and not self.waiting_armed:  # not already armed by _attach
            self.client.arm_deadline(_UPSTREAM,
                                     self.ex.snapshot.config.limits.upstream_response_timeout)
            self.waiting_armed = True

    def client_paused(self) -> None:
        if self.conn is not None:
            self.conn.pause_reading()

    def client_resumed(self) -> None:
        if self.conn is not None:
            self.conn.resume_reading()

    def client_lost(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        if self.conn is not None:
            self.conn.abort()
            self.conn = None
        self._close_tunnel_accounting()

    # --- upstream -> client (ResponseSink) ----------------------------------------------------
    def upstream_head(self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool,
                      content_length: int | None, keep_alive: bool) -> None:
        ex = self.ex
        client = self.client
        ex.head_sent = True
        ex.status = status
        client.clear_deadline()
        tenant = self.tenant
        if tenant is not None and tenant.cookie_prefix:  # `scope_cookies`: off costs this test
            headers = scope_set_cookies(headers, tenant.cookie_prefix, tenant.strip_prefix)
        if status == 101:
            if not ex.upgrade:
                self._upstream_failed("unexpected 101 from backend")
                return
            lines = [wire.status_line(101)]
            lines += [b"%s: %s\r\n" % h for h in headers]
            lines.append(b"\r\n")
            client.writelines(lines)
            return
        no_body = ex.method == b"HEAD" or status in (204, 304)
        skip = _RESPONSE_SKIP_NO_BODY if no_body else _RESPONSE_SKIP
        conn = self.conn
        if conn is not None:  # what it saw while parsing: no second pass over the headers
            connection = conn.connection_header
            conn_named = _NO_DROP if connection is None else wire.connection_tokens(connection)
        else:
            conn_named = _connection_named(headers)
        if conn_named:
            skip = skip.adding(conn_named)
        if self.response_headers:
            skip = skip.adding(frozenset(n.lower().encode("latin-1")
                                         for n, _ in self.response_headers))
        lines = [wire.status_line(status)]
        wire.append_headers(lines, headers, skip)
        for name, value in self.response_headers:
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        client_keep_alive = ex.keep_alive
        if no_body:
            pass
        elif content_length is not None:
            lines.append(b"Content-Length: %d\r\n" % content_length)
        elif chunked and ex.http_minor >= 1:
            lines.append(b"Transfer-Encoding: chunked\r\n")
            self.rechunk = True
        else:
            client_keep_alive = False  # close-delimited (or chunked to an HTTP/1.0 client)
        if not client_keep_alive:
            lines.append(b"Connection: close\r\n")
        elif ex.http_minor == 0:
            lines.append(b"Connection: keep-alive\r\n")
        ex.keep_alive = client_keep_alive
        if ex.upgrade:
            self.client.refuse_upgrade(ex)
        lines.append(b"\r\n")
        # Joined here, once: the body parts that follow go out with it as [head, body], and
        # write_parts sums and joins two items, not forty pieces.
        self.out.append(b"".join(lines))

    def upstream_interim(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if status == 100:
            return  # we answer Expect: 100-continue ourselves
        lines = [wire.status_line(status)]
        lines += [b"%s: %s\r\n" % h for h in headers]
        lines.append(b"\r\n")
        self.client.writelines(lines)

    def upstream_body(self, data: bytes | memoryview) -> None:
        self.ex.bytes_sent += len(data)
        self.out.append(wire.encode_chunk(data) if self.rechunk else data)

    def upstream_flush(self) -> None:
        if self.out:
            out, self.out = self.out, []
            self.client.writelines(out)

    def upstream_complete(self) -> None:
        ex = self.ex
        if self.rechunk:
            self.out.append(wire.LAST_CHUNK)
        self.upstream_flush()
        conn = self.conn
        self.conn = None
        if not ex.request_complete and conn is not None:
            conn.close()  # it still expects the rest of our body: not reusable
        self.client.finish(ex)

    def upstream_upgraded(self, rest: bytes) -> None:
        self.upstream_flush()
        client = self.client
        ex = self.ex
        ex.response_type = "websocket"
        self.tunnel_open = True
        lease = ex.lease
        if lease is not None:  # the tunnel keeps the process slot until it closes
            ex.lease = None
            self.lease = lease
            lease.tunnel_opened()
        if client.state.activity is not None:
            client.state.activity.websocket_opened()
        pending = client.start_tunnel(self)
        client.finish_tunnel_exchange(ex)
        ws_idle = ex.snapshot.config.limits.websocket_idle_timeout
        if ws_idle:
            client.arm_deadline(_WEBSOCKET, ws_idle)
        if pending and self.conn is not None:
            self.conn.write(pending)
        if client.client_eof:  # the client's FIN came before the 101: pass it on now
            self.client_eof()
        if rest:
            client.write(rest)

    def upstream_tunnel_data(self, data: bytes) -> None:
        self.client.write(data)
        self._touch_tunnel()

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.upstream_flush()
        conn = self.conn
        self.conn = None
        if self.tunnel_open:
            self._close_tunnel_accounting()
            self.client.close()
            return
        ex = self.ex
        if (not ex.head_sent and conn is not None and conn.reused and self.attempts == 0
                and ex.method in IDEMPOTENT and not ex.chunked and not ex.content_length):
            self.attempts += 1  # a stale keep-alive connection: one fresh try
            self.connecting = self.client.state.spawn(self._connect())
            return
        self._upstream_failed(f"backend closed the connection: {exc}" if exc else
                              "backend closed the connection")

    def upstream_pause_writing(self) -> None:
        self.client.pause_reading(PAUSE_UPSTREAM)

    def upstream_resume_writing(self) -> None:
        self.client.resume_reading(PAUSE_UPSTREAM)

    # --- tunnel (client side, after 101) -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.conn.write(data)
            self._touch_tunnel()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self._close_tunnel_accounting()

    def client_eof(self) -> None:
        """The client half-closed the tunnel: half-close the backend side too."""
        if self.conn is not None:
            self.conn.write_eof()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.pause_reading()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.resume_reading()

    def _touch_tunnel(self) -> None:
        ws_idle = self.ex.snapshot.config.limits.websocket_idle_timeout
        if ws_idle:
            self.client.extend_deadline(_WEBSOCKET, ws_idle)

    def _close_tunnel_accounting(self) -> None:
        if not self.tunnel_open:
            return
        self.tunnel_open = False
        state = self.client.state
        lease = self.lease
        if lease is not None:
            self.lease = None
            lease.tunnel_closed()
        if state.activity is not None:
            state.activity.websocket_closed()
        self.client.end_tunnel(self)

    def _upstream_failed(self, reason: str) -> None:
        log.warning("upstream %s:%d failed: %s", self.key[0], self.key[1], reason)
        if self.conn is not None:
            self.conn.abort()
            self.conn = None
        self.client.fail(self.ex, Failure.BAD_RESPONSE, reason)


def _connection_named(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    for name, value in headers:
        if len(name) == 10 and wire.lower_name(name) == b"connection":
            return wire.connection_tokens(value)
    return _NO_DROP
