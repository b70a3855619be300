"""Start and stop the processes under test: backends, nginx, Caddy and navigator.

Room: benchmarks, process management. Everything lives in one temporary workspace with its
own configs, pid files, logs and temp paths; the system nginx/Caddy configs and services are
never touched. Processes are pinned with `taskset`, readiness is a TCP connect (plus the
process still being alive) polled against a deadline, and `stop()` signals only the pids this
module started (and, for navigator, the descendants it recorded before stopping it).

Invariants: no shell strings, no broad kills (no pkill/killall), every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from benchmarks import configs

REPO = Path(__file__).resolve().parent.parent
BACKENDS_SCRIPT = Path(__file__).resolve().parent / "backends.py"
_ALLOWED = sorted(os.sched_getaffinity(0))  # read at import, before the harness pins itself
PINNING = len(_ALLOWED) >= 2 and shutil.which("taskset") is not None
LOAD_CORE = _ALLOWED[0]  # wrk, backends, the harness itself
PROXY_CORE = _ALLOWED[1] if PINNING else _ALLOWED[0]  # the proxy under test
TOOLS = ("nginx", "wrk", "caddy")

BACKEND_FILES = {"100b": 100, "64k": 64 * 1024, "1m": 1 << 20, "100m": 100 << 20}
STATIC_FILES = {"1k.bin": 1024, "1m.bin": 1 << 20}


class StartError(RuntimeError):
    """A process did not come up; the message carries the tail of its log."""


def cores_available() -> bool:
    return PINNING


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    if core is None or not cores_available():
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def ensure_tools(tools: Sequence[str] = TOOLS) -> list[str]:
    """Install missing tools with apt-get when root; returns the ones still missing."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"bench: installing {' '.join(missing)}: apt-get install -y {' '.join(missing)}",
              file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        argv = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
        if subprocess.run(argv, env=env, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False)
            subprocess.run(argv, env=env, check=False)
        missing = [tool for tool in tools if shutil.which(tool) is None]
    elif missing:
        print(f"bench: missing {' '.join(missing)}; install them with: "
              f"sudo apt-get install -y {' '.join(missing)}", file=sys.stderr, flush=True)
    return missing


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to the hard limit for this process and its children."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


@dataclass
class Service:
    """One process tree we started. `pids()` is what gets measured."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    include_children: bool = False  # nginx: master + workers
    recorded: list[int] = field(default_factory=list)

    def alive(self) -> bool:
        return self.process.poll() is None

    def pids(self) -> list[int]:
        pids = [self.process.pid]
        if self.include_children:
            with contextlib.suppress(psutil.Error):
                pids += [c.pid for c in psutil.Process(self.process.pid).children()]
        return pids

    def wait_ready(self, timeout: float, ready: Callable[[], bool] | None = None) -> None:
        check = ready or (lambda: port_open(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartError(f"{self.name} exited with {self.process.returncode}:\n"
                                 f"{tail(self.log)}")
            if check():
                return
            time.sleep(0.05)
        raise StartError(f"{self.name} not ready after {timeout:g}s:\n{tail(self.log)}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait with a deadline, then SIGKILL; also ends recorded descendants."""
        with contextlib.suppress(psutil.Error):
            self.recorded += [p.pid for p in
                              psutil.Process(self.process.pid).children(recursive=True)]
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        leftovers: list[psutil.Process] = []
        for pid in self.recorded:
            try:
                leftover = psutil.Process(pid)
                leftover.terminate()
                leftovers.append(leftover)
            except psutil.Error:
                continue
        _, still = psutil.wait_procs(leftovers, timeout=5)
        for leftover in still:
            try:
                leftover.kill()
            except psutil.Error:
                continue


class Workspace:
    """A temp dir with test files and everything the started processes write."""

    def __init__(self, keep: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="navigator-bench-"))
        self.keep = keep
        self.services: list[Service] = []
        self.drains: list[subprocess.Popen[bytes]] = []  # `cat`s emptying stdout pipes
        os.chmod(self.root, 0o755)
        self.files = self.root / "files"
        self.public = self.root / "public"
        self._write_files(self.files, BACKEND_FILES)
        self._write_files(self.public, STATIC_FILES)

    @staticmethod
    def _write_files(folder: Path, sizes: Mapping[str, int]) -> None:
        folder.mkdir(mode=0o755)
        block = os.urandom(1 << 20)
        for name, size in sizes.items():
            with open(folder / name, "wb") as handle:
                written = 0
                while written < size:
                    step = min(size - written, len(block))
                    handle.write(block[:step])
                    written += step

    def dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(mode=0o755, exist_ok=True)
        return path

    def spawn(self, name: str, argv: Sequence[str], port: int, *, cwd: Path | None = None,
              env: Mapping[str, str] | None = None, include_children: bool = False,
              stdout_pipe: bool = False) -> Service:
        """Start `argv` with its output in `<name>.log`: written to the file directly, or
        with `stdout_pipe` through a pipe that a `cat` empties into it (a container's log
        pipe: the path a non-blocking log writer takes)."""
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            target: int | IO[bytes] = out
            if stdout_pipe:
                read_end, target = os.pipe()
                self.drains.append(subprocess.Popen(["cat"], stdin=read_end, stdout=out))
                os.close(read_end)
            process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=target, stderr=subprocess.STDOUT,
                cwd=cwd or self.root, env=dict(env) if env is not None else None,
                start_new_session=True)
            if isinstance(target, int):
                os.close(target)
        service = Service(name, process, log, port, include_children)
        self.services.append(service)
        return service

    def stop(self, service: Service) -> None:
        """Stop one service now and forget it (its recorded pids must not be signalled later,
        when they may belong to someone else)."""
        service.stop()
        if service in self.services:
            self.services.remove(service)

    def close(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()
        for drain in self.drains:  # their writer is gone: each ends at end of file
            try:
                drain.wait(10)
            except subprocess.TimeoutExpired:
                drain.kill()
                drain.wait()
        self.drains.clear()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def _nginx(ws: Workspace, name: str, conf_text: str, port: int, core: int) -> Service:
    folder = ws.dir(name)
    conf = folder / "nginx.conf"
    conf.write_text(conf_text)
    argv = pinned(["nginx", "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
                  core)
    service = ws.spawn(name, argv, port, include_children=True)
    service.wait_ready(10.0)
    return service


def start_backend(ws: Workspace) -> Service:
    """nginx serving the backend files on the load core."""
    port = free_port()
    folder = ws.dir("backend")
    return _nginx(ws, "backend", configs.nginx_files(folder, port, ws.files), port, LOAD_CORE)


@dataclass(frozen=True, slots=True)
class PythonBackends:
    service: Service
    sink_port: int
    ws_port: int


def start_python_backends(ws: Workspace) -> PythonBackends:
    argv = pinned([sys.executable, str(BACKENDS_SCRIPT)], LOAD_CORE)
    service = ws.spawn("pybackends", argv, 0)
    found: dict[str, int] = {}

    def ready() -> bool:
        for line in service.log.read_text(errors="replace").splitlines():
            if line.startswith("ready "):
                found.update({k: int(v) for k, v in
                              (part.split("=") for part in line.split()[1:])})
                return True
        return False

    service.wait_ready(10.0, ready)
    service.port = found["sink"]
    return PythonBackends(service, found["sink"], found["ws"])


@dataclass(frozen=True, slots=True)
class Ports:
    """Where the backends listen; every proxy is configured against these."""

    files: int
    sink: int
    ws: int


@dataclass
class Proxy:
    """A proxy under test: its service and base URLs per kind of scenario."""

    name: str
    service: Service
    urls: dict[str, str]  # kind ("proxy", "static", "upload", "ws") → base URL


def start_nginx_proxy(ws: Workspace, ports: Ports) -> Proxy:
    port, static_port = free_port(), free_port()
    folder = ws.dir("nginx")
    text = configs.nginx_proxy(folder, port, static_port, ports, ws.public)
    service = _nginx(ws, "nginx", text, port, PROXY_CORE)
    return Proxy("nginx", service, _urls(port, static_port, ws_path=True))


def start_caddy_proxy(ws: Workspace, ports: Ports) -> Proxy:
    port, static_port = free_port(), free_port()
    folder = ws.dir("caddy")
    caddyfile = folder / "Caddyfile"
    caddyfile.write_text(configs.caddyfile(folder, port, static_port, ports, ws.public))
    env = {**os.environ, "GOMAXPROCS": "1", "HOME": str(folder),
           "XDG_CONFIG_HOME": str(folder / "config"), "XDG_DATA_HOME": str(folder / "data")}
    argv = pinned(["caddy", "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                  PROXY_CORE)
    service = ws.spawn("caddy", argv, port, env=env)
    service.wait_ready(15.0, lambda: port_open(port) and port_open(static_port))
    return Proxy("caddy", service, _urls(port, static_port, ws_path=True))


FLOOR_SCRIPT = Path(__file__).resolve().parent / "floor.py"


def start_floor_proxy(ws: Workspace, ports: Ports) -> Proxy:
    """The floor relay (benchmarks/floor.py) in front of the file backend: proxy scenarios."""
    port = free_port()
    argv = pinned([sys.executable, str(FLOOR_SCRIPT), str(port), str(ports.files)], PROXY_CORE)
    service = ws.spawn("floor", argv, port)
    service.wait_ready(10.0)
    return Proxy("floor", service, {"proxy": f"http://127.0.0.1:{port}"})


def start_navigator(ws: Workspace, name: str, config_text: str, port: int, *,
                    stdout_pipe: bool = False) -> Service:
    """`python -m navigator --config X` on the proxy core; measured pid = its own only."""
    folder = ws.dir(name)
    config = folder / "navigator.yml"
    config.write_text(config_text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    argv = pinned([sys.executable, "-m", "navigator", "--config", str(config)], PROXY_CORE)
    service = ws.spawn(name, argv, port, cwd=folder, env=env, stdout_pipe=stdout_pipe)

    def ready() -> bool:
        return port_open(port)

    service.wait_ready(20.0, ready)
    return service


def start_navigator_proxy(ws: Workspace, ports: Ports) -> Proxy:
    port = free_port()
    folder = ws.dir("navigator")
    service = start_navigator(ws, "navigator", configs.navigator_proxy(folder, port, ports), port)
    base = f"http://127.0.0.1:{port}"
    return Proxy("navigator", service,
                 {"proxy": base, "upload": base, "ws": base, "download": base})


def start_navigator_tenant(ws: Workspace) -> Proxy:
    """navigator with one tenant (nginx via a shell script) and public_dir for static files."""
    port = free_port()
    folder = ws.dir("navigator-tenant")
    script = folder / "tenant.sh"
    script.write_text(configs.tenant_script(ws.files, pinned_core=LOAD_CORE
                                            if cores_available() else None))
    text = configs.navigator_tenant(folder, port, script, ws.public)
    service = start_navigator(ws, "navigator-tenant", text, port)
    base = f"http://127.0.0.1:{port}"
    return Proxy("navigator-tenant", service, {"proxy": base + "/app", "static": base})


ROUTE_TENANTS_LAST = 1000  # route-lookup tenants are /t0000/ .. /t0999/; the last is hit


def route_tenant_paths(count: int) -> list[str]:
    """The last `count` of /t0000/ .. /t0999/, so every table holds the path requested."""
    return [f"/t{i:04d}/" for i in range(ROUTE_TENANTS_LAST - count, ROUTE_TENANTS_LAST)]


def start_navigator_routes(ws: Workspace, count: int) -> Proxy:
    """navigator with `count` tenants that are never started (route lookup cost)."""
    port = free_port()
    name = f"navigator-{count}-tenants"
    folder = ws.dir(name)
    text = configs.navigator_tenants(folder, port, paths=route_tenant_paths(count),
                                     command="sh", args=["-c", "exit 1"], health_check="/up",
                                     start_port=20000, reject_bots=True)
    service = start_navigator(ws, name, text, port)
    return Proxy(name, service, {"routes": f"http://127.0.0.1:{port}"})


@dataclass(frozen=True, slots=True)
class ColdStartSetup:
    """navigator with `count` cold tenants, plus what runs one of them standalone."""

    service: Service
    base: str  # navigator's URL; tenant i is at base + cold_path(i)
    script: Path  # the tenant command (sh script), also run standalone for its boot time


def cold_path(index: int) -> str:
    return f"/c{index:02d}/"


def start_navigator_cold(ws: Workspace, count: int) -> ColdStartSetup:
    port = free_port()
    folder = ws.dir("navigator-cold")
    script = folder / "tenant.sh"
    script.write_text(configs.cold_tenant_script(LOAD_CORE if cores_available() else None))
    text = configs.navigator_tenants(folder, port, paths=[cold_path(i) for i in range(count)],
                                     command="sh", args=[str(script)], health_check="/up",
                                     start_port=21000 + (port % 100) * 101)
    service = start_navigator(ws, "navigator-cold", text, port)
    return ColdStartSetup(service, f"http://127.0.0.1:{port}", script)


def spawn_tenant(ws: Workspace, name: str, script: Path, port: int) -> Service:
    """The tenant command run by the harness itself, as navigator would run it (PORT set)."""
    return ws.spawn(name, ["sh", str(script)], port, cwd=script.parent,
                    env={**os.environ, "PORT": str(port)}, include_children=True)


def start_static_pair(ws: Workspace) -> tuple[Service, Service]:
    """Fresh nginx and navigator serving `ws.public` on the proxy core (idle-connection RSS):
    nothing else has run through them, so their RSS is the RSS at start."""
    nginx_port, nav_port = free_port(), free_port()
    nginx = _nginx(ws, "nginx-idle", configs.nginx_files(ws.dir("nginx-idle"), nginx_port,
                                                          ws.public), nginx_port, PROXY_CORE)
    folder = ws.dir("navigator-idle")
    navigator = start_navigator(ws, "navigator-idle",
                                configs.navigator_static(folder, nav_port, ws.public), nav_port)
    return nginx, navigator


def _urls(port: int, static_port: int, ws_path: bool) -> dict[str, str]:
    base = f"http://127.0.0.1:{port}"
    urls = {"proxy": base, "upload": base, "download": base,
            "static": f"http://127.0.0.1:{static_port}"}
    if ws_path:
        urls["ws"] = base
    return urls
