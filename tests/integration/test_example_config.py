"""The shipped `config.example.yml` with its commented-out `auth:` block switched on, through
the real server and the real demo tenant: the todo lists ask for a login, the demo
credentials get in, the landing page stays public. And `navigator check` on an auth block
that protects nothing (the example's old `public_paths: [/, ...]`) says so."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, request, run_navigator

pytestmark = pytest.mark.timeout(90)

DEMO_LOGIN = "Basic " + base64.b64encode(b"demo:demo").decode()
WRONG_LOGIN = "Basic " + base64.b64encode(b"demo:nope").decode()
PROTECTS_NOTHING = "auth protects nothing"


def uncomment(text: str, block: str) -> str:
    """`text` with the commented-out top-level `block` (`# auth:` and the `#   ...` lines
    below it) turned into YAML."""
    lines = text.splitlines()
    start = lines.index(f"# {block}")
    end = start + 1
    while end < len(lines) and lines[end].startswith("#   "):
        end += 1
    assert end - start > 1, f"no commented-out {block} block"
    return "\n".join([*lines[:start], *(line[2:] for line in lines[start:end]),
                      *lines[end:]]) + "\n"


def example_with_auth(tmp_path: Path) -> Path:
    """The example with auth on, on an ephemeral loopback port, its data under tmp_path."""
    text = uncomment((REPO / "config.example.yml").read_text(), "auth:")
    start_port = random.randrange(20000, 32000, 101)
    for old, new in (("\nlisten: 3000",
                      f'\nlisten: "127.0.0.1:0"\nserver: {{pid_file: {tmp_path}/nav.pid}}'),
                     ("  idle: 5m", f"  idle: 5m\n  pools: {{start_port: {start_port}}}"),
                     ("/tmp/navigator-demo", str(tmp_path))):
        assert old in text, old
        text = text.replace(old, new)
    config = tmp_path / "example.yml"
    config.write_text(text)
    return config


def check(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "navigator", "check", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=REPO, check=True)
    return done.stdout


def test_example_auth_block_protects_the_tenants(tmp_path: Path) -> None:
    config = example_with_auth(tmp_path)
    assert PROTECTS_NOTHING not in check(config)
    with run_navigator(config, cwd=REPO) as nav:
        denied = request(nav.port, "GET", "/sam/list1/api/items")
        assert denied.status == 401
        assert denied.header("www-authenticate") == 'Basic realm="Demo"'
        assert request(nav.port, "GET", "/sam/list1/api/items",
                       headers={"Authorization": WRONG_LOGIN}).status == 401
        allowed = request(nav.port, "GET", "/sam/list1/api/items",
                          headers={"Authorization": DEMO_LOGIN}, timeout=30)
        assert allowed.status == 200, allowed.body
        assert json.loads(allowed.body)["items"] == []
        landing = request(nav.port, "GET", "/")
        assert (landing.status, landing.body) == (200, (REPO / "public/index.html").read_bytes())
        assert request(nav.port, "GET", "/style.css").status == 200
        assert request(nav.port, "GET", "/up").status == 200  # health check: before auth
        assert request(nav.port, "GET", "/sam/list2/").status == 401


@pytest.mark.parametrize(("auth", "culprit"), [
    ("public_paths: [/, /index.html, '*.css', /503.html]", "auth.public_paths[0]: '/'"),
    ("auth_patterns: [{pattern: '.*', action: 'off'}]", "auth.auth_patterns[0]: '.*'"),
])
def test_check_warns_when_auth_protects_nothing(tmp_path: Path, auth: str,
                                                culprit: str) -> None:
    (tmp_path / "users").write_text("demo:demo\n")
    config = tmp_path / "open.yml"
    config.write_text(f"auth:\n  enabled: true\n  htpasswd: {tmp_path}/users\n  {auth}\n"
                      "applications:\n  tenants:\n    - path: /app/\n")
    report = check(config)
    warning = next(line for line in report.splitlines() if PROTECTS_NOTHING in line)
    assert culprit in warning, report
    assert "warnings 1" in report
