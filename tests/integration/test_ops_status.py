"""`navigator status` against a running server: what an operator sees per tenant."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import BACKEND_APP, REPO, request, run_navigator

pytestmark = pytest.mark.timeout(60)


def write_config(root: Path, extra: str = "") -> Path:
    config = root / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
{extra}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
    - path: /b/
    - path: /c/
""")
    return config


def run_status(config: Path) -> tuple[str, list[dict[str, str]], list[str]]:
    """The header line, the table rows (column title -> cell) and the lines after the
    table (after a blank line)."""
    done = subprocess.run([sys.executable, "-m", "navigator", "status", "--config", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    table, _, footer = done.stdout.partition("\n\n")
    header, titles, *lines = table.splitlines()
    starts = [titles.index(title) for title in titles.split("  ") if title]
    names = [titles[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    rows = [{name: line[s:e].strip() for name, s, e in
             zip(names, starts, [*starts[1:], None], strict=True)} for line in lines]
    return header, rows, footer.splitlines()


def backend_facts(port: int, tenant: str) -> tuple[str, str]:
    pid = request(port, "GET", f"/{tenant}/pid").body.decode()
    tenant_port = request(port, "GET", f"/{tenant}/env?name=PORT").body.decode()
    return pid, tenant_port


def test_status_lists_tenants_from_the_metrics_endpoint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with run_navigator(config) as nav:
        facts = {tenant: backend_facts(nav.port, tenant) for tenant in ("a", "b")}
        header, rows, footer = run_status(config)

    assert header == f"navigator pid {nav.process.pid} on 127.0.0.1:{nav.port}: 2 tenants"
    assert footer == ["log lines dropped: stdout 0"]  # nothing lost: the pipe is drained
    assert [row["TENANT"] for row in rows] == ["a", "b"]  # c was never requested
    for row in rows:
        pid, port = facts[row["TENANT"]]
        assert row["PATH"] == f"/{row['TENANT']}/"
        assert row["STATE"] == "ready"
        assert (row["PID"], row["PORT"]) == (pid, port)
        assert row["UPTIME"].endswith("s")
        assert row["MEMORY"].endswith("MiB")
        assert row["LAST REQUEST"].endswith(" ago")


def test_status_shows_the_path_of_a_stopped_tenant(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("  pools:\n", "  pools:\n    timeout: 1s\n"))
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/a/x").status == 200
        nav.wait_for_output(r"tenant a stopped", timeout=15)  # idle stop
        _, rows, _ = run_status(config)

    assert [(row["TENANT"], row["PATH"], row["STATE"], row["PID"]) for row in rows] == \
        [("a", "/a/", "stopped", "-")]


def test_status_without_the_endpoint_lists_child_processes(tmp_path: Path) -> None:
    config = write_config(tmp_path, "  metrics:\n    enabled: false")
    with run_navigator(config) as nav:
        pid, port = backend_facts(nav.port, "a")
        header, rows, _ = run_status(config)

    assert header == (f"navigator pid {nav.process.pid} (metrics endpoint disabled): "
                      "1 child processes")
    assert [(row["PID"], row["PORT"]) for row in rows] == [(pid, port)]
    assert str(BACKEND_APP) in rows[0]["TENANT"]


def test_status_without_a_server(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "navigator", "status", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    assert done.returncode == 1
    assert f"no running server found via {tmp_path}/navigator.pid" in done.stderr
