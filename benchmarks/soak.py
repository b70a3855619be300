"""Soak: mixed load on a real navigator while tenants are killed and the config is reloaded.

Room: benchmarks (hardening). Runs `python -m navigator` with a few backend_app tenants on
loopback and, for `--seconds`, drives a mix of small, large, streaming, upload and websocket
exchanges plus clients that vanish mid-body, while a chaos loop kills tenant processes (by
`/exit` or psutil) and sends SIGHUP. Prints requests, failures (status >= 500 or errors, split
by operation), navigator RSS and open descriptors at start and end, and tenant processes left.

    .venv/bin/python benchmarks/soak.py --seconds 120
    .venv/bin/python benchmarks/soak.py --seconds 20 --clients 8

Every loop is bounded by the deadline and every network wait by a timeout.
Must not touch: anything but loopback sockets, its own temp dir and its own child processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import (  # noqa: E402
    BACKEND_APP,
    Navigator,
    request,
    run_navigator,
    wait_until,
)

OP_TIMEOUT = 30.0
LISTEN_PORT = [0]  # set once navigator listens (read by open_sockets)
LARGE = 1 << 20


def config_text(root: Path, tenants: int) -> str:
    lines = "".join(f"    - path: /t{i}/\n" for i in range(tenants))
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  health_check:
    path: /up
    response:
      status: 200
      body: ok
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 40000, 101)}
    timeout: 5m
  tenants:
{lines}"""


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


class HttpClient:
    """Just enough HTTP/1.1 over asyncio streams for the soak."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)

    @staticmethod
    async def response(reader: asyncio.StreamReader) -> tuple[int, int]:
        """(status, body bytes read) of one response."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        if "transfer-encoding: chunked" in head:
            total = 0
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                total += len(await reader.readexactly(size + 2)) - 2
            await reader.readuntil(b"\r\n")
            return status, total
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.partition(":")[2])
                await reader.readexactly(length)
                return status, length
        if status in (101, 204, 304):
            return status, 0
        return status, len(await reader.read())


async def op_request(client: HttpClient, tenant: str, kind: str) -> int:
    reader, writer = await client.open()
    try:
        body = b""
        if kind == "small":
            head = f"GET /{tenant}/x HTTP/1.1\r\nHost: soak\r\n\r\n"
        elif kind == "large":
            head = f"GET /{tenant}/bytes?n={LARGE} HTTP/1.1\r\nHost: soak\r\n\r\n"
        elif kind == "stream":
            head = f"GET /{tenant}/chunked?n={LARGE // 4} HTTP/1.1\r\nHost: soak\r\n\r\n"
        else:  # upload
            body = os.urandom(256 * 1024)
            head = (f"POST /{tenant}/echo HTTP/1.1\r\nHost: soak\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n")
        writer.write(head.encode() + body)
        status, _ = await HttpClient.response(reader)
        return status
    finally:
        writer.close()


async def op_websocket(client: HttpClient, tenant: str) -> int:
    reader, writer = await client.open()
    try:
        writer.write(f"GET /{tenant}/ws HTTP/1.1\r\nHost: soak\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        status, _ = await HttpClient.response(reader)
        if status != 101:
            return status
        for size in (10, 1000, 50_000):
            payload = os.urandom(size)
            writer.write(payload)
            if await reader.readexactly(size) != payload:
                raise ValueError("websocket echo mismatch")
        return status
    finally:
        writer.close()


async def op_vanish(client: HttpClient, tenant: str, during_response: bool) -> int:
    """A client that disconnects halfway through its request body or the response."""
    reader, writer = await client.open()
    if during_response:
        writer.write(f"GET /{tenant}/bytes?n={4 * LARGE} HTTP/1.1\r\nHost: soak\r\n\r\n"
                     .encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:  # a short 502/503 page on a kept-alive connection: nothing to cut
            writer.transport.abort()
            return status
        await reader.readexactly(64 * 1024)
    else:
        writer.write(f"POST /{tenant}/echo HTTP/1.1\r\nHost: soak\r\nContent-Length: {LARGE}"
                     "\r\n\r\n".encode() + b"x" * 65536)
        await writer.drain()
    writer.transport.abort()
    return 0


async def worker(client: HttpClient, tenants: int, deadline: float, tally: Tally) -> None:
    kinds = ["small"] * 6 + ["large", "stream", "upload", "websocket", "vanish-body",
                             "vanish-response"]
    while time.monotonic() < deadline:
        kind = random.choice(kinds)
        tenant = f"t{random.randrange(tenants)}"
        tally.sent[kind] += 1
        try:
            if kind == "websocket":
                coro = op_websocket(client, tenant)
            elif kind.startswith("vanish"):
                coro = op_vanish(client, tenant, kind == "vanish-response")
            else:
                coro = op_request(client, tenant, kind)
            status = await asyncio.wait_for(coro, OP_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:
            tally.failed[kind] += 1
            tally.errors[f"{kind}:{type(exc).__name__}"] += 1
            continue
        if status:
            tally.statuses[status] += 1
        if status >= 500:
            tally.failed[kind] += 1


def tenant_processes(nav_pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(nav_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


async def chaos(client: HttpClient, nav_pid: int, tenants: int, deadline: float,
                kill_every: float, reload_every: float, tally: Tally) -> None:
    next_kill = time.monotonic() + kill_every
    next_reload = time.monotonic() + reload_every
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        if now >= next_kill:
            next_kill = now + kill_every
            if random.random() < 0.5:
                tally.sent["chaos-exit"] += 1
                with_exit = f"GET /t{random.randrange(tenants)}/exit HTTP/1.1\r\nHost: s\r\n\r\n"
                try:
                    reader, writer = await client.open()
                    writer.write(with_exit.encode())
                    await asyncio.wait_for(reader.read(), OP_TIMEOUT)
                    writer.close()
                except (OSError, TimeoutError):
                    pass
            else:
                victims = tenant_processes(nav_pid)
                if victims:
                    tally.sent["chaos-kill"] += 1
                    with contextlib.suppress(psutil.Error):
                        random.choice(victims).kill()
        if now >= next_reload:
            next_reload = now + reload_every
            tally.sent["chaos-reload"] += 1
            os.kill(nav_pid, signal.SIGHUP)


def open_sockets(pid: int) -> dict[str, int]:
    """Navigator's TCP sockets (listener excluded), by peer kind and state."""
    counts: Counter[str] = Counter()
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN:
            continue
        peer = "client" if conn.laddr and conn.laddr.port == LISTEN_PORT[0] else "upstream"
        counts[f"{peer}:{conn.status}"] += 1
    return dict(counts)


def snapshot(pid: int) -> tuple[float, int]:
    process = psutil.Process(pid)
    return process.memory_info().rss / 2**20, process.num_fds()


async def drive(port: int, nav_pid: int, args: argparse.Namespace, tally: Tally) -> None:
    client = HttpClient(port)
    deadline = time.monotonic() + args.seconds
    tasks = [worker(client, args.tenants, deadline, tally) for _ in range(args.clients)]
    tasks.append(chaos(client, nav_pid, args.tenants, deadline, args.kill_every,
                       args.reload_every, tally))
    await asyncio.gather(*tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--reload-every", type=float, default=7.0)
    args = parser.parse_args()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="navigator-soak-") as tmp:
        root = Path(tmp)
        config = root / "navigator.yml"
        config.write_text(config_text(root, args.tenants))
        with run_navigator(config) as nav:
            pid = nav.process.pid
            LISTEN_PORT[0] = nav.port
            for i in range(args.tenants):  # warm every tenant before the baseline
                wait_until(lambda i=i: request(nav.port, "GET", f"/t{i}/x").status == 200,  # type: ignore[misc]
                           30, interval=0.2, message=f"tenant t{i}")
            rss_start, fds_start = snapshot(pid)
            started = time.monotonic()
            asyncio.run(drive(nav.port, pid, args, tally))
            elapsed = time.monotonic() - started
            healthy = request(nav.port, "GET", "/up").status == 200
            rss_end, fds_end = snapshot(pid)
            tenants_left = len(tenant_processes(pid))
            sockets_left = open_sockets(pid)
            alive = nav.process.poll() is None
            print_summary(tally, elapsed, (rss_start, rss_end), (fds_start, fds_end),
                          tenants_left, alive and healthy)
            print(f"navigator TCP connections left after all clients closed: {sockets_left}")
            if any(k.startswith("client") for k in sockets_left) or any(
                    "Timeout" in k for k in tally.errors):
                print_dump(nav)
            stopping = time.monotonic()
            tenants = tenant_processes(pid)
            try:
                code = nav.stop()
                print(f"graceful stop: exit {code} after {time.monotonic() - stopping:.1f} s")
            except AssertionError:
                print(f"graceful stop: NOT done after {time.monotonic() - stopping:.0f} s "
                      "(killed)")
                for tenant in tenants:  # the killed server can't stop them any more
                    with contextlib.suppress(psutil.Error):
                        tenant.kill()
                return 1
    return 0 if alive and healthy else 1


def print_dump(nav: Navigator) -> None:
    """Ask navigator for its connection dump (SIGUSR1) and print it with its warnings."""
    seen = len(nav.lines)
    nav.process.send_signal(signal.SIGUSR1)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: any("connection dump" in line for line in nav.lines[seen:]), 5.0)
    print("\nnavigator warnings and errors during the run (count, message), then its "
          "connection dump:")
    messages: Counter[str] = Counter()
    for line in nav.lines[:seen]:
        lowered = line.lower()
        if ("warn" in lowered or "error" in lowered) and '"@timestamp"' not in line:
            messages[re.sub(r"\d+(\.\d+)?", "N", line.partition(" ")[2])[:200]] += 1
    for message, count in messages.most_common(15):
        print(f"  {count:6d}  {message}")
    for line in nav.lines[seen:]:
        if "connection" in line:
            print("  " + line[:600])


def print_summary(tally: Tally, elapsed: float, rss: tuple[float, float],
                  fds: tuple[int, int], tenants_left: int, healthy: bool) -> None:
    requests = sum(n for k, n in tally.sent.items() if not k.startswith("chaos"))
    failed = sum(tally.failed.values())
    print(f"\n## navigator soak: {elapsed:.0f} s\n")
    print("| operation | sent | failed (>=500 or error) |")
    print("|---|---:|---:|")
    for kind in sorted(tally.sent):
        print(f"| {kind} | {tally.sent[kind]} | {tally.failed.get(kind, 0)} |")
    print(f"| **all requests** | **{requests}** | **{failed}** "
          f"({100 * failed / max(requests, 1):.2f}%) |\n")
    print("| measure | start | end |")
    print("|---|---:|---:|")
    print(f"| navigator RSS (MiB) | {rss[0]:.1f} | {rss[1]:.1f} |")
    print(f"| navigator open fds | {fds[0]} | {fds[1]} |")
    print(f"| tenant processes | - | {tenants_left} |")
    print(f"\nstatuses: {dict(sorted(tally.statuses.items()))}")
    print(f"errors: {dict(tally.errors)}")
    print(f"server alive and healthy at the end: {healthy}")


if __name__ == "__main__":
    sys.exit(main())
