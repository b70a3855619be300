"""Support for the framework examples' tests (examples/rails, examples/django, examples/fastapi).

Each Python example names its dependencies in its own `requirements.txt`; `example_venv` builds
a separate virtualenv from exactly that file under `build/example-venvs/` (keyed by the file's
hash, so repeated runs reuse it and an edited file gets a fresh one). Nothing of a framework is
installed into navigator's own venv.

A framework that cannot be had here skips its tests with the reason, unless
NAVIGATOR_REQUIRE_FRAMEWORKS=1 (set by .ci/run): then it fails, so CI cannot go green by
skipping.

`Browser` is the client side: a cookie jar that honours Domain/Path as a browser does
(http.cookiejar), redirects followed for GET, and a small WebSocket client.
"""

from __future__ import annotations

import base64
import hashlib
import http.cookiejar
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import REPO

VENVS = REPO / "build" / "example-venvs"
EXAMPLES = REPO / "examples"


def required() -> bool:
    """True in CI: a framework that is missing is a failure there, not a skip."""
    return os.environ.get("NAVIGATOR_REQUIRE_FRAMEWORKS", "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI) because a framework cannot be had."""
    if required():
        pytest.fail(f"{reason} (NAVIGATOR_REQUIRE_FRAMEWORKS is set, so this fails)")
    pytest.skip(reason)


def example_venv(name: str) -> Path:
    """A virtualenv with examples/<name>/requirements.txt installed; its bin directory."""
    requirements = EXAMPLES / name / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = VENVS / f"{name}-{digest}"
    done = venv / ".installed"
    if done.exists():
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
              "--disable-pip-version-check", "-r", str(requirements)]]
    for argv in steps:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            unavailable(f"could not install examples/{name}/requirements.txt: "
                        f"{(result.stderr or result.stdout).strip()[-500:]}")
    done.write_text(requirements.read_text())
    return venv / "bin"


def prepared_rails_app(tmp_path: Path) -> Path:
    """A copy of examples/rails with its Gemfile resolved against the installed gems."""
    if not (shutil.which("ruby") and shutil.which("bundle")):
        unavailable("the Rails example needs ruby and bundler (Debian: apt-get install "
                    "--no-install-recommends ruby-rails ruby-sqlite3 puma bundler)")
    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "rails", app,
                    ignore=shutil.ignore_patterns("Gemfile.lock", "tmp", "log", "*.sqlite3"))
    done = subprocess.run(["bundle", "lock", "--local"], cwd=app, capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        unavailable("the Rails example's gems (rails ~> 6.1.7, sqlite3, puma) are not "
                    f"installed: {(done.stderr or done.stdout).strip()[-400:]}")
    return app


def example_config(name: str, tmp_path: Path, file: str = "navigator.yml") -> Path:
    """examples/<name>/<file> made private to this test: an ephemeral loopback port, its own
    pid file and tenant ports. `file` is navigator.yml (the reference format) or concise.yml
    (the concise format, relying on the framework preset's defaults)."""
    text = (EXAMPLES / name / file).read_text()
    start_port = random.randrange(20000, 32000, 101)
    replacements = (("  listen: 3000\n",
                     f'  listen: "127.0.0.1:0"\n  pid_file: {tmp_path}/navigator.pid\n'),
                    ("start_port: 4000", f"start_port: {start_port}"))
    if file == "concise.yml":
        replacements = (("\nlisten: 3000\n", f'\nlisten: "127.0.0.1:0"\n'
                         f"server: {{pid_file: {tmp_path}/navigator.pid}}\n"),
                        ("\napp:\n", f"\napp:\n  pools: {{start_port: {start_port}}}\n"))
    for old, new in replacements:
        assert old in text, f"{old!r} not in examples/{name}/navigator.yml"
        text = text.replace(old, new)
    config = tmp_path / "navigator.yml"
    config.write_text(text)
    return config


@dataclass
class Page:
    status: int
    url: str
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str,
                         headers: object, newurl: str) -> None:
        return None


class Browser:
    """What a browser does that matters here: cookies by domain and path, forms, redirects."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.jar = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.jar)
        self.follow = urllib.request.build_opener(cookies)
        self.stay = urllib.request.build_opener(cookies, _NoRedirect)

    def _open(self, req: urllib.request.Request, follow: bool) -> Page:
        opener = self.follow if follow else self.stay
        try:
            with opener.open(req, timeout=60) as resp:
                return Page(resp.status, resp.url, list(resp.headers.items()),
                            resp.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", "replace")
            return Page(err.code, req.full_url, list(err.headers.items()), body)

    def get(self, path: str, *, follow: bool = True) -> Page:
        return self._open(urllib.request.Request(self.base + path), follow)

    def post_form(self, path: str, fields: dict[str, str], *, follow: bool = False,
                  headers: dict[str, str] | None = None) -> Page:
        data = urllib.parse.urlencode(fields).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.base, "Referer": self.base + path, **(headers or {})})
        return self._open(req, follow)

    def cookies_for(self, path: str) -> dict[str, str]:
        """The cookies this browser would send with a request for `path`."""
        req = urllib.request.Request(self.base + path)
        self.jar.add_cookie_header(req)
        header = req.get_header("Cookie") or ""
        return dict(part.split("=", 1) for part in header.split("; ") if "=" in part)

    def cookie_paths(self) -> dict[str, str]:
        return {cookie.name: cookie.path for cookie in self.jar}

    def websocket(self, path: str, *, origin: str | None = None,
                  protocols: str | None = None) -> WebSocket:
        req = urllib.request.Request(self.base + path)
        self.jar.add_cookie_header(req)
        return WebSocket.open(self.port, path, origin=origin or self.base,
                              cookie=req.get_header("Cookie"), protocols=protocols)


def hidden_field(body: str, name: str) -> str:
    """The value of <input type="hidden" name=... value=...> in a page."""
    found = re.search(rf'name="{re.escape(name)}"\s+value="([^"]+)"', body) or \
        re.search(rf'value="([^"]+)"\s+name="{re.escape(name)}"', body)
    assert found, f"no hidden field {name!r} in the page:\n{body[:2000]}"
    return found.group(1)


class WebSocket:
    """A minimal RFC 6455 client: handshake, masked text frames out, unmasked frames in."""

    def __init__(self, sock: socket.socket, status: int, head: str, rest: bytes) -> None:
        self.sock = sock
        self.status = status
        self.head = head
        self.buffer = rest

    @classmethod
    def open(cls, port: int, path: str, *, origin: str, cookie: str | None,
             protocols: str | None) -> WebSocket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", f"Origin: {origin}"]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        status = int(text.split(" ", 2)[1]) if text else 0
        if status == 101:
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            assert f"\r\nsec-websocket-accept: {accept.lower()}" in text.lower(), text
        return cls(sock, status, text, rest)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload). Pings are answered and skipped."""
        for _ in range(1000):
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            opcode = first & 0x0F
            if opcode != 0x9:
                return opcode, payload
        raise AssertionError("no data frame among 1000 pings")

    def receive_json(self) -> dict[str, object]:
        opcode, payload = self.receive()
        assert opcode == 0x1, (opcode, payload)
        value = json.loads(payload)
        assert isinstance(value, dict), value
        return value

    def close(self) -> None:
        self.sock.close()
