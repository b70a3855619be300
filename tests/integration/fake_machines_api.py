"""A fake Fly Machines API on a Unix socket, for the machine-start tests.

It answers `POST /v1/apps/<app>/machines/<id>/<verb>` like the local API socket (`/.fly/api`)
does: 200 with a small JSON body, or the status the test asks for. Every call is recorded
(with a `time.monotonic()` stamp) in `calls`; on an accepted `start` it runs the test's
`on_start(machine_id)` in a thread of its own, so "starting" a machine (really starting a
second navigator process and publishing its DNS name) happens after the answer, as on Fly,
where the start call returns before the machine runs. Plain threads and blocking sockets: no
event loop shared with the code under test.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Call:
    at: float  # time.monotonic()
    method: str
    path: str


@dataclass
class FakeMachinesApi:
    socket_path: Path
    on_start: Callable[[str], None] = lambda machine_id: None
    status: int = 200  # what a start call answers
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def starts(self, machine_id: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(f"/machines/{machine_id}/start")]

    def handle(self, method: str, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.calls.append(Call(time.monotonic(), method, path))
        parts = path.strip("/").split("/")
        if (method != "POST" or len(parts) != 6 or parts[:2] != ["v1", "apps"]
                or parts[3] != "machines"):
            return 404, b'{"error": "not found"}'
        machine_id, verb = parts[4], parts[5]
        if verb != "start" or self.status != 200:
            code = self.status if verb == "start" else 200
            return code, json.dumps({"error": "failed"} if code != 200 else {"ok": True}).encode()
        worker = threading.Thread(target=self.on_start, args=(machine_id,), daemon=True)
        with self._lock:
            self._workers.append(worker)
        worker.start()
        return 200, b'{"previous_state": "stopped"}'

    def join(self, timeout: float) -> None:
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout)


def _handler(api: FakeMachinesApi) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request_line = self.rfile.readline().decode("latin-1").split()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            if len(request_line) < 2:
                return
            status, body = api.handle(request_line[0], request_line[1])
            self.wfile.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                             .encode() + body)

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def fake_machines_api(socket_path: Path, on_start: Callable[[str], None] = lambda m: None,
                      status: int = 200) -> Iterator[FakeMachinesApi]:
    api = FakeMachinesApi(socket_path, on_start, status)
    server = _Server(str(socket_path), _handler(api))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        api.join(30)
