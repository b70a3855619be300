"""The shipped maintenance-first boot: 503 page while the ready hook prepares the machine,
then the ready hook's reload_config switches to the real config and the app answers.

The shipped `prepare.sh` sleeps 3 s, which races whatever the test does during those 3 s (a
browser's first start under a loaded CI machine took longer). The tests therefore run the
shipped boot.yml with one change: its ready hook waits for a file the test creates once it has
seen what it needs in maintenance mode, so the switch happens exactly when the test says.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, Navigator, request, run_navigator, wait_until

SHIPPED_HOOK = "args: [examples/maintenance-boot/prepare.sh]"

# The test's stand-in for prepare.sh: do its real work (the data directory), then wait for
# the test's go-ahead with a deadline of its own, so a test that dies never leaves it behind.
GATED_HOOK = """#!/bin/sh
set -eu
mkdir -p /tmp/navigator-demo
tries=0
while [ ! -e "$1" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 1800 ]; then echo "prepare: no go-ahead in 90 s" >&2; exit 1; fi
  sleep 0.05
done
echo "prepare: go-ahead received"
"""


def boot_configs(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped boot and real configs, both moved to one free loopback port (a reload
    that changes the listen address rebinds, so they must agree, as in production), with the
    ready hook gated on a file. Returns the boot config and the go-ahead file to create."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f'  listen: "127.0.0.1:{port}"\n  pid_file: {tmp_path}/nav.pid'
    real = tmp_path / "real.yml"
    # The real config is the demo in the concise format: a reload may switch formats.
    real.write_text((REPO / "config.example.yml").read_text().replace(
        "\nlisten: 3000",
        f'\nlisten: "127.0.0.1:{port}"\nserver: {{pid_file: {tmp_path}/nav.pid}}'))
    hook = tmp_path / "prepare-gated.sh"
    hook.write_text(GATED_HOOK)
    go_ahead = tmp_path / "go-ahead"
    boot = (REPO / "examples" / "maintenance-boot" / "boot.yml").read_text()
    assert SHIPPED_HOOK in boot, "the shipped ready hook changed; update the test's stand-in"
    boot = boot.replace("  listen: 3000", listen).replace(
        "reload_config: config.example.yml", f"reload_config: {real}").replace(
        SHIPPED_HOOK, f"args: [{hook}, {go_ahead}]")
    assert str(real) in boot
    assert str(port) in real.read_text()
    config = tmp_path / "boot.yml"
    config.write_text(boot)
    return config, go_ahead


def statuses_of(nav: Navigator, uri: str) -> list[int]:
    """Statuses of the access-log lines for `uri`, in order."""
    return [json.loads(line)["status"] for line in nav.output().splitlines()
            if line.startswith("{") and f'"uri":"{uri}"' in line]


def test_maintenance_boot_switches_to_the_real_config(tmp_path: Path) -> None:
    config, go_ahead = boot_configs(tmp_path)
    with run_navigator(config, cwd=REPO) as nav:
        page = request(nav.port, "GET", "/sam/list1/")
        assert page.status == 503
        assert b'http-equiv="refresh"' in page.body
        assert page.header("cache-control") == "no-cache, no-store, must-revalidate"
        assert request(nav.port, "GET", "/").status == 200  # static survives maintenance
        assert request(nav.port, "GET", "/up").body == b"booting"
        assert "configuration reloaded" not in nav.output()
        go_ahead.touch()

        def app_is_up() -> bool:
            return request(nav.port, "GET", "/sam/list1/").status == 200

        wait_until(app_is_up, 40, interval=0.25, message="the real config after the ready hook")
        assert "configuration reloaded" in nav.output()
        assert b"todo" in request(nav.port, "GET", "/sam/list1/").body.lower()


def test_browser_follows_the_maintenance_page_to_the_app(tmp_path: Path) -> None:
    """Headless Chromium opens the site during the boot, gets the 503 page, and its meta
    refresh carries it to the app once the ready hook's reload has happened."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    config, go_ahead = boot_configs(tmp_path)
    with run_navigator(config, cwd=REPO) as nav:
        url = f"http://127.0.0.1:{nav.port}/sam/list1/"
        # Virtual time lets the page's 5 s refresh fire without real waiting; every refresh
        # is a real request, so the loop ends on whatever the server answers by then.
        chromium = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=600000", "--dump-dom", url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # However long the browser takes to start, the switch waits for its first page.
            wait_until(lambda: statuses_of(nav, "/sam/list1/"), 90, interval=0.1,
                       message="the browser's first request")
            go_ahead.touch()
            stdout, _ = chromium.communicate(timeout=90)
        finally:
            if chromium.poll() is None:
                chromium.kill()
                chromium.communicate(timeout=10)
        assert "todo" in stdout, stdout[:500]
        statuses = statuses_of(nav, "/sam/list1/")
        assert statuses[0] == 503, statuses
        assert statuses[-1] == 200, statuses
