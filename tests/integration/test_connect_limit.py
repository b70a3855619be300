"""Connects to one backend are bounded and the rest queue for a connection (issue 16, c1000).

A real backend whose listen queue is tiny (listen(8)) records its accept-queue depth before
every accept (TCP_INFO on a listening socket gives the queue length, Linux). The queue only
shrinks by accepts, so its largest value is seen just before one: a depth that stayed below
the backlog means no SYN was dropped, so no connect waited for a 1 s retransmission. A burst
of requests through the pool must all get 200 with the depth never above the connect limit.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvloop

from navigator.proxy.connectqueue import CONNECT_LIMIT, ConnectQueueTimeout
from navigator.proxy.upstream import PoolKey, UpstreamConnection, UpstreamPool
from tests.helpers import run_navigator, write_config
from tests.integration.test_upstream_quickack import Sink

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="TCP_INFO on a listening socket is Linux-only")

REQUEST = b"GET /burst HTTP/1.1\r\nHost: backend\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BURST = CONNECT_LIMIT + 100


class TinyBackend:
    """listen(backlog) on loopback; one thread accepts, one thread per connection answers."""

    def __init__(self, backlog: int) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.port: int = self.listener.getsockname()[1]
        self.max_depth = 0
        self.accepted = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []

    def depth(self) -> int:
        info = self.listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, 24)[0])  # tcpi_unacked: accept queue length

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if not ready:
                continue
            self.max_depth = max(self.max_depth, self.depth())
            conn, _ = self.listener.accept()
            self.accepted += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                with self._lock:
                    self.requests += 1
                conn.sendall(RESPONSE)

    @contextmanager
    def running(self) -> Iterator[TinyBackend]:
        acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            self._stop.set()
            acceptor.join(5)
            for thread in self._threads:
                thread.join(5)
            for conn in self._conns:
                conn.close()
            self.listener.close()


async def one_request(pool: UpstreamPool, key: PoolKey) -> int:
    conn = pool.acquire(key) or await pool.connect(key, 10.0)
    sink = StatusSink()
    conn.begin(sink, head_request=False)
    conn.writelines([REQUEST])
    await asyncio.wait_for(sink.done.wait(), 10.0)
    return sink.status


class StatusSink(Sink):
    status = 0

    def upstream_head(self, status: int, headers: list[tuple[bytes, bytes]], chunked: bool,
                      content_length: int | None, keep_alive: bool) -> None:
        self.status = status
        super().upstream_head(status, headers, chunked, content_length, keep_alive)


@pytest.mark.parametrize(("limit", "burst"), [(1, 40), (4, 200)])
def test_a_burst_stays_within_the_limit_and_all_succeed(limit: int, burst: int) -> None:
    backend = TinyBackend(backlog=8)

    async def scenario() -> tuple[list[int], int]:
        pool = UpstreamPool(asyncio.get_running_loop(), connect_limit=limit)
        key = ("127.0.0.1", backend.port, False)
        try:
            statuses = await asyncio.gather(*(one_request(pool, key) for _ in range(burst)))
            return statuses, pool.waiting(key)
        finally:
            pool.close_all()

    with backend.running():
        statuses, waiting = uvloop.run(scenario())
    assert statuses == [200] * burst
    assert waiting == 0
    assert backend.requests == burst
    assert 1 <= backend.max_depth <= limit
    assert backend.accepted <= burst


# --- the queue's deadline and cancellation, with an opener the test controls ---------------
class HeldOpener:
    """Opens a connection only when the test says so (a backend slow to accept)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.opened = 0

    async def __call__(self, pool: UpstreamPool, key: PoolKey, deadline: float
                       ) -> UpstreamConnection:
        await asyncio.wait_for(self.gate.wait(), deadline)
        self.opened += 1
        return UpstreamConnection(pool, key)


KEY: PoolKey = ("127.0.0.1", 9, False)


def answered(conn: UpstreamConnection) -> None:
    """What the first response head does to a new connection: its connect slot comes free."""
    assert conn.probation is not None
    conn.probation.end()
    conn.probation.end()  # once only


def test_a_waiter_past_the_connect_timeout_gets_a_queue_timeout() -> None:
    async def scenario() -> tuple[str, int]:
        opener = HeldOpener()
        pool = UpstreamPool(asyncio.get_running_loop(), opener, connect_limit=1)
        first = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        with pytest.raises(ConnectQueueTimeout) as caught:
            await pool.connect(KEY, 0.05)
        waiting = pool.waiting(KEY)
        opener.gate.set()
        answered(await first)
        return str(caught.value), waiting

    message, waiting = uvloop.run(scenario())
    assert "came free within" in message
    assert waiting == 0


def test_a_released_connection_goes_to_the_first_waiter() -> None:
    async def scenario() -> tuple[bool, bool, int, int]:
        opener = HeldOpener()
        pool = UpstreamPool(asyncio.get_running_loop(), opener, connect_limit=1)
        first = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        queued = pool.waiting(KEY)
        released = UpstreamConnection(pool, KEY)
        pool.release(released)  # another exchange finished on a connection of this backend
        got = await second
        opener.gate.set()
        answered(await first)
        return got is released, got.reused, queued, opener.opened

    handed, reused, queued, opened = uvloop.run(scenario())
    assert (handed, reused, queued, opened) == (True, True, 1, 1)


def test_a_new_connection_holds_its_slot_until_its_first_head() -> None:
    async def scenario() -> tuple[int, int, int]:
        opener = HeldOpener()
        opener.gate.set()
        pool = UpstreamPool(asyncio.get_running_loop(), opener, connect_limit=1)
        first = await pool.connect(KEY, 30.0)
        second = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        held = pool.waiting(KEY)  # connected, but not yet answered: still counts
        answered(first)
        answered(await second)
        return held, pool.waiting(KEY), opener.opened

    assert uvloop.run(scenario()) == (1, 0, 2)


def test_a_cancelled_waiter_leaves_and_its_slot_passes_on() -> None:
    async def scenario() -> tuple[int, int, int]:
        opener = HeldOpener()
        pool = UpstreamPool(asyncio.get_running_loop(), opener, connect_limit=1)
        first = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(pool.connect(KEY, 30.0))
        third = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)
        before = pool.waiting(KEY)
        gone.cancel()  # its client went away
        await asyncio.sleep(0)
        after_cancel = pool.waiting(KEY)
        opener.gate.set()
        answered(await first)
        answered(await asyncio.wait_for(third, 5.0))
        return before, after_cancel, opener.opened

    assert uvloop.run(scenario()) == (2, 1, 2)


def test_a_slot_handed_to_a_waiter_cancelled_in_the_same_turn_is_not_lost() -> None:
    async def scenario() -> tuple[int, bool, int]:
        opener = HeldOpener()
        opener.gate.set()
        pool = UpstreamPool(asyncio.get_running_loop(), opener, connect_limit=1)
        first = await pool.connect(KEY, 30.0)
        gone = asyncio.ensure_future(pool.connect(KEY, 30.0))
        third = asyncio.ensure_future(pool.connect(KEY, 30.0))
        await asyncio.sleep(0)  # both wait for the one slot
        answered(first)  # the slot is handed to `gone` ...
        gone.cancel()  # ... whose client leaves before it runs again
        answered(await asyncio.wait_for(third, 5.0))  # the slot went on to `third`
        await asyncio.sleep(0)
        return opener.opened, gone.cancelled(), pool.waiting(KEY)

    assert uvloop.run(scenario()) == (2, True, 0)


# --- through the server -------------------------------------------------------------------------
def test_a_burst_through_navigator_all_succeed(tmp_path: Path) -> None:
    """More clients at once than the default limit, through the real server, against a
    backend whose queue holds just a little more than that limit."""
    backend = TinyBackend(backlog=CONNECT_LIMIT + 8)
    config = write_config(tmp_path, f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
routes:
  reverse_proxies:
    - name: api
      prefix: /burst
      target: http://127.0.0.1:{backend.port}
""")

    async def burst(port: int, count: int) -> list[bytes]:
        async def one() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /burst HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            line = await asyncio.wait_for(reader.readline(), 20.0)
            writer.close()
            return line

        return await asyncio.gather(*(one() for _ in range(count)))

    with backend.running(), run_navigator(config) as nav:
        lines = uvloop.run(burst(nav.port, BURST))
    assert [line.split(b" ")[1] for line in lines] == [b"200"] * BURST
    assert backend.max_depth <= CONNECT_LIMIT
