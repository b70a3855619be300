"""Python cost of one request on navigator's hot path, without sockets or other processes.

Drives the real `HttpConnection`, routing, proxy and upstream code with in-memory transports:
the request bytes go into `data_received`, the proxied request comes out of a pooled fake
backend connection, a canned backend response goes back in, and the client's bytes come out.
What remains is exactly the per-request Python work (parse, route, rebuild heads, relay,
account), measured as CPU time per request. It is repeatable on a noisy machine where wrk
runs are not, and `--profile` shows where the time goes.

    .venv/bin/python benchmarks/bench_hotpath.py             # table of µs per request
    .venv/bin/python benchmarks/bench_hotpath.py --profile proxy-100b
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fakes

from navigator.config.loader import load_config
from navigator.http.connection import HttpConnection
from navigator.http.state import ServerState
from navigator.ops.accesslog import AccessLogger
from navigator.ops.metrics import Metrics
from navigator.ops.observer import RequestRecorder
from navigator.proxy.upstream import UpstreamConnection, UpstreamPool
from navigator.web.filecache import FileCache
from navigator.web.snapshot import build_snapshot
from tests.fakes import FixedTenants, MemoryTransport

BACKEND_PORT = 18999
TENANT_PORT = 19001

BROWSER_HEADERS = (
    b"Host: example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef\r\n"
    b"Referer: http://example.com/sam/list1/\r\n"
)


def backend_response(body: bytes) -> bytes:
    """What nginx answers for a static file (its usual headers)."""
    return (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 29 Nov 2026 06:00:00 GMT\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
            b"Last-Modified: Sun, 29 Nov 2026 05:00:00 GMT\r\nConnection: keep-alive\r\n"
            b"ETag: \"6929e1a0-64\"\r\nAccept-Ranges: bytes\r\n\r\n" % len(body)) + body


CONFIG = """
server:
  listen: "127.0.0.1:0"
  static:
    public_dir: {public}
logging:
  access_log: {access_log}
applications:
  framework: {{command: "true"}}
  tenants:
    - path: /sam/list1/
routes:
  reverse_proxies:
    - name: files
      prefix: /files/
      target: http://127.0.0.1:{port}
"""


class Rig:
    """One client connection and one pooled backend connection per backend address."""

    def __init__(self, folder: Path, access_log: bool, loop: asyncio.AbstractEventLoop) -> None:
        public = folder / "public"
        public.mkdir(exist_ok=True)
        (public / "1k.txt").write_bytes(os.urandom(1024))
        cfg = folder / "navigator.yml"
        cfg.write_text(CONFIG.format(public=public, access_log=str(access_log).lower(),
                                     port=BACKEND_PORT))
        config = load_config(cfg)
        pool = UpstreamPool(loop)
        self.state = ServerState(loop=loop, snapshot=build_snapshot(config), pool=pool,
                                 tenants=FixedTenants(TENANT_PORT), files=FileCache())
        devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the rig
        access = AccessLogger(devnull, access_log, None, loop=loop)
        self.state.observer = RequestRecorder(access, Metrics(), False)
        self.client = HttpConnection(self.state)
        self.client_transport = MemoryTransport(keep=False, peer=("127.0.0.1", 40000))
        self.client.connection_made(self.client_transport)  # type: ignore[arg-type]
        self.backends = {port: self._backend(pool, port) for port in (BACKEND_PORT, TENANT_PORT)}

    def _backend(self, pool: UpstreamPool, port: int) -> UpstreamConnection:
        conn = UpstreamConnection(pool, ("127.0.0.1", port, False))
        conn.connection_made(MemoryTransport(keep=False, peer=("127.0.0.1", 40000)))  # type: ignore[arg-type]
        pool.release(conn)
        return conn

    def proxied(self, request: bytes, response: bytes, port: int) -> Callable[[], None]:
        client, backend = self.client, self.backends[port]

        def one() -> None:
            client.data_received(request)
            backend.data_received(response)

        return one

    def fresh_connection(self, request: bytes, response: bytes, port: int
                         ) -> Callable[[], None]:
        """A new client connection per request (`Connection: close`), as accept would make."""
        state, backend = self.state, self.backends[port]

        def one() -> None:
            client = HttpConnection(state)
            transport = MemoryTransport(keep=False, peer=("127.0.0.1", 40000))
            client.connection_made(transport)  # type: ignore[arg-type]
            client.data_received(request)
            backend.data_received(response)
            assert transport.closed
            client.connection_lost(None)
            self.client_transport.written += transport.written

        return one

    def local(self, request: bytes) -> Callable[[], None]:
        client = self.client
        return lambda: client.data_received(request)


def scenarios(rig: Rig) -> dict[str, Callable[[], None]]:
    small = backend_response(b"x" * 100)
    wrk_get = b"GET /files/100b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    browser_get = b"GET /files/100b HTTP/1.1\r\n" + BROWSER_HEADERS + b"\r\n"
    tenant_get = b"GET /sam/list1/items HTTP/1.1\r\n" + BROWSER_HEADERS + b"\r\n"
    return {
        "proxy-100b": rig.proxied(wrk_get, small, BACKEND_PORT),
        "proxy-100b-browser": rig.proxied(browser_get, small, BACKEND_PORT),
        "tenant-100b-browser": rig.proxied(tenant_get, small, TENANT_PORT),
        "proxy-64k": rig.proxied(wrk_get, backend_response(b"x" * 65536), BACKEND_PORT),
        "proxy-100b-close": rig.fresh_connection(
            b"GET /files/100b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n",
            small, BACKEND_PORT),
        "static-1k": rig.local(b"GET /1k.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
        "redirect": rig.local(b"GET /sam/list1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    }


def measure(step: Callable[[], None], count: int) -> float:
    """CPU µs per call, best of three runs (the minimum is the least disturbed)."""
    for _ in range(count // 10):
        step()
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(count):
            step()
        best = min(best, (time.process_time() - start) / count)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--profile", metavar="SCENARIO", help="cProfile one scenario")
    parser.add_argument("--access-log", action="store_true", help="access log on (to /dev/null)")
    parser.add_argument("--run", metavar="SCENARIO",
                        help="only run --count calls of one scenario (for callgrind)")
    args = parser.parse_args(argv)
    loop = uvloop.new_event_loop()  # the server's loop: its time() and call_soon are C
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp), args.access_log, loop)
        table = scenarios(rig)
        if args.run:  # warm up, then exactly --count calls inside functools.reduce, the one
            # C function that bench_instructions.py tells callgrind to count in
            step = table[args.run]
            for _ in range(max(100, args.count // 4)):
                step()
            functools.reduce(lambda _, __: step(), range(args.count), None)
            return 0
        if args.profile:
            step = table[args.profile]
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [step() for _ in range(args.count)])
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
            return 0
        print(f"| scenario | CPU µs/request (access log {'on' if args.access_log else 'off'}) |")
        print("|---|---:|")
        for name, step in table.items():
            before = rig.client_transport.written
            print(f"| {name} | {measure(step, args.count):.1f} |")
            assert rig.client_transport.written > before, f"{name} wrote nothing"
            assert not rig.client_transport.closed, f"{name} closed the connection"
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
