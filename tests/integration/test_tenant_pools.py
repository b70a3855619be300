"""Per-tenant process pools for real (issue 17): a deliberately single-threaded tenant (one
request at a time, 50 ms each) behind the real server. Concurrency is what the backends
observed (distinct pids, requests running together), never a timing."""

from __future__ import annotations

import json
import random
import signal
import socket
import struct
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.helpers import (
    BACKEND_APP,
    REPO,
    Navigator,
    Reader,
    Response,
    connect,
    request,
    run_navigator,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

SERIAL_APP = REPO / "tests" / "fixtures" / "apps" / "serial_app.py"


def write_config(root: Path, *, pools: str = "", tenant: str = "", label: str = "one",
                 delay: float = 0.05) -> Path:
    active = root / "active"
    active.mkdir(exist_ok=True)
    path = root / "navigator.yml"
    path.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: ["{SERIAL_APP}", "{{{{port}}}}"]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
{pools}
  tenants:
    - path: /s/
      env:
        ACTIVE_DIR: "{active}"
        DELAY: "{delay}"
        LABEL: "{label}"
{tenant}
""")
    return path


def tenant_pids(nav: Navigator) -> list[int]:
    """The serial apps the server runs now."""
    pids = []
    for child in psutil.Process(nav.process.pid).children(recursive=True):
        try:
            if any("serial_app.py" in part for part in child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return sorted(pids)


def burst(port: int, count: int) -> list[Response]:
    with ThreadPoolExecutor(count) as workers:
        return list(workers.map(lambda _: request(port, "GET", "/s/work", timeout=30),
                                range(count)))


def facts(responses: list[Response]) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in responses if r.status == 200]


def most_together(port: int, *, rounds: int, size: int,
                  enough: Callable[[set[object], int], bool]) -> tuple[set[object], int]:
    """Bursts of `size` concurrent requests (at most `rounds`) until `enough(pids, most)`:
    the pids that answered and the most requests the backends saw running together."""
    pids: set[object] = set()
    most = 0
    for _ in range(rounds):
        answers = burst(port, size)
        assert [r.status for r in answers] == [200] * size
        for fact in facts(answers):
            pids.add(fact["pid"])
            most = max(most, int(str(fact["together"])))
        if enough(pids, most):
            break
    return pids, most


def test_one_process_serves_one_request_at_a_time(tmp_path: Path) -> None:
    with run_navigator(write_config(tmp_path, pools="    max_concurrency: 1")) as nav:
        pids, most = most_together(nav.port, rounds=3, size=6, enough=lambda p, m: False)
    assert len(pids) == 1
    assert most == 1


def test_throughput_scales_with_max_processes(tmp_path: Path) -> None:
    config = write_config(tmp_path, pools="    max_processes: 4\n    max_concurrency: 1")
    with run_navigator(config) as nav:
        pids, most = most_together(nav.port, rounds=30, size=12,
                                   enough=lambda p, m: len(p) == 4 and m == 4)
        assert len(tenant_pids(nav)) == 4  # never more than max_processes
    assert len(pids) == 4
    assert most == 4  # four single-threaded processes served four requests at once


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    config = write_config(tmp_path, delay=1.0,
                          pools="    max_concurrency: 1\n    max_queue: 2")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/s/up").status == 200  # booted
        answers = burst(nav.port, 8)
        metrics = request(nav.port, "GET", "/_navigator/metrics").body.decode()
    statuses = sorted(r.status for r in answers)
    refused = [r for r in answers if r.status == 503]
    assert set(statuses) == {200, 503}
    assert statuses.count(200) >= 3  # one served, two waited their turn
    for answer in refused:
        assert answer.header("retry-after") == "5"
        assert b"Service Temporarily Unavailable" in answer.body
    line = 'navigator_tenant_queue_full_total{tenant="s"}'
    assert f"{line} {len(refused)}" in metrics


def test_min_instances_run_before_any_request(tmp_path: Path) -> None:
    config = write_config(tmp_path, pools="    max_processes: 3",
                          tenant="      min_instances: 2")
    with run_navigator(config) as nav:
        wait_until(lambda: len(tenant_pids(nav)) == 2, 20, message="two warm processes")
        nav.wait_for_output(r"tenant s ready on port .*")
        booted = tenant_pids(nav)
        assert request(nav.port, "GET", "/s/work").status == 200
        assert tenant_pids(nav) == booted  # no start for the first request


def test_recycling_after_max_requests(tmp_path: Path) -> None:
    config = write_config(tmp_path, pools="    max_requests: 5")
    with run_navigator(config) as nav:
        seen: list[int] = []
        failures = 0
        for _ in range(100):  # bounded: the replacement shows up after 5 requests
            answer = request(nav.port, "GET", "/s/work")
            if answer.status != 200:
                failures += 1
                continue
            seen.append(int(json.loads(answer.body)["pid"]))
            if len(set(seen)) == 2:
                break
        first = seen[0]
        assert failures == 0
        assert len(set(seen)) == 2
        assert seen.index(next(p for p in seen if p != first)) >= 5  # not before 5 requests
        nav.wait_for_output(r"tenant s: recycling pid \d+ \(max_requests\)")
        wait_until(lambda: first not in tenant_pids(nav), 20, message="the old one stopped")


def test_reload_with_new_env_is_a_rolling_restart_that_loses_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, pools="    max_processes: 2\n    max_concurrency: 1",
                          tenant="      min_instances: 2")
    with run_navigator(config) as nav:
        wait_until(lambda: len(tenant_pids(nav)) == 2, 20, message="two processes")
        old = set(tenant_pids(nav))
        labels: list[str] = []
        failures: list[int] = []

        def client(_: int) -> None:
            for _ in range(60):  # bounded; each request takes >= 50 ms
                answer = request(nav.port, "GET", "/s/work", timeout=30)
                if answer.status != 200:
                    failures.append(answer.status)
                    continue
                labels.append(str(json.loads(answer.body)["label"]))

        with ThreadPoolExecutor(4) as workers:
            running = [workers.submit(client, n) for n in range(4)]
            wait_until(lambda: len(labels) >= 10, 30, message="load before the reload")
            config.write_text(config.read_text().replace('LABEL: "one"', 'LABEL: "two"'))
            nav.process.send_signal(signal.SIGHUP)
            for future in running:
                future.result()
        nav.wait_for_output(r"tenant s: 2 process\(es\) replaced")
        wait_until(lambda: not old & set(tenant_pids(nav)), 20, message="old ones stopped")
        assert len(tenant_pids(nav)) == 2
    print(f"rolling restart under load: {len(labels) + len(failures)} requests, "
          f"{len(failures)} failures, {labels.count('two')} answered by the new processes")
    assert failures == []
    assert len(labels) == 240
    assert labels.count("two") > 0
    assert labels[-1] == "two"


def test_a_websocket_holds_its_process_slot_until_it_closes(tmp_path: Path) -> None:
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: ["{BACKEND_APP}"]
  health_check: /up
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
    max_concurrency: 1
    queue_timeout: 500ms
  tenants:
    - path: /a/
""")
    with run_navigator(config) as nav:  # a boot takes longer than this queue_timeout
        wait_until(lambda: request(nav.port, "GET", "/a/x").status == 200, 15,
                   message="the tenant booted")
        with connect(nav.port) as ws:
            ws.sendall(b"GET /a/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       b"Sec-WebSocket-Version: 13\r\n\r\n")
            reader = Reader(ws)
            assert reader.response().status == 101
            ws.sendall(b"ping")
            assert reader.read_exactly(4) == b"ping"
            # the tunnel holds the one slot: a request waits its queue_timeout, then 503
            assert request(nav.port, "GET", "/a/x").status == 503
        wait_until(lambda: request(nav.port, "GET", "/a/x").status == 200, 10,
                   message="the slot back after the tunnel closed")


def test_a_process_over_its_soft_memory_limit_is_replaced(tmp_path: Path) -> None:
    config = write_config(tmp_path, tenant="      memory_soft_limit: 1M")  # any Python is over
    with run_navigator(config) as nav:
        first = json.loads(request(nav.port, "GET", "/s/work").body)["pid"]
        nav.wait_for_output(rf"tenant s: recycling pid {first} \(memory \d+ bytes > 1048576\)",
                            timeout=30)
        wait_until(lambda: first not in tenant_pids(nav), 20, message="the old one stopped")
        answer = request(nav.port, "GET", "/s/work")
        assert answer.status == 200
        assert json.loads(answer.body)["pid"] != first


def queue_length(nav: Navigator) -> int | None:
    for line in request(nav.port, "GET", "/_navigator/metrics").body.decode().splitlines():
        if line.startswith('navigator_tenant_queue_length{tenant="s"}'):
            return int(float(line.split()[-1]))
    return None


def test_a_client_that_leaves_gives_up_its_place_in_the_queue(tmp_path: Path) -> None:
    config = write_config(tmp_path, delay=30.0,  # the request in service outlasts the test
                          pools="    max_concurrency: 1\n    queue_timeout: 60s",
                          tenant="      min_instances: 1")
    with run_navigator(config) as nav:
        nav.wait_for_output(r"tenant s ready on port", timeout=20)
        with ThreadPoolExecutor(1) as worker:
            held = worker.submit(request, nav.port, "GET", "/s/work", timeout=60)
            wait_until(lambda: len(list((tmp_path / "active").iterdir())) == 1, 10,
                       message="the slow request in service")
            waiting = [connect(nav.port) for _ in range(3)]
            for sock in waiting:
                sock.sendall(b"GET /s/work HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_until(lambda: queue_length(nav) == 3, 10, message="three queued")
            for sock in waiting:  # reset (a FIN alone is a half-close: still waiting)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            # long before the queue_timeout and the slow request's end
            wait_until(lambda: queue_length(nav) == 0, 10, message="the queue emptied")
            for child in psutil.Process(nav.process.pid).children(recursive=True):
                child.kill()  # ends the slow request: the test is over
            held.result()


def test_restart_command_is_a_rolling_restart_that_loses_nothing(tmp_path: Path) -> None:
    """`navigator restart s` while four clients keep the tenant busy: every request is
    answered 200, and the last ones by the new processes."""
    import subprocess

    config = write_config(tmp_path, pools="    max_processes: 2\n    max_concurrency: 1",
                          tenant="      min_instances: 2")
    with run_navigator(config) as nav:
        wait_until(lambda: len(tenant_pids(nav)) == 2, 20, message="two processes")
        old = set(tenant_pids(nav))
        pids: list[int] = []
        failures: list[int] = []

        def client(_: int) -> None:
            for _ in range(40):  # bounded; each request takes >= 50 ms
                answer = request(nav.port, "GET", "/s/work", timeout=30)
                if answer.status != 200:
                    failures.append(answer.status)
                    continue
                pids.append(int(str(json.loads(answer.body)["pid"])))

        with ThreadPoolExecutor(4) as workers:
            running = [workers.submit(client, n) for n in range(4)]
            wait_until(lambda: len(pids) >= 10, 30, message="load before the restart")
            done = subprocess.run([sys.executable, "-m", "navigator", "restart", "s",
                                   str(config)], capture_output=True, text=True, timeout=60,
                                  cwd=REPO, check=False)
            for future in running:
                future.result()
        assert done.returncode == 0, done.stderr
        assert "restarted tenant s: 2 processes" in done.stdout
        wait_until(lambda: not old & set(tenant_pids(nav)), 20, message="old ones stopped")
        new = set(tenant_pids(nav))
    print(f"navigator restart under load: {len(pids) + len(failures)} requests, "
          f"{len(failures)} failures, {sum(p in new for p in pids)} answered by the new ones")
    assert failures == []
    assert len(pids) == 160
    assert pids[-1] in new
