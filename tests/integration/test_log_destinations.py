"""What each log destination carries, through the real server (docs/operations.md, "Where
each kind of line goes"), and which child lines stay JSON: only a JSON object with both
`@timestamp` and `severity`, and only under `format: json`."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import REPO, Navigator, request, run_navigator, wait_until, write_config

pytestmark = pytest.mark.timeout(60)

TENANT_APP = REPO / "tests" / "fixtures" / "apps" / "tenant_app.py"
RAILS = '{"@timestamp":"2026-01-01T00:00:00.000Z","severity":"INFO","message":"rails"}'
OTHER_JSON = '{"@timestamp":"2026-01-01T00:00:00.000Z","message":"no severity"}'


def config_text(root: Path, fmt: str, extra: str = "") -> str:
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
logging:
  format: {fmt}
  access_log: true
{extra}
applications:
  framework:
    command: {sys.executable}
    args: [{TENANT_APP}]
  tenants:
    - path: /t/
"""


def say(nav: Navigator, line: str) -> None:
    assert request(nav.port, "GET", f"/t/say?line={quote(line)}").body == b"said"


def stdout_line(nav: Navigator, needle: str) -> str:
    found = wait_until(lambda: [line for line in nav.output().splitlines() if needle in line],
                       10, message=f"a stdout line with {needle!r}")
    assert isinstance(found, list)
    return str(found[0])


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_only_rails_json_passes_through_and_only_under_json(tmp_path: Path, fmt: str) -> None:
    with run_navigator(write_config(tmp_path, config_text(tmp_path, fmt))) as nav:
        say(nav, RAILS)
        say(nav, OTHER_JSON)
        rails = stdout_line(nav, '"message":"rails"')
        other = stdout_line(nav, "no severity")
    if fmt == "text":
        assert rails == f"[t.stdout] {RAILS}"
        assert other == f"[t.stdout] {OTHER_JSON}"
        return
    assert rails == RAILS  # untouched
    wrapped = json.loads(other)
    assert (wrapped["source"], wrapped["stream"], wrapped["message"]) == \
        ("t", "stdout", OTHER_JSON)


def test_file_carries_tenant_output_only(tmp_path: Path) -> None:
    extra = f"  file: {tmp_path}/logs/{{{{app}}}}.log"
    with run_navigator(write_config(tmp_path, config_text(tmp_path, "text", extra))) as nav:
        say(nav, "for-the-file")
        log_file = tmp_path / "logs" / "t.log"
        wait_until(lambda: log_file.exists() and "for-the-file" in log_file.read_text(), 10,
                   message="tenant output in the file")
        stdout_line(nav, '"uri":"/t/say')  # the access line exists, on stdout
    text = log_file.read_text()
    assert "[t.stdout] for-the-file" in text
    assert "navigator." not in text  # no server line
    assert '"client_ip"' not in text  # no access line


@pytest.fixture
def vector_socket() -> Iterator[tuple[Path, list[str]]]:
    """A Unix stream listener standing in for Vector; collects the lines it receives."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="navvec") as folder:
        path = Path(folder) / "v.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(4)
        received: list[str] = []

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    buffer = b""
                    while chunk := conn.recv(65536):
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        received.extend(line.decode() for line in lines)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield path, received
        finally:
            server.close()


def test_vector_carries_tenant_output_and_access_log_not_server_lines(
        tmp_path: Path, vector_socket: tuple[Path, list[str]]) -> None:
    path, received = vector_socket
    extra = f"  vector:\n    enabled: true\n    socket: {path}"
    with run_navigator(write_config(tmp_path, config_text(tmp_path, "text", extra))) as nav:
        say(nav, "for-vector")
        docs = []

        def both() -> bool:
            docs[:] = [json.loads(line) for line in list(received)]
            return (any(d.get("message") == "for-vector" for d in docs)
                    and any(str(d.get("uri", "")).startswith("/t/say") for d in docs))

        wait_until(both, 10, message="tenant output and an access line at Vector")
        stdout_line(nav, "navigator listening on")
    tenant = next(d for d in docs if d.get("message") == "for-vector")
    assert (tenant["tenant"], tenant["stream"]) == ("t", "stdout")
    assert not [d for d in docs if str(d.get("logger", "")).startswith("navigator.")]
