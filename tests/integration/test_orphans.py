"""Issue 19 "never orphan": whatever kills navigator, its children go too.

Real server, real children: a `kill -9` of navigator must take its tenant, managed process,
running hook and in-flight CGI script with it; a restart stops what a killed navigator's
tenant left running (a shell wrapper's server) and gets the same port back; `-s` refuses a
stale pid file that names an unrelated process.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from navigator.tenants.ports import port_is_bindable
from tests.helpers import BACKEND_APP, REPO, request, run_navigator, wait_until

pytestmark = pytest.mark.timeout(90)

MANAGED_APP = REPO / "tests" / "fixtures" / "apps" / "managed_app.py"


def gone(pid: int) -> bool:
    """Dead, or a zombie nobody has reaped yet (it holds no memory and no port)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def killed_at_exit(pids: list[int]) -> Iterator[list[int]]:
    """Whatever the test's outcome, leave none of these processes running."""
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def child_with(nav_pid: int, needle: str) -> int:
    for child in psutil.Process(nav_pid).children():
        with contextlib.suppress(psutil.Error):
            if needle in " ".join(child.cmdline()):
                return child.pid
    return 0


def read_pid(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text())
    return 0


def test_sigkill_takes_tenant_managed_hook_and_cgi_along(tmp_path: Path) -> None:
    hook_pid_file = tmp_path / "hook.pid"
    cgi_pid_file = tmp_path / "cgi.pid"
    script = tmp_path / "slow.cgi"
    script.write_text(f"#!/bin/sh\necho $$ > {cgi_pid_file}\nexec sleep 60\n")
    script.chmod(0o755)
    hook_code = (f"import os, time; open({str(hook_pid_file)!r}, 'w').write(str(os.getpid()));"
                 " time.sleep(60)")
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  cgi_scripts:
    - path: /slow
      script: {script}
managed_processes:
  - name: worker
    command: {sys.executable}
    args: ["{MANAGED_APP}", "{tmp_path}/count", run]
hooks:
  server:
    ready:
      - command: {sys.executable}
        args: ["-c", "{hook_code}"]
        timeout: 2m
applications:
  framework:
    command: {sys.executable}
    args: ["{BACKEND_APP}"]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
""")
    with killed_at_exit([]) as pids, run_navigator(config) as nav:
        tenant = int(request(nav.port, "GET", "/a/pid").body)
        tenant_port = int(request(nav.port, "GET", "/a/env?name=PORT").body)
        pids.append(tenant)
        managed = int(wait_until(lambda: child_with(nav.process.pid, "managed_app.py"),
                                 message="the managed process"))
        hook = int(wait_until(lambda: read_pid(hook_pid_file), message="the ready hook"))
        pids += [managed, hook]
        with socket.create_connection(("127.0.0.1", nav.port), timeout=10) as cgi_client:
            cgi_client.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            cgi = int(wait_until(lambda: read_pid(cgi_pid_file), message="the CGI script"))
            pids.append(cgi)
            assert not any(gone(pid) for pid in pids)

            nav.process.send_signal(signal.SIGKILL)
            nav.process.wait(10)

            for name, pid in (("tenant", tenant), ("managed", managed), ("hook", hook),
                              ("cgi", cgi)):
                wait_until(lambda pid=pid: gone(pid), 10.0,
                           message=f"the {name} process {pid} to die with navigator")
        wait_until(lambda: port_is_bindable(tenant_port), 10.0,
                   message=f"tenant port {tenant_port} to be free")


def wrapper_config(tmp_path: Path) -> Path:
    """A tenant whose shell forks the real server and waits: the parent-death signal reaches
    the shell only, so a kill -9 of navigator leaves the server running (documented limit)."""
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
applications:
  framework:
    command: /bin/sh
    args: ["-c", "{sys.executable} {BACKEND_APP} & wait"]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
""")
    return config


def test_restart_after_sigkill_stops_the_leftovers_and_reuses_the_port(tmp_path: Path) -> None:
    config = wrapper_config(tmp_path)
    with killed_at_exit([]) as pids:
        with run_navigator(config) as first:
            server = int(request(first.port, "GET", "/a/pid").body)
            port = request(first.port, "GET", "/a/env?name=PORT").body.decode()
            shell = psutil.Process(server).ppid()
            pids += [server, shell]
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(10)
        wait_until(lambda: gone(shell), 10.0, message="the tenant's shell to die")
        assert not gone(server)  # the grandchild outlived navigator, holding the port
        assert not port_is_bindable(int(port))

        with run_navigator(config) as second:
            wait_until(lambda: gone(server), 10.0, message="the leftover to be stopped")
            second.wait_for_output(rf"stopping a process in the session of 'a' .*pid {server}"
                                   rf" holding port {port}")
            second.wait_for_output(r"stopped 1 leftover process\(es\)")
            again = int(request(second.port, "GET", "/a/pid").body)
            pids.append(again)
            assert again != server
            assert request(second.port, "GET", "/a/env?name=PORT").body.decode() == port
        assert not (tmp_path / "navigator.pid.children").exists()  # clean stop: no state left


def run_cli(config: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "navigator", *words, "--config",
                           str(config)], capture_output=True, text=True, timeout=30,
                          cwd=REPO, check=False)


@pytest.mark.parametrize("words", [("-s", "reload"), ("-s", "stop"), ("status",)])
def test_stale_pid_file_naming_another_process_is_refused(tmp_path: Path,
                                                          words: tuple[str, ...]) -> None:
    config = tmp_path / "navigator.yml"
    config.write_text(f'server:\n  listen: "127.0.0.1:0"\n  pid_file: {tmp_path}/nav.pid\n')
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "nav.pid").write_text(f"{unrelated.pid}\n")
        done = run_cli(config, *words)
        assert done.returncode == 1
        assert f"process {unrelated.pid} is not navigator (sleep 60)" in done.stderr
        assert done.stdout == ""
        with pytest.raises(subprocess.TimeoutExpired):
            unrelated.wait(0.5)  # still running: it was not signalled
    finally:
        unrelated.kill()
        unrelated.wait(10)


def test_signal_still_reaches_the_real_server(tmp_path: Path) -> None:
    config = tmp_path / "navigator.yml"
    config.write_text(f'server:\n  listen: "127.0.0.1:0"\n  pid_file: {tmp_path}/nav.pid\n')
    with run_navigator(config) as nav:
        done = run_cli(config, "-s", "stop")
        assert done.returncode == 0, done.stderr
        assert nav.process.wait(20) == 0
