"""The HTML status page through the real server: behind auth, showing the running tenant's
process and its recent events."""

from __future__ import annotations

import base64
import random
import sys
from pathlib import Path

import bcrypt
import pytest

from tests.helpers import BACKEND_APP, request, run_navigator

pytestmark = pytest.mark.timeout(60)


def test_status_page_shows_tenants_behind_auth(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("admin:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode() + "\n")
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  status_page:
    path: /navigator/status
auth:
  enabled: true
  htpasswd: {htpasswd}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
    - path: /b/
""")
    login = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}
    with run_navigator(config) as nav:
        pid = request(nav.port, "GET", "/a/pid", headers=login, timeout=30).body.decode()
        assert request(nav.port, "GET", "/navigator/status").status == 401
        page = request(nav.port, "GET", "/navigator/status", headers=login)
        assert page.status == 200
        assert page.header("content-type") == "text/html; charset=utf-8"
        assert page.header("cache-control") == "no-store"
        text = page.body.decode()
        row = text[text.index('<tr class="ready"><td>a</td>'):]
        row = row[:row.index("</tr>")]
        assert "<td>/a/</td>" in row
        assert f"<td>{pid}</td>" in row
        assert "<td>1</td>" in row  # one request so far (the status page is not a tenant's)
        assert "<td>b</td>" not in text  # never started: the metrics know nothing of it yet
        assert "<td>a</td><td>ready</td>" in text  # the recent events
        assert "<td>a</td><td>started</td>" in text
        head = request(nav.port, "HEAD", "/navigator/status", headers=login)
        assert head.status == 200
        assert head.body == b""
