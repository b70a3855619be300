"""Test support: run the real server as a subprocess and speak raw HTTP/1.1 to it.

Nothing here sleeps to synchronise: `wait_until` polls a condition against a deadline, and
the server's "listening on" log line tells us its ephemeral port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BACKEND_APP = REPO / "tests" / "integration" / "backend_app.py"
LISTENING = re.compile(r"listening on http://([0-9.:\[\]a-f]+):(\d+)")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               interval: float = 0.01, message: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class Navigator:
    """A running `python -m navigator` with its captured output."""

    process: subprocess.Popen[str]
    config_path: Path
    lines: list[str] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)

        def find() -> re.Match[str] | None:
            with self._lock:
                for line in self.lines:
                    found = regex.search(line)
                    if found:
                        return found
            return None

        result = wait_until(find, timeout, message=f"output matching {pattern!r}")
        assert isinstance(result, re.Match)
        return result

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError("navigator did not stop within the timeout") from None


def write_config(tmp_path: Path, text: str, name: str = "navigator.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@contextmanager
def run_backend_app() -> Iterator[int]:
    """backend_app on its own ephemeral port (a reverse-proxy target); yields the port."""
    process = subprocess.Popen([sys.executable, str(BACKEND_APP)], stdout=subprocess.PIPE,
                               text=True, env={"PORT": "0", "PATH": "/usr/bin:/bin"})
    assert process.stdout is not None
    try:
        line = process.stdout.readline()  # "ready <port>"
        assert line.startswith("ready"), line
        yield int(line.split()[1])
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


@contextmanager
def run_navigator(config_path: Path, *, env: dict[str, str] | None = None,
                  cwd: Path | None = None, expect_exit: bool = False) -> Iterator[Navigator]:
    """Start the server, wait for its listening line, stop it (SIGTERM) afterwards."""
    full_env = dict(os.environ)
    full_env.setdefault("LOG_LEVEL", "info")
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "navigator", "--config", str(config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=full_env, cwd=str(cwd or config_path.parent),
    )
    nav = Navigator(process, config_path)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with nav._lock:
                nav.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not expect_exit:
            def listening() -> re.Match[str] | None:
                if process.poll() is not None:
                    raise AssertionError(f"navigator exited early:\n{nav.output()}")
                with nav._lock:
                    for line in nav.lines:
                        found = LISTENING.search(line)
                        if found:
                            return found
                return None

            found = wait_until(listening, 20.0, message="navigator to listen")
            assert isinstance(found, re.Match)
            nav.port = int(found.group(2))
        yield nav
    finally:
        if process.poll() is None:
            nav.stop()
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()


# --- raw HTTP ----------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Reader:
    """Buffered reading of responses from a socket (handles pipelined answers)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buffer += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before {marker!r}; have {self.buffer[:200]!r}")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise ConnectionError("closed early")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_to_close(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def response(self, *, head_request: bool = False) -> Response:
        raw = self.read_until(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        _, status, *reason = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        resp = Response(int(status), reason[0] if reason else "", headers, b"", raw)
        code = int(status)
        if head_request or code in (204, 304) or 100 <= code < 200:
            return resp
        te = resp.header("transfer-encoding")
        length = resp.header("content-length")
        if te and "chunked" in te.lower():
            parts = []
            while True:
                size = int(self.read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                parts.append(self.read_exactly(size))
                self.read_exactly(2)
            resp.body = b"".join(parts)
        elif length is not None:
            resp.body = self.read_exactly(int(length))
        else:
            resp.body = self.read_to_close()
        return resp


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request(port: int, method: str = "GET", path: str = "/", *,
            headers: dict[str, str] | None = None, body: bytes = b"",
            timeout: float = 10.0) -> Response:
    """One request on a fresh connection (Connection: close)."""
    hdrs = {"Host": "localhost", "Connection": "close"}
    if body:
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    raw = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with connect(port, timeout) as sock:
        sock.sendall(raw.encode("latin-1") + b"\r\n" + body)
        return Reader(sock).response(head_request=method == "HEAD")


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes (or times out)."""
    with connect(port, timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def pattern_bytes(n: int) -> bytes:
    """What backend_app sends for n bytes."""
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]
