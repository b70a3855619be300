"""Per-tenant defaults for frameworks (issue 18), through the real server with real tenant
processes: a PIDFILE of its own in each tenant's env, the readiness probe under the tenant's
prefix (`prefix_health_check`), and a 5xx probe answer that means "not ready yet"
(`ready_on_5xx: false`), while the default keeps the reference's any-answer-is-ready."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Response,
    request,
    run_navigator,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def nav(tmp_path: Path) -> Iterator[Navigator]:
    port = random.randrange(20000, 32000, 101)
    (tmp_path / "strict.notready").touch()
    (tmp_path / "lenient.notready").touch()
    text = f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  startup_timeout: 30s
  pools:
    start_port: {port}
    timeout: 5m
  tenants:
    - path: /rails/alpha/
      root: {tmp_path}
    - path: /own/
      root: {tmp_path}
      env: {{PIDFILE: own/server.pid}}
    - path: /probed/
      prefix_health_check: true
      env: {{REQUEST_LOG: "{tmp_path}/probed.log"}}
    - path: /strict/
      ready_on_5xx: false
      env:
        NOT_READY_FILE: "{tmp_path}/strict.notready"
        REQUEST_LOG: "{tmp_path}/strict.log"
    - path: /lenient/
      env: {{NOT_READY_FILE: "{tmp_path}/lenient.notready"}}
"""
    with run_navigator(write_config(tmp_path, text)) as server:
        yield server


def test_each_tenant_gets_its_own_pidfile_unless_its_env_names_one(
        nav: Navigator, tmp_path: Path) -> None:
    alpha = request(nav.port, "GET", "/rails/alpha/env?name=PIDFILE")
    assert alpha.body.decode() == f"{tmp_path}/tmp/pids/rails-alpha.pid"
    assert request(nav.port, "GET", "/own/env?name=PIDFILE").body == b"own/server.pid"


def test_prefix_health_check_probes_under_the_tenant_path(
        nav: Navigator, tmp_path: Path) -> None:
    assert request(nav.port, "GET", "/probed/x").status == 200
    assert (tmp_path / "probed.log").read_text().splitlines()[0] == "/probed/up"


def test_a_5xx_probe_answer_is_not_ready_when_configured(
        nav: Navigator, tmp_path: Path) -> None:
    answers: list[Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(request(nav.port, "GET", "/strict/x", timeout=40)))
    waiting.start()
    try:
        log = tmp_path / "strict.log"
        # The probe has been answered 500 several times, and the request is still waiting.
        wait_until(lambda: log.exists() and log.read_text().count("/up\n") >= 3, timeout=20)
        assert answers == []
        assert "/strict/x" not in log.read_text()  # never routed to a not-ready tenant
    finally:
        (tmp_path / "strict.notready").unlink()
        waiting.join(30)
    assert len(answers) == 1
    assert (answers[0].status, answers[0].body) == (200, b"ok /strict/x")


def test_by_default_any_probe_answer_is_ready_as_in_the_reference(nav: Navigator) -> None:
    assert request(nav.port, "GET", "/lenient/x").status == 500  # ready, and its 500 relayed
