"""Tenant boots through the real server: slow boots, the readiness limit, start hooks.

Real `python -m navigator` with real tenant processes (tests/fixtures/apps/tenant_app.py) on
loopback; timing comes from the fixture's BOOT_DELAY and small configured limits, never from
sleeps in the test.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.fixtures.apps.support import TENANT_APP
from tests.helpers import Navigator, request, run_navigator, wait_until, write_config

pytestmark = pytest.mark.timeout(60)


def site_config(tmp_path: Path, tenants: str, extra: str = "") -> Path:
    """A server with tenant_app tenants; `tenants` is the YAML list under `tenants:`."""
    text = f"""\
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/nav.pid
{extra}applications:
  framework:
    command: {sys.executable}
    args: [{TENANT_APP}, "{{{{port}}}}"]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
{tenants}"""
    return write_config(tmp_path, text)


def tenant_processes(nav: Navigator) -> list[psutil.Process]:
    """The server's live tenant_app children."""
    found = []
    for child in psutil.Process(nav.process.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and str(TENANT_APP) in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


# --- item 2: readiness follows the configuration, not a fixed 30 s ----------------------------
def test_slow_boot_gets_the_maintenance_page_then_serves(tmp_path: Path) -> None:
    """The first request waits startup_timeout and gets 503; the boot goes on and a later
    request is proxied once the tenant answers."""
    config = site_config(tmp_path, """\
    - path: /slow/
      startup_timeout: 200ms
      ready_timeout: 20s
      env: {BOOT_DELAY: "1.5", APP_NAME: slow}
""")
    with run_navigator(config) as nav:
        first = request(nav.port, "GET", "/slow/x", timeout=20)
        assert first.status == 503
        assert b"refresh" in first.body  # the maintenance page, not an error page

        def served() -> bool:
            return request(nav.port, "GET", "/slow/x", timeout=20).status == 200

        wait_until(served, 20, interval=0.1, message="the slow tenant to serve")
        assert "not ready after" not in nav.output()
        assert len(tenant_processes(nav)) == 1  # the same boot, not a restart per request


def test_tenant_over_its_ready_timeout_is_stopped_and_reported(tmp_path: Path) -> None:
    config = site_config(tmp_path, """\
    - path: /never/
      startup_timeout: 200ms
      ready_timeout: 1s
      env: {BOOT_DELAY: "60", APP_NAME: never}
""")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/never/", timeout=20).status == 503
        nav.wait_for_output(r"tenant never not ready after 1s \(ready_timeout\): stopping it",
                            timeout=20)
        wait_until(lambda: not tenant_processes(nav), 20, message="the tenant to be stopped")
        nav.wait_for_output(r"tenant never stopped")


# --- item 4: tenant hooks run in the tenant's root; before_start is awaited ------------------
WRITE_ARGS = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))"


def hook(*args: str) -> str:
    """One hook entry (YAML flow mapping) running python with `args`."""
    return json.dumps({"command": sys.executable, "args": ["-c", *args]})


def test_before_start_hook_runs_in_root_before_the_spawn(tmp_path: Path) -> None:
    """A migration hook must finish before the tenant boots (the tenant refuses to start
    without its file); start hooks run in the tenant's root too, with the documented
    variables."""
    root = tmp_path / "site"
    root.mkdir()
    config = site_config(tmp_path, f"""\
    - path: /app/
      root: {root}
      startup_timeout: 20s
      env: {{REQUIRE_FILE: migrated, APP_NAME: app}}
      hooks:
        before_start: [{hook(WRITE_ARGS, "migrated", "${name}", "${path}", "${root}",
                             "${port}")}]
        start: [{hook(WRITE_ARGS, "started", "${name}", "${path}", "${root}", "${port}")}]
""")
    with run_navigator(config) as nav:
        response = request(nav.port, "GET", "/app/x", timeout=20)
        assert response.status == 200, nav.output()
        name, path, where, port = (root / "migrated").read_text().split()
        assert (name, path, where) == ("app", "/app/", str(root))
        assert int(port) > 0
        wait_until((root / "started").exists, 10, message="the start hook")
        assert (root / "started").read_text() == f"app /app/ {root} {port}"
        assert not (tmp_path / "migrated").exists()
        assert not (tmp_path / "started").exists()


def test_start_and_stop_hooks_run_in_the_tenant_root(tmp_path: Path) -> None:
    root = tmp_path / "site"
    root.mkdir()
    config = site_config(tmp_path, f"""\
    - path: /app/
      root: {root}
      env: {{APP_NAME: app}}
""", extra=f"""\
hooks:
  tenant:
    start: [{hook(WRITE_ARGS, "started", "${name}")}]
    stop: [{hook(WRITE_ARGS, "stopped", "${name}")}]
""")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/app/x", timeout=20).status == 200
        wait_until((root / "started").exists, 10, message="the start hook")
    assert (root / "stopped").read_text() == "app"  # ran at shutdown, before the SIGTERM
    assert not (tmp_path / "started").exists()


def test_failing_before_start_hook_means_no_spawn(tmp_path: Path) -> None:
    config = site_config(tmp_path, """\
    - path: /app/
      startup_timeout: 20s
      env: {APP_NAME: app}
""", extra=f"""\
hooks:
  tenant:
    before_start: [{hook("import sys; sys.exit(3)")}]
""")
    with run_navigator(config) as nav:
        response = request(nav.port, "GET", "/app/x", timeout=20)
        assert response.status == 503
        nav.wait_for_output(r"tenant app not started: its before_start hooks failed")
        assert "tenant app starting" not in nav.output()
        assert tenant_processes(nav) == []


# --- item 4: a tenant that ends on our SIGTERM stopped cleanly -----------------------------
def test_tenant_ending_on_sigterm_is_logged_as_a_clean_stop(tmp_path: Path) -> None:
    """tenant_app has no SIGTERM handler, so it dies of the signal, as Puma and uvicorn do
    after draining (they re-raise it): that is the stop navigator asked for, not a kill."""
    config = site_config(tmp_path, """\
    - path: /app/
      env: {APP_NAME: app}
""")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/app/x", timeout=20).status == 200
        assert nav.stop() == 0
        nav.wait_for_output(r"tenant app stopped cleanly")
        assert "killed by SIGTERM" not in nav.output()


# --- item 4: a root-mounted tenant under the built-in cable is pointed out ------------------------
def test_check_and_boot_log_name_a_tenant_shadowed_by_cable(tmp_path: Path) -> None:
    config = site_config(tmp_path, """\
    - path: /
      env: {APP_NAME: root}
""")
    done = subprocess.run([sys.executable, "-m", "navigator", "check", str(config)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    expected = "tenant '/' covers the cable path /cable"
    assert expected in done.stdout
    with run_navigator(config) as nav:
        nav.wait_for_output(r"config: .*tenants\[0\]\.path: " + re.escape(expected))
    quiet = site_config(tmp_path, """\
    - path: /
      env: {APP_NAME: root}
""", extra="cable:\n  enabled: false\n")
    done = subprocess.run([sys.executable, "-m", "navigator", "check", str(quiet)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "cable path" not in done.stdout
