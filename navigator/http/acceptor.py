"""Listening sockets that accept client connections in batches.

Room: I/O, owned by `server` (which alone opens and closes listeners). It moves accepted
sockets onto the loop and calls the protocol factory; it decides nothing about requests.

Why not the loop's own server: libuv accepts one connection per loop iteration since 1.45
(libuv PR #3696, "don't accept() connections in a loop"), and uvloop inherits that. Under load
an iteration takes milliseconds, so a burst of 1,000 connects waited seconds in the kernel's
accept queue, their requests already sent: measured here at 1,000 keep-alive clients, p99
1.8 s while ~900 connections were still unaccepted 0.2 s into the run and ~730 after 3 s
(`ss -ltn` Recv-Q), with no SYN drop anywhere. Draining the queue per wake-up is what nginx
and asyncio's own selector loop do.

Invariants:
- sockets are bound exactly as `loop.create_server` binds them (every address of the host,
  SO_REUSEADDR), then listened on here; the loop's server object never serves;
- one wake-up accepts at most `ACCEPT_BATCH` connections, so a flood cannot starve the
  requests already accepted;
- a failing accept (out of file descriptors or memory) leaves the socket readable, so the
  reader is removed and added back after `RETRY_AFTER_ERROR` instead of spinning;
- `close` stops accepting at once; connections already accepted are not touched;
- the protocol factory gets the client's address from accept itself (no getpeername later).
"""

from __future__ import annotations

import _socket
import asyncio
import functools
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("navigator.server")

ACCEPT_BATCH = 256
"""Connections accepted per wake-up (the kernel's accept queue is drained over a few)."""
RETRY_AFTER_ERROR = 0.1
"""Seconds without accepting after EMFILE/ENFILE/ENOBUFS/ENOMEM (a readable socket would spin)."""

ProtocolFactory = Callable[[str], asyncio.Protocol]
"""Makes the protocol of an accepted connection; the argument is the client's host."""


class AcceptedSocket(socket.socket):
    """An accepted connection's socket, as `connect_accepted_socket` reads it. `family` and
    `type` are the plain ints of the C socket: the standard properties convert them to enums
    on every read, and uvloop reads them five times per connection (a third of the Python
    work of accepting one, measured with cProfile)."""

    __slots__ = ()
    family = _socket.socket.family  # type: ignore[assignment]
    type = _socket.socket.type  # type: ignore[assignment]


class Acceptor:
    """One listening socket; `sockets`, `close` and `wait_closed` as `asyncio.Server` has."""

    __slots__ = ("_closed", "_factory", "_loop", "_retry", "sock")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: ProtocolFactory) -> None:
        self._loop = loop
        self._factory = factory
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        self.sock = sock
        sock.setblocking(False)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self.sock,)

    def start(self) -> None:
        self._retry = None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._accept_ready)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: `close` closes the socket at once (asyncio.Server's shape)."""

    def _accept_ready(self) -> None:
        sock = self.sock
        loop = self._loop
        factory = self._factory
        family = sock.family
        for _ in range(ACCEPT_BATCH):
            try:
                # What socket.accept does, minus its enum-converting socket object; the
                # listener is non-blocking, so its timeout rule leaves nothing else to do.
                fd, address = sock._accept()  # type: ignore[attr-defined]
                conn = AcceptedSocket(family, socket.SOCK_STREAM, 0, fd)
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM
                log.error("accept failed: %s; accepting again in %.1fs", exc, RETRY_AFTER_ERROR)
                loop.remove_reader(sock.fileno())
                self._retry = loop.call_later(RETRY_AFTER_ERROR, self.start)
                return
            peer = address[0] if isinstance(address, tuple) else ""
            adopt(loop, functools.partial(factory, peer), conn)


def adopt(loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
          conn: socket.socket) -> None:
    """Turn an accepted socket into a transport + protocol, without a Task per connection.

    `connect_accepted_socket` builds the transport and schedules `connection_made` before its
    first await; it then only waits for that call. The coroutine is resumed from the waiter's
    callback (a Task would cost its creation and two steps per connection). It must not be
    dropped half-way: closing it there closes the new transport."""
    coro = loop.connect_accepted_socket(factory, conn)
    try:
        waiter = coro.send(None)
    except StopIteration:
        return
    except (OSError, ValueError) as exc:
        log.warning("cannot adopt an accepted connection: %s", exc)
        conn.close()
        return
    waiter.add_done_callback(lambda _: _finish(coro))


def _finish(coro: Coroutine[Any, Any, object]) -> None:
    try:
        coro.send(None)
    except StopIteration:
        return
    except Exception as exc:  # the transport failed before connection_made: it is closed
        log.debug("accepted connection failed at once: %s", exc)
        return
    coro.close()  # never: connect_accepted_socket awaits only its waiter


async def listen(loop: asyncio.AbstractEventLoop, factory: ProtocolFactory, host: str | None,
                 port: int, *, backlog: int) -> list[Acceptor]:
    """Bind as `loop.create_server` would, then accept here (see the module docstring)."""
    server = await loop.create_server(lambda: factory(""), host, port, reuse_address=True,
                                      backlog=backlog, start_serving=False)
    socks: list[socket.socket] = []
    try:
        socks.extend(socket.socket(fileno=os.dup(bound.fileno())) for bound in server.sockets)
        for sock in socks:
            sock.listen(backlog)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    finally:
        server.close()  # its own descriptors; ours (dups) keep the sockets bound
    acceptors = [Acceptor(loop, sock, factory) for sock in socks]
    for acceptor in acceptors:
        acceptor.start()
    return acceptors
