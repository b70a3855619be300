"""The shipped maintenance-first boot: 503 page while the ready hook prepares the machine,
then the ready hook's reload_config switches to the real config and the app answers."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, request, run_navigator, wait_until


def boot_configs(tmp_path: Path) -> Path:
    """The shipped boot and real configs, both moved to one free loopback port (a reload
    that changes the listen address rebinds, so they must agree, as in production)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f'  listen: "127.0.0.1:{port}"\n  pid_file: {tmp_path}/nav.pid'
    real = tmp_path / "real.yml"
    real.write_text((REPO / "config.example.yml").read_text().replace("  listen: 3000", listen))
    boot = (REPO / "examples" / "maintenance-boot" / "boot.yml").read_text()
    boot = boot.replace("  listen: 3000", listen).replace(
        "reload_config: config.example.yml", f"reload_config: {real}")
    assert str(real) in boot
    assert str(port) in real.read_text()
    config = tmp_path / "boot.yml"
    config.write_text(boot)
    return config


def test_maintenance_boot_switches_to_the_real_config(tmp_path: Path) -> None:
    with run_navigator(boot_configs(tmp_path), cwd=REPO) as nav:
        page = request(nav.port, "GET", "/sam/list1/")
        assert page.status == 503
        assert b'http-equiv="refresh"' in page.body
        assert page.header("cache-control") == "no-cache, no-store, must-revalidate"
        assert request(nav.port, "GET", "/").status == 200  # static survives maintenance
        assert request(nav.port, "GET", "/up").body == b"booting"

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
    with run_navigator(boot_configs(tmp_path), cwd=REPO) as nav:
        url = f"http://127.0.0.1:{nav.port}/sam/list1/"
        # Virtual time lets the page's 5 s refresh fire without real waiting; every refresh
        # is a real request, so the loop ends on whatever the server answers by then.
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=600000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90)
        assert "todo" in done.stdout, done.stdout[:500]
        statuses = [json.loads(line)["status"] for line in nav.output().splitlines()
                    if line.startswith("{") and '"uri":"/sam/list1/"' in line]
        assert statuses[0] == 503, statuses
        assert statuses[-1] == 200, statuses
