"""Latency of N keep-alive GETs on one connection: median, p90 and max, in milliseconds.

    make run &    # the demo on :3000
    .venv/bin/python benchmarks/keepalive_latency.py 3000 /sam/list1/api/items
    .venv/bin/python benchmarks/keepalive_latency.py 4000 /sam/list1/api/items   # the tenant

Room: benchmarks, standalone script; imports nothing from the project. Issue 14 found the
demo at ~44 ms per request after a connection's first (head and body in two sends, Nagle and
a delayed ACK); docs/operations.md records the figures this prints. Needs Content-Length
responses (no chunked bodies).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time


def read_response(sock: socket.socket) -> bytes:
    """One Content-Length response; returns its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in lines[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        body += chunk
    return lines[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("-n", "--requests", type=int, default=200)
    args = parser.parse_args()
    request = f"GET {args.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    times: list[float] = []
    with socket.create_connection(("127.0.0.1", args.port), timeout=10) as sock:
        for _ in range(args.requests):
            started = time.perf_counter()
            sock.sendall(request)
            status = read_response(sock)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print(f"{args.path} n={len(times)} {status.decode()} median={statistics.median(times):.2f}ms"
          f" p90={p90:.2f}ms max={times[-1]:.2f}ms")


if __name__ == "__main__":
    main()
