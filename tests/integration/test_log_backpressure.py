"""Logging never blocks serving (issue 19): the real server with its stdout on a pipe that
nobody drains, a tenant flooding its own stdout, and log files on a full disk or in a
deleted directory. Requests keep being answered, lost lines are counted in /metrics and
`navigator status`, and one "dropped N log lines" line appears once stdout drains again.

The undrained pipe is a plain `subprocess.Popen(stdout=PIPE)` read only up to the
"listening on" line (tests.helpers.run_navigator would drain it with its pump thread).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import (
    LISTENING,
    REPO,
    Reader,
    connect,
    request,
    run_navigator,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(120)

TENANT_APP = REPO / "tests" / "fixtures" / "apps" / "tenant_app.py"
DROPPED = re.compile(r'navigator_log_lines_dropped_total\{destination="(\w+)"\} (\S+)')
NOTICE = re.compile(r"dropped (\d+) log lines: (\w+) was not accepting writes")
LONG_AGENT = "stall-test/" + "u" * 1200  # ~1.3 KB per access line: 2,000 lines overflow


def config_text(root: Path, *, extra: str = "") -> str:
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  health_check:
    path: /up
    response:
      status: 200
      body: "up"
logging:
  access_log: true
{extra}
applications:
  framework:
    command: {sys.executable}
    args: [{TENANT_APP}]
  pools:
    timeout: 5m
  tenants:
    - path: /t/
"""


@dataclass
class Stalled:
    """navigator with stdout on a pipe read up to its listening line, then left alone."""

    process: subprocess.Popen[bytes]
    port: int
    config: Path
    drained: list[str] = field(default_factory=list)
    _drainer: threading.Thread | None = None

    def drain(self) -> None:
        """Start reading stdout again (the stalled reader recovers)."""
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:
            for raw in stdout:
                self.drained.append(raw.decode("utf-8", "replace"))

        self._drainer = threading.Thread(target=pump, daemon=True)
        self._drainer.start()

    def notices(self) -> list[tuple[int, str]]:
        return [(int(found[1]), found[2]) for line in list(self.drained)
                if (found := NOTICE.search(line))]


@contextmanager
def stalled_navigator(config: Path) -> Iterator[Stalled]:
    env = dict(os.environ, LOG_LEVEL="info")
    process = subprocess.Popen(
        [sys.executable, "-m", "navigator", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(config.parent))
    assert process.stdout is not None
    found: list[int] = []
    early: list[bytes] = []

    def until_listening() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            early.append(raw)
            match = LISTENING.search(raw.decode("utf-8", "replace"))
            if match:
                found.append(int(match.group(2)))
                return  # from here on, nobody reads the pipe

    reader = threading.Thread(target=until_listening, daemon=True)
    reader.start()
    stalled: Stalled | None = None
    try:
        wait_until(lambda: found or process.poll() is not None, 20, message="listening line")
        assert found, b"".join(early).decode("utf-8", "replace")
        reader.join(5)
        stalled = Stalled(process, found[0], config)
        yield stalled
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if stalled is not None and stalled._drainer is not None:
            stalled._drainer.join(5)  # it ends at end of file, now the server is gone
        process.stdout.close()


def dropped(port: int) -> dict[str, float]:
    body = request(port, "GET", "/_navigator/metrics", timeout=10).body.decode()
    return {name: float(value) for name, value in DROPPED.findall(body)}


def hammer(port: int, count: int) -> None:
    """`count` requests, each answered within its socket timeout: health checks on one
    keep-alive connection, every 50th on a fresh connection."""
    head = (f"GET /up HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {LONG_AGENT}\r\n\r\n"
            ).encode()
    with connect(port, timeout=10) as sock:
        reader = Reader(sock)
        for n in range(count):
            if n % 50 == 0:
                fresh = request(port, "GET", "/up", headers={"User-Agent": LONG_AGENT},
                                timeout=10)
                assert (fresh.status, fresh.body) == (200, b"up")
                continue
            sock.sendall(head)
            response = reader.response()
            assert (response.status, response.body) == (200, b"up"), n


def test_undrained_stdout_keeps_serving_and_counts_drops(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(tmp_path))
    with stalled_navigator(config) as nav:
        hammer(nav.port, 2000)
        drops = dropped(nav.port)
        assert drops["stdout"] > 0, drops
        status = subprocess.run(
            [sys.executable, "-m", "navigator", "status", "--config", str(config)],
            capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
        assert status.returncode == 0, status.stderr
        shown = re.search(r"^log lines dropped: stdout (\d+)$", status.stdout, re.MULTILINE)
        assert shown is not None, status.stdout
        assert int(shown[1]) > 0

        nav.drain()
        wait_until(nav.notices, 20, message="the dropped-lines notice")
        [(count, destination)] = nav.notices()
        assert destination == "stdout"
        assert 0 < count <= dropped(nav.port)["stdout"]
        # stdout works again: the next request's access line arrives whole
        request(nav.port, "GET", "/up", headers={"User-Agent": "after-drain"})
        wait_until(lambda: any('"user_agent":"after-drain"' in line for line in nav.drained),
                   10, message="an access line after the drain")
        nav.process.send_signal(signal.SIGTERM)
        assert nav.process.wait(30) == 0


def test_shutdown_with_stalled_stdout_exits_within_deadline(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(tmp_path))
    with stalled_navigator(config) as nav:
        hammer(nav.port, 1000)
        assert dropped(nav.port)["stdout"] > 0
        nav.process.send_signal(signal.SIGTERM)
        assert nav.process.wait(30) == 0  # nobody ever reads: exit must not wait for it


def test_tenant_flooding_stdout_while_ours_is_stalled_keeps_serving(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(tmp_path))
    with stalled_navigator(config) as nav:
        hammer(nav.port, 2000)  # stdout's pipe and the writer's buffer are full now
        before = dropped(nav.port)["stdout"]
        assert before > 0
        answers: list[tuple[int, bytes]] = []

        def spew() -> None:  # 50 MB: 51,200 lines of 1 KiB
            response = request(nav.port, "GET", "/t/spew?lines=51200&size=1024", timeout=90)
            answers.append((response.status, response.body))

        flood = threading.Thread(target=spew, daemon=True)
        flood.start()
        checks = 0
        while flood.is_alive() and checks < 10_000:  # the health check answers meanwhile
            assert request(nav.port, "GET", "/up", timeout=10).status == 200
            checks += 1
        flood.join(90)
        assert answers == [(200, b"spewed 51200")]
        wait_until(lambda: dropped(nav.port)["stdout"] - before >= 51200, 30,
                   message="every tenant line counted as dropped")
        assert request(nav.port, "GET", "/t/pid", timeout=10).status == 200


def file_config(tmp_path: Path, log_file: str) -> Path:
    return write_config(tmp_path, config_text(tmp_path, extra=f"  file: {log_file}"))


def test_log_file_on_a_full_disk_drops_and_counts(tmp_path: Path) -> None:
    with run_navigator(file_config(tmp_path, "/dev/full")) as nav:  # every write: ENOSPC
        assert request(nav.port, "GET", "/t/spew?lines=100&size=50").status == 200
        wait_until(lambda: dropped(nav.port).get("file", 0) >= 100, 20,
                   message="file drops counted")
        nav.wait_for_output(r"cannot write log file /dev/full: No space left on device")
        assert request(nav.port, "GET", "/up").status == 200
        assert nav.process.poll() is None


def test_log_file_directory_deleted_is_recreated(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with run_navigator(file_config(tmp_path, f"{logs}/{{{{app}}}}.log")) as nav:
        assert request(nav.port, "GET", "/t/spew?lines=3&size=20").status == 200
        log_file = logs / "t.log"
        wait_until(lambda: log_file.exists() and "xxxx" in log_file.read_text(), 10,
                   message="tenant output in the log file")
        text = log_file.read_text()
        # logging.file carries tenant output only: no server lines, no access log
        assert "navigator.server" not in text, text
        assert '"client_ip"' not in text, text
        shutil.rmtree(logs)
        deadline = time.monotonic() + 20
        while not log_file.exists():  # recreated within the reopen interval
            assert time.monotonic() < deadline, "log file not recreated"
            assert request(nav.port, "GET", "/t/spew?lines=1&size=20").status == 200

        def spewed_into_new_file() -> bool:
            # the line that recreated the file may be another of the tenant's lines, with the
            # last spew still in the deleted one: keep the tenant writing until one lands
            assert request(nav.port, "GET", "/t/spew?lines=1&size=20").status == 200
            return "xxxx" in log_file.read_text()

        wait_until(spewed_into_new_file, 10, interval=0.2, message="lines in the new file")
        assert request(nav.port, "GET", "/up").status == 200


def test_log_file_path_unusable_drops_and_keeps_serving(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with run_navigator(file_config(tmp_path, f"{logs}/{{{{app}}}}.log")) as nav:
        assert request(nav.port, "GET", "/t/spew?lines=1&size=20").status == 200
        wait_until(lambda: (logs / "t.log").exists(), 10, message="the log file")
        shutil.rmtree(logs)
        logs.write_text("a file where the log directory was")  # mkdir cannot succeed

        def counted() -> bool:
            assert request(nav.port, "GET", "/t/spew?lines=10&size=20").status == 200
            return dropped(nav.port).get("file", 0) > 0

        wait_until(counted, 20, interval=0.2, message="file drops counted")
        nav.wait_for_output(r"cannot write log file .*t\.log")
        assert request(nav.port, "GET", "/up").status == 200


def access_file_config(tmp_path: Path, target: str) -> Path:
    text = config_text(tmp_path).replace("  access_log: true", f"  access_log: {target}")
    return write_config(tmp_path, text)


def test_access_log_file_on_a_full_disk_drops_and_counts(tmp_path: Path) -> None:
    with run_navigator(access_file_config(tmp_path, "/dev/full")) as nav:
        for _ in range(20):
            assert request(nav.port, "GET", "/up").status == 200
        wait_until(lambda: dropped(nav.port).get("access_file", 0) >= 20, 20,
                   message="access-file drops counted")
        nav.wait_for_output(r"cannot write log file /dev/full")


def test_access_log_file_directory_deleted_is_recreated(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    target = logs / "access.log"
    with run_navigator(access_file_config(tmp_path, str(target))) as nav:
        request(nav.port, "GET", "/up", headers={"User-Agent": "before"})
        wait_until(lambda: target.exists() and "before" in target.read_text(), 10,
                   message="an access line in the file")
        shutil.rmtree(logs)

        def recreated() -> bool:
            request(nav.port, "GET", "/up", headers={"User-Agent": "after"})
            return target.exists() and "after" in target.read_text()

        wait_until(recreated, 20, interval=0.2, message="access lines in the recreated file")
        assert dropped(nav.port).get("access_file") == 0
