"""Hot reload: SIGHUP and `-s reload` swap the config atomically, under load, without losing
requests; a bad config leaves the running one in place."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tests.helpers import BACKEND_APP, Reader, connect, request, run_navigator, wait_until

PORT_BASE = random.randrange(20000, 32000, 101)


def config(tmp_path: Path, tenants: list[tuple[str, str]], rewrite: str = "") -> str:
    tenant_lines = "".join(
        f"    - path: {path}\n      env:\n        TENANT_LABEL: {label}\n"
        for path, label in tenants)
    rewrites = f"  rewrites:\n    - from: {rewrite}\n" if rewrite else ""
    return f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
routes:
{rewrites or "  redirects: []"}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {PORT_BASE}
  tenants:
{tenant_lines}"""


def label(port: int, path: str) -> bytes:
    resp = request(port, "GET", f"{path}env?name=TENANT_LABEL")
    return resp.body if resp.status == 200 else b"<%d>" % resp.status


def test_reload_applies_changes_and_keeps_serving_under_load(tmp_path: Path) -> None:
    cfg = tmp_path / "navigator.yml"
    cfg.write_text(config(tmp_path, [("/a/", "a1"), ("/b/", "b1")]))
    with run_navigator(cfg) as nav:
        assert label(nav.port, "/a/") == b"a1"
        failures: list[str] = []
        sent = [0]
        stop = threading.Event()

        def load() -> None:
            with connect(nav.port) as sock:
                reader = Reader(sock)
                while not stop.is_set() and sent[0] < 20000:
                    sock.sendall(b"GET /a/pid HTTP/1.1\r\nHost: t\r\n\r\n")
                    resp = reader.response()
                    sent[0] += 1
                    if resp.status != 200:
                        failures.append(f"{resp.status} {resp.body[:80]!r}")

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        steps = [
            ([("/a/", "a1"), ("/b/", "b1"), ("/c/", "c1")], "", ("/c/", b"c1")),  # added
            ([("/a/", "a1"), ("/c/", "c1")], "", ("/b/", b"<404>")),  # removed
            ([("/a/", "a1"), ("/c/", "c2")], "", ("/c/", b"c2")),  # env changed
            ([("/a/", "a1"), ("/c/", "c2")],
             "\"^/alias/(.*)$\"\n      to: /c/$1", ("/alias/", b"c2")),  # rewrite added
            ([("/a/", "a1"), ("/c/", "c3")], "", ("/c/", b"c3")),
        ]
        try:
            for number, (tenants, rewrite, (path, expected)) in enumerate(steps, 1):
                cfg.write_text(config(tmp_path, tenants, rewrite))
                nav.process.send_signal(signal.SIGHUP)
                wait_until(lambda n=number: nav.output().count("configuration reloaded") >= n,  # type: ignore[misc]
                           10, message=f"reload {number} to be applied")
                wait_until(lambda p=path, e=expected: label(nav.port, p) == e, 20,  # type: ignore[misc]
                           interval=0.05, message=f"reload {number}: {path} -> {expected!r}")
            wait_until(lambda: sent[0] >= 2000, 60, interval=0.05, message="2,000 requests")
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        assert failures == []
        assert sent[0] >= 2000
        assert nav.output().count("configuration reloaded") >= 5


def test_invalid_config_on_reload_keeps_the_running_one(tmp_path: Path) -> None:
    cfg = tmp_path / "navigator.yml"
    good = config(tmp_path, [("/a/", "a1")])
    cfg.write_text(good)
    with run_navigator(cfg) as nav:
        assert label(nav.port, "/a/") == b"a1"
        bad_versions = [
            "server: [unclosed\n",  # bad YAML
            good.replace("start_port: ", "start_port: [1, 2]  # "),  # wrong type
            good.replace("routes:\n  redirects: []",
                         "routes:\n  redirects:\n    - from: \"(unbalanced\"\n      to: /x"),
        ]
        for number, text in enumerate(bad_versions, 1):
            cfg.write_text(text)
            nav.process.send_signal(signal.SIGHUP)
            wait_until(lambda n=number: nav.output().count("rejected") >= n, 10,  # type: ignore[misc]
                       message=f"rejection {number}")
            assert label(nav.port, "/a/") == b"a1"
        rejections = [line for line in nav.output().splitlines() if "rejected" in line]
        assert "navigator.yml" in rejections[0]
        assert "start_port" in rejections[1]
        assert "redirects[0]" in rejections[2]


def test_signal_reload_command(tmp_path: Path) -> None:
    cfg = tmp_path / "navigator.yml"
    cfg.write_text(config(tmp_path, [("/a/", "a1")]))
    with run_navigator(cfg) as nav:
        cfg.write_text(config(tmp_path, [("/a/", "a1"), ("/z/", "z1")]))
        done = subprocess.run(
            [sys.executable, "-m", "navigator", "-s", "reload", "--pid-file",
             str(tmp_path / "navigator.pid")], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert "SIGHUP" in done.stdout
        wait_until(lambda: label(nav.port, "/z/") == b"z1", 20, interval=0.05,
                   message="the new tenant")
    missing = subprocess.run([sys.executable, "-m", "navigator", "-s", "reload", "--pid-file",
                              str(tmp_path / "nothing.pid")], capture_output=True, text=True,
                             timeout=30)
    assert missing.returncode == 1
    assert "no pid file" in missing.stderr


def test_changed_listen_address_rebinds(tmp_path: Path) -> None:
    cfg = tmp_path / "navigator.yml"
    cfg.write_text(config(tmp_path, [("/a/", "a1")]))
    with run_navigator(cfg) as nav:
        old_port = nav.port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        new_port = probe.getsockname()[1]
        probe.close()
        cfg.write_text(config(tmp_path, [("/a/", "a1")]).replace(
            '"127.0.0.1:0"', f'"127.0.0.1:{new_port}"'))
        nav.process.send_signal(signal.SIGHUP)
        wait_until(lambda: nav.output().count("configuration reloaded") >= 1, 10,
                   message="the reload")
        assert label(new_port, "/a/") == b"a1"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", old_port)) != 0, "old address still open"


def test_listen_change_keeps_open_connections_and_refuses_a_busy_address(
        tmp_path: Path) -> None:
    """What docs/deploy-fly.md and the maintenance-boot README say about reload and
    `listen`: a connection accepted on the old address keeps being served after the move;
    a new address that cannot be bound rejects the reload and the old one keeps serving."""
    cfg = tmp_path / "navigator.yml"
    cfg.write_text(config(tmp_path, [("/a/", "a1")]))
    with run_navigator(cfg) as nav, connect(nav.port) as kept, socket.socket() as busy:
        old_port = nav.port
        reader = Reader(kept)
        kept.sendall(b"GET /a/env?name=TENANT_LABEL HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reader.response().body == b"a1"
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cfg.write_text(config(tmp_path, [("/a/", "a2")]).replace(
            '"127.0.0.1:0"', f'"127.0.0.1:{busy.getsockname()[1]}"'))
        nav.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "rejected: cannot listen on" in nav.output(), 10,
                   message="the refused reload")
        assert label(old_port, "/a/") == b"a1"  # old config, old address
        new_port = free_port()
        cfg.write_text(config(tmp_path, [("/a/", "a2")]).replace(
            '"127.0.0.1:0"', f'"127.0.0.1:{new_port}"'))
        nav.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in nav.output(), 10, message="the reload")
        # a rolling restart: the old process serves until the new one is ready
        wait_until(lambda: label(new_port, "/a/") == b"a2", 15, message="the new process")
        kept.sendall(b"GET /a/env?name=TENANT_LABEL HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reader.response().body == b"a2"  # same connection, new config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
