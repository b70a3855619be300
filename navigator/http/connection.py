"""The client connection: one asyncio Protocol per accepted connection, the one
implementation of `http.client.Client`.

Room: I/O. Feeds the socket's bytes to its `RequestReader` (limits and framing live there),
keeps the request queue (HTTP/1.1 keep-alive and pipelining, responses strictly in request
order), hands each request to `web.handlers.handle` when its turn comes, writes responses,
and owns flow control in both directions and the connection's deadline. Its life is one
`Phase` (open, error pending, tunnel, linger, closed) changed only by `_enter`.

Invariants:
- no exception escapes an asyncio callback: parse errors become a 4xx then close, handler
  errors a 5xx (or a close when the response has begun);
- at most one request is being answered at a time; a pipelined request whose head arrives
  meanwhile waits in `_pipeline` and reading pauses until it is its turn;
- reading pauses for any of several reasons (bitmask) and resumes only when all are clear;
- deadlines are data (a `Deadline` kind and a loop time) checked by the server's sweep, so a
  request arms no timer;
- handlers, the proxy, CGI and cable reach it only through `Client`; none reads its fields.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, cast

from navigator.http import wire
from navigator.http.client import Client, Deadline, Tunnel, hold_body
from navigator.http.exchange import Exchange
from navigator.http.failure import Failure, status_of
from navigator.http.flow import (
    BODY_BUFFER_LIMIT,
    PAUSE_BUFFER,
    PAUSE_PIPELINE,
    PAUSE_TUNNEL,
    write_parts,
)
from navigator.http.reader import ParseError, RequestReader, refused_facts, request_facts
from navigator.web.handlers import handle

if TYPE_CHECKING:
    from navigator.config.runtime import Limits
    from navigator.http.state import ServerState

log = logging.getLogger("navigator.protocol")


class Phase(enum.Enum):
    """The connection's life; `_NEXT` lists every transition, `HttpConnection._enter` makes
    them. Orthogonal to it: the request queue (`_current`, `_pipeline`), the client's
    half-close (`_eof`), read pauses (a bitmask of reasons) and the deadline."""

    OPEN = "open"  # reading requests, answering them in request order
    ERROR_PENDING = "error_pending"  # a pipelined request was bad: answer those before it,
    # then its error, then close; reading has stopped
    TUNNEL = "tunnel"  # switched protocols: client bytes go to `tunnel`
    LINGER = "linger"  # answered early: discard the rest of the body until FIN or deadline
    CLOSED = "closed"

    # Members are singletons compared by identity: hash them by identity too, in C (Enum's
    # own __hash__ is Python code, ~100 ns per `_NEXT` lookup on the close path).
    __hash__ = object.__hash__


_NEXT: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.OPEN: frozenset({Phase.ERROR_PENDING, Phase.TUNNEL, Phase.LINGER, Phase.CLOSED}),
    Phase.ERROR_PENDING: frozenset({Phase.CLOSED}),
    Phase.TUNNEL: frozenset({Phase.OPEN, Phase.CLOSED}),  # OPEN: the tunnel's backend left
    Phase.LINGER: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


# Enum members by module name: `Phase.OPEN` is a class-attribute lookup of ~60 ns on
# Python 3.11, a module global ~15 ns, and the request path reads these a dozen times.
# Final: compiled, each is a C static instead of a lookup in the module's dict.
_OPEN: Final = Phase.OPEN
_ERROR_PENDING: Final = Phase.ERROR_PENDING
_TUNNEL: Final = Phase.TUNNEL
_LINGER: Final = Phase.LINGER
_CLOSED: Final = Phase.CLOSED
_NO_DEADLINE: Final = Deadline.NONE
_HEADER: Final = Deadline.HEADER
_KEEPALIVE: Final = Deadline.KEEPALIVE
_BODY: Final = Deadline.BODY
_UPSTREAM: Final = Deadline.UPSTREAM
_LINGERING: Final = Deadline.LINGER


class HttpConnection(Client):
    """One client connection."""

    __slots__ = (
        "_current", "_eof", "_error_status", "_limits", "_pipeline", "_read_paused",
        "_reader", "_tunnel_rest", "closed", "deadline", "deadline_kind", "peer_ip",
        "phase", "state", "transport", "tunnel", "write_paused",
    )

    def __init__(self, state: ServerState, peer_ip: str = "") -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self._limits: Limits = state.snapshot.config.limits
        self._reader = RequestReader(self, self._limits)
        self._current: Exchange | None = None
        self._pipeline: list[Exchange] = []  # a few at most: reading pauses meanwhile
        self._read_paused = 0
        self._tunnel_rest = b""
        self._eof = False
        self._error_status = 0  # ERROR_PENDING: the status to answer (0: close silently)
        self.tunnel: Tunnel | None = None  # takes the client's bytes once upgraded
        self.write_paused = False
        self.phase = _OPEN
        self.closed = False  # phase is CLOSED (a plain field: read on every write)
        self.peer_ip = peer_ip  # the client's host from accept ("": connection_made asks)
        self.deadline = 0.0
        self.deadline_kind = _NO_DEADLINE

    # --- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        if not self.peer_ip:
            self.peer_ip = _peer_host(transport)
        self.state.connections.add(self)
        self.arm_deadline(_HEADER, self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:  # usually close() came first
            self._enter(_CLOSED)
        self.state.connections.discard(self)
        if self.tunnel is not None:
            self.tunnel.connection_lost(exc)
            self.tunnel = None
        current = self._current
        if current is not None:
            handler = current.handler
            if handler is not None:
                handler.client_lost()
            if not current.head_sent:
                current.status = status_of(Failure.CLIENT_GONE)
                current.response_type = current.response_type or "client_closed"
            self.state.request_done(current)
            self._current = None
        self._pipeline.clear()
        self._reader.close()  # no cycle left: see RequestReader.close

    def data_received(self, data: bytes) -> None:
        if self.phase is not _OPEN:
            if self.tunnel is not None:  # TUNNEL, LINGER
                self.tunnel.data_received(data)
            return  # ERROR_PENDING: the stream is broken; answer in-flight requests, then close
        cur = self._current
        if cur is not None and cur.upgrade and cur.request_complete:
            self.tunnel_bytes(data)  # for the tunnel, if the backend says 101
            return
        try:
            rest = self._reader.feed(data)
        except ParseError as err:
            log.info("bad request from %s: %s", self.peer_ip, err.reason)
            self._abort_with(err.status)
            return
        except wire.HttpError as refused:  # own name: mypyc types `err` by its first binding
            log.info("refused request from %s: %s", self.peer_ip, refused.reason)
            self._abort_with(refused.status)
            return
        except Exception:  # a bug in a handler must not kill the loop
            log.exception("error while handling request from %s", self.peer_ip)
            self._abort_with(status_of(Failure.HANDLER_ERROR))
            return
        if self.deadline_kind is _KEEPALIVE and self._reader.parsing is not None:
            # A head begun while idle and not complete: header_timeout from now (a head in
            # one packet reads no clock; a complete one ended this deadline in _begin).
            self.arm_deadline(_HEADER, self._limits.header_timeout)
        if rest is not None:
            self.data_received(rest)

    # --- RequestReader events (ReaderSink) -----------------------------------------------------
    def request_begin(self) -> Exchange:  # its header deadline: see data_received
        return Exchange(time.time(), self.state.snapshot)  # the request's one snapshot read

    def request_head(self, ex: Exchange) -> None:
        if self._current is None:
            self._current = ex
            self._begin(ex)
        else:
            self._pipeline.append(ex)
            self.pause_reading(PAUSE_PIPELINE)

    def request_body(self, ex: Exchange, data: bytes) -> None:
        if ex is self._current and ex.handler is not None:
            ex.handler.request_body(data)
        else:
            hold_body(self, ex, data)
        if self.deadline_kind is _BODY:
            self.deadline = self.state.clock() + self._limits.body_timeout

    def request_end(self, ex: Exchange) -> None:
        if ex is self._current:
            if ex.handler is not None:
                ex.handler.request_end()
            if self.deadline_kind is _BODY:
                self.deadline_kind = _NO_DEADLINE

    def tunnel_bytes(self, data: bytes) -> None:
        """Client bytes after an upgrade request, kept for the tunnel if the backend says 101."""
        self._tunnel_rest += data
        if len(self._tunnel_rest) > BODY_BUFFER_LIMIT:
            self.pause_reading(PAUSE_TUNNEL)

    def eof_received(self) -> bool | None:
        # Half-close from the client: finish the current response, then close.
        self._eof = True
        parsing = self._reader.parsing
        if parsing is not None:  # a request cut short: its body can never complete
            if parsing is self._current and parsing.handler is not None:
                parsing.handler.client_lost()
            self.close()
            return None
        tunnel = self.tunnel
        client_eof = getattr(tunnel, "client_eof", None)
        if client_eof is not None:
            client_eof()  # pass the half-close on; the backend ends the tunnel
            return True
        if self._current is None and self.transport is not None:  # idle, or a tunnel
            self.transport.close()
            return None
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        cur = self._current
        if cur is not None and cur.handler is not None:
            cur.handler.client_paused()
        elif self.tunnel is not None:
            self.tunnel.pause_writing()

    def resume_writing(self) -> None:
        self.write_paused = False
        cur = self._current
        if cur is not None and cur.handler is not None:
            cur.handler.client_resumed()
        elif self.tunnel is not None:
            self.tunnel.resume_writing()

    # --- request start -------------------------------------------------------------------
    def _begin(self, ex: Exchange) -> None:
        """The head is complete and it is this request's turn: route and act on it."""
        if ex.request_complete:
            self.deadline_kind = _NO_DEADLINE
        else:
            self.arm_deadline(_BODY, self._limits.body_timeout)
        ex.request_id = request_facts(ex, self.peer_ip) or self.state.new_request_id()
        handle(self, ex)

    def answering(self, ex: Exchange) -> bool:
        """`ex` is the exchange being answered (not finished, connection open)."""
        return ex is self._current and not self.closed

    # --- responding ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def writelines(self, data: Sequence[bytes | memoryview]) -> None:
        """One write per message: uvloop's writelines sends each part separately."""
        if self.transport is not None and not self.closed:
            write_parts(self.transport, data)

    def respond_bytes(self, ex: Exchange, status: int, data: bytes, body_len: int,
                      response_type: str) -> None:
        """Write a complete prebuilt response and finish the exchange."""
        ex.status = status
        ex.response_type = ex.response_type or response_type
        ex.head_sent = True
        ex.bytes_sent = body_len
        self.write(data)
        self.finish(ex)

    def _respond_error(self, ex: Exchange, status: int, message: str | None = None) -> None:
        ex.keep_alive = False
        data = wire.error_response(status, message)
        head_end = data.index(b"\r\n\r\n") + 4
        if ex.method == b"HEAD":  # no content in an answer to HEAD (RFC 9110 §9.3.2)
            data = data[:head_end]
        self.respond_bytes(ex, status, data, len(data) - head_end, "error")

    def fail(self, ex: Exchange, failure: Failure, reason: str = "") -> None:
        """An error after dispatch: an error page if nothing was sent yet, else a close."""
        if ex.error == "":
            ex.error = reason
        if ex is not self._current:
            return
        if not ex.head_sent:
            self._respond_error(ex, status_of(failure))
        else:
            ex.keep_alive = False
            self.finish(ex)

    def finish(self, ex: Exchange) -> None:
        """The response is complete: log, then close or move to the next request."""
        if ex is not self._current:
            return
        ex.handler = None
        self._current = None
        self.state.request_done(ex)
        if self.phase is _ERROR_PENDING and not self._pipeline:
            if self._error_status:
                self.write(wire.error_response(self._error_status))
            self.close()
            return
        if not (ex.keep_alive and ex.request_complete) or self._eof or self.state.shutting_down:
            if not ex.request_complete and not self._eof:
                self._linger()  # a body still arriving that nobody wants
                return
            self.close()
            return
        if self._pipeline:
            nxt = self._pipeline.pop(0)
            if not self._pipeline:
                self.resume_reading(PAUSE_PIPELINE)
            self._current = nxt
            # On the next loop turn: by then the backend connection that just answered is back
            # in the pool (it is released after telling us), so the next request reuses it.
            self.state.loop.call_soon(self._begin_pipelined, nxt)
        else:
            self.resume_reading(PAUSE_BUFFER)
            self.arm_deadline(_KEEPALIVE, self._limits.keepalive_timeout)

    def _begin_pipelined(self, ex: Exchange) -> None:
        if self._current is not ex or self.closed:
            return
        try:
            self._begin(ex)
        except Exception:  # a bug in a handler must not kill the loop
            log.exception("error while handling request from %s", self.peer_ip)
            self._abort_with(status_of(Failure.HANDLER_ERROR))

    def finish_tunnel_exchange(self, ex: Exchange) -> None:
        """The 101 went out: the exchange is logged now, the connection stays a tunnel."""
        if ex is self._current:
            ex.handler = None
            self._current = None
            self.state.request_done(ex)

    # --- flow control and lifecycle ---------------------------------------------------------
    def pause_reading(self, reason: int) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._read_paused |= reason

    def resume_reading(self, reason: int) -> None:
        if not self._read_paused & reason:
            return
        self._read_paused &= ~reason
        if not self._read_paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def take_buffered_body(self, ex: Exchange) -> list[bytes]:
        """Hand over what arrived before a handler was ready, and resume reading."""
        chunks = ex.body_buffer or []
        ex.body_buffer = None
        ex.body_buffered = 0
        self.resume_reading(PAUSE_BUFFER)
        return chunks

    def start_tunnel(self, tunnel: Tunnel) -> bytes:
        """Switch to raw byte relay; returns client bytes received after the upgrade head."""
        self.tunnel = tunnel
        self._enter(_TUNNEL)
        self.deadline_kind = _NO_DEADLINE
        rest, self._tunnel_rest = self._tunnel_rest, b""
        self.resume_reading(PAUSE_TUNNEL)
        return rest

    @property
    def client_eof(self) -> bool:
        """The client half-closed (its FIN arrived)."""
        return self._eof

    def refuse_upgrade(self, ex: Exchange) -> None:
        """The backend did not switch protocols: parse what followed as new requests."""
        ex.upgrade = False
        rest, self._tunnel_rest = self._tunnel_rest, b""
        self._reader.restart()
        self.resume_reading(PAUSE_TUNNEL)
        if rest:
            self.state.loop.call_soon(self.data_received, rest)

    def end_tunnel(self, tunnel: Tunnel) -> None:
        """The tunnel's other side is gone: stop relaying to it, read again."""
        if self.tunnel is tunnel:
            self.tunnel = None
            self._enter(_OPEN)
        self.resume_reading(PAUSE_TUNNEL)

    def extend_deadline(self, kind: Deadline, seconds: float) -> None:
        """Push the deadline out if it is still of `kind` (traffic on a websocket)."""
        if self.deadline_kind is kind:
            self.deadline = self.state.clock() + seconds

    def clear_deadline(self) -> None:
        self.deadline_kind = _NO_DEADLINE

    def arm_deadline(self, kind: Deadline, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.state.clock() + seconds

    def expire(self, now: float) -> None:
        """Called by the server sweep when `deadline` has passed."""
        kind = self.deadline_kind
        if not kind or now < self.deadline:
            return
        self.deadline_kind = _NO_DEADLINE
        cur = self._current
        if kind is _HEADER or kind is _KEEPALIVE:
            parsing = self._reader.parsing
            if kind is _HEADER and (parsing is not None and parsing.headers):
                log.info("header timeout from %s", self.peer_ip)
                self.write(wire.error_response(408))
            self.close()
        elif kind is _UPSTREAM and cur is not None:
            log.warning("upstream response timeout for %s", cur.target[:200])
            if cur.handler is not None:
                cur.handler.client_lost()
            self.fail(cur, Failure.TIMEOUT, "upstream timeout")
        else:
            log.info("%s timeout from %s", kind.name.lower(), self.peer_ip)
            if cur is not None and cur.handler is not None:
                cur.handler.client_lost()
            self.close()

    def _linger(self) -> None:
        """Close after an early answer while the client still sends its body: half-close,
        then discard what arrives until the client's FIN or LINGER_TIMEOUT. Closing with
        unread bytes makes the kernel send a reset, which can destroy the answer before the
        client reads it (nginx's lingering_close, RFC 9112 §9.6)."""
        transport = self.transport
        if transport is None or self.closed or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        self.tunnel = _Discard(self)
        self._enter(_LINGER)
        self._read_paused = 0
        transport.resume_reading()
        self.arm_deadline(_LINGERING, LINGER_TIMEOUT)

    def _enter(self, phase: Phase) -> None:
        """The one place the phase changes; a transition not in `_NEXT` is ignored (closing
        twice, a tunnel starting on a connection already closed)."""
        if phase in _NEXT[self.phase]:
            self.phase = phase
            self.closed = phase is _CLOSED

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self._enter(_CLOSED)
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self._enter(_CLOSED)
            self.transport.abort()

    def shutdown_idle(self) -> bool:
        """Close now if between requests (graceful shutdown); True if closed."""
        if self._current is None and (self.tunnel is None or self.phase is _LINGER):
            self.close()
            return True
        return False

    def describe(self, now: float) -> str:
        """The connection's state in one line (server's SIGUSR1 dump); no header values."""
        return _describe(self, now)

    # --- errors --------------------------------------------------------------------------
    def _abort_with(self, status: int) -> None:
        cur = self._current
        parsing = self._reader.parsing
        if cur is not None and cur.request_complete and parsing is not cur:
            # The error belongs to a later pipelined message: answer what came before it first.
            self._error_status = status if cur.keep_alive else 0
            self._enter(_ERROR_PENDING)
            self.pause_reading(PAUSE_PIPELINE)
            return
        if cur is not None and cur.head_sent:
            self.abort()
            return
        if cur is not None and cur.handler is not None:
            cur.handler.client_lost()
        data = wire.error_response(status)
        self.write(data)
        answered = cur if cur is not None else parsing
        if answered is not None:  # this error is its answer: say so in its access line
            answered.status = status
            answered.response_type = answered.response_type or "error"
            answered.head_sent = True
            answered.bytes_sent = len(data) - data.index(b"\r\n\r\n") - 4
            if cur is None:  # never dispatched: log it now (connection_lost logs `cur`)
                self._reader.forget_parsing()
                answered.request_id = (refused_facts(answered, self.peer_ip)
                                       or self.state.new_request_id())
                self.state.request_done(answered)
        self.close()


def _peer_host(transport: asyncio.BaseTransport) -> str:
    """The client's host, asked of the transport (a connection not made by our acceptor)."""
    peer = transport.get_extra_info("peername")
    return peer[0] if isinstance(peer, tuple) else "127.0.0.1"


LINGER_TIMEOUT: Final = 5.0  # seconds to discard an unwanted request body before closing


class _Discard:
    """Stands in for a tunnel while lingering: swallows the rest of an unwanted body."""

    __slots__ = ("client",)

    def __init__(self, client: HttpConnection) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        """Discarded: nobody wants this body."""

    def connection_lost(self, exc: BaseException | None) -> None:
        """Nothing to release."""

    def pause_writing(self) -> None:
        """Nothing is written while lingering."""

    def resume_writing(self) -> None:
        """Nothing is written while lingering."""

    def client_eof(self) -> None:
        self.client.close()


def _describe(self: HttpConnection, now: float) -> str:
    """HttpConnection.describe, kept out of the class body (diagnostics only)."""
    cur = self._current
    parts = [f"peer={self.peer_ip}", f"phase={self.phase.value}", f"closed={self.closed}",
             f"eof={self._eof}",
             f"read_paused={self._read_paused}", f"write_paused={self.write_paused}",
             f"deadline={self.deadline_kind.name.lower() if self.deadline_kind else '-'}"
             + (f"({self.deadline - now:+.1f}s)" if self.deadline_kind else ""),
             f"pipeline={len(self._pipeline)}", f"raw_left={self._reader.raw_left}",
             f"tunnel={type(self.tunnel).__name__ if self.tunnel is not None else '-'}"]
    if cur is not None:
        parts += [f"request={cur.method.decode('latin-1')} "
                  f"{cur.target[:120].decode('latin-1')}",
                  f"age={time.time() - cur.started:.1f}s",
                  f"complete={cur.request_complete}", f"head_sent={cur.head_sent}",
                  f"status={cur.status}", f"sent={cur.bytes_sent}",
                  f"handler={type(cur.handler).__name__ if cur.handler else '-'}"]
        describe = getattr(cur.handler, "describe", None)
        if describe is not None:
            parts.append(describe())
    elif self._reader.parsing is not None:
        parts.append("reading a request head")
    else:
        parts.append("idle")
    return " ".join(parts)
