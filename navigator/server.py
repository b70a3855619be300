"""Composition root: builds the long-lived objects, owns startup, reload and shutdown order.

Room: I/O wiring. The only place that constructs the supervisor, pool, listeners and shared
state and hands them to each other. Nothing imports this module back. One coroutine (`run`)
owns the lifecycle; signal handlers only enqueue commands for it.

Startup order (reference section 1): config → logging → stop what a killed predecessor left
running (its state file beside the pid file) → pid file and our own state file → idle timer →
managed processes → server.start hooks (fatal) → listen → server.ready hooks in the background.
Shutdown order (section 15.2): stop idle timer → stop listening → let in-flight requests
finish within the drain time → close tunnels → server.stop hooks → tenant stop hooks → stop
tenants (SIGTERM, grace, SIGKILL) → stop managed processes → remove the pid file and the state
file. All of it fits `server.limits.shutdown_timeout` (shutdownplan): the drain gets what the
stop hooks' timeouts and the graces leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from navigator import __version__
from navigator.config.loader import ConfigError, load_config
from navigator.config.runtime import Config
from navigator.config.shutdownplan import phase_window, plan_shutdown
from navigator.http.acceptor import Acceptor, listen
from navigator.http.connection import HttpConnection
from navigator.http.state import ServerState
from navigator.ops.accesslog import AccessLogger, open_access_log
from navigator.ops.control import ControlListener, control_path
from navigator.ops.logs import LogOutputs, configure_logging
from navigator.ops.logwriter import FdLineWriter, FileLineWriter
from navigator.ops.metrics import Metrics
from navigator.ops.metricsserver import start_metrics_listener
from navigator.ops.observer import RequestRecorder, feed_server_gauges
from navigator.ops.restart import TenantRestarter
from navigator.ops.statuspage import RecentEvents, page_rows, render_status_page
from navigator.proxy.upstream import UpstreamPool
from navigator.tenants.hooks import HookResult, run_hooks
from navigator.tenants.idle import MachineIdle, make_action
from navigator.tenants.leftovers import ChildLedger, state_path, stop_leftovers
from navigator.tenants.supervisor import Supervisor
from navigator.web.filecache import FileCache
from navigator.web.snapshot import build_snapshot, snapshot_warnings

log = logging.getLogger("navigator.server")

SWEEP_INTERVAL = 1.0
LOOPBACK = "127.0.0.1"


class Server:
    """One navigator process: listeners, tenants, managed processes, hooks."""

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None,
                 outputs: LogOutputs | None = None) -> None:
        self.config = config
        # The log destinations `configure_logging` opened (stdout shared with the access log).
        self.outputs = outputs if outputs is not None else LogOutputs(FdLineWriter(1))
        self.environ = dict(os.environ if environ is None else environ)
        self.loaded_at = time.time()
        self._commands: asyncio.Queue[str] | None = None
        self._servers: list[Acceptor] = []
        self._metrics_server: asyncio.Server | None = None
        self.metrics_bound: tuple[str, int] | None = None
        self.state: ServerState | None = None
        self.supervisor: Supervisor | None = None
        self.bound: list[tuple[str, int]] = []
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._ready_task: asyncio.Task[Any] | None = None
        self.access: AccessLogger | None = None
        self._access_file: FileLineWriter | None = None
        self.idle: MachineIdle | None = None
        self._exit_event: asyncio.Event | None = None
        self.metrics = Metrics()
        self.control: ControlListener | None = None
        self.started_at = time.time()
        self.recent = RecentEvents(self.metrics, time.time)  # for the status page

    # --- lifecycle ---------------------------------------------------------------------------
    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._commands = asyncio.Queue()
        config = self.config
        snapshot = build_snapshot(config)
        for warning in snapshot_warnings(snapshot):
            log.warning("config: %s", warning)
        access_file = self._access_file = self._open_access_log(config)
        children_file = state_path(config.pid_file)
        await asyncio.to_thread(stop_leftovers, children_file)  # a killed server's strays
        self._write_pid_file(config.pid_file)
        ledger = ChildLedger(children_file)
        ledger.open()
        metrics = self.metrics
        supervisor = Supervisor(config, environ=self.environ, events=self.recent,
                                ledger=ledger)
        self.supervisor = supervisor
        pool = UpstreamPool(loop)
        state = ServerState(loop=loop, snapshot=snapshot, pool=pool, tenants=supervisor,
                            files=FileCache())
        self.state = state
        outputs = self.outputs
        outputs.attach(loop)  # a stalled stdout resumes when the loop sees it drain
        metrics.log_lines_dropped.set_source(self._log_drops)
        self.access = AccessLogger(access_file if access_file is not None else outputs.stdout,
                                   config.logging.access_log, outputs.vector, loop=loop)
        state.observer = RequestRecorder(self.access, metrics, config.trust_proxy)
        state.metrics = metrics
        state.status_page = self._status_page
        state.on_reload_request = self._reload_from_hook
        self._exit_event = asyncio.Event()
        idle = MachineIdle(config.idle, loop, make_action(config.idle, config.stamp,
                                                          self.environ, self._exit_event),
                           self._run_idle_hooks)
        state.activity = idle
        self.idle = idle
        feed_server_gauges(metrics, supervisor.status, state.connections, idle)
        idle.start()
        state.spawn(self._exit_when_idle_says())
        supervisor.add_exit_listener(lambda tenant, port: pool.drop(LOOPBACK, port))
        self._install_signals(loop)
        # `navigator restart NAME|PATH`: a rolling restart over the control socket.
        self.control = ControlListener(control_path(config.pid_file), {
            "restart": TenantRestarter(supervisor, lambda: state.snapshot)})
        try:
            await self.control.start()
            await supervisor.start()
            result = await run_hooks(config.server_hooks.start, self.environ)
            if not result.ok:
                log.error("server start hooks failed: exiting")
                await supervisor.shutdown(5.0)
                return 1
            await self._listen(config)
            await self._listen_metrics(config)
            self._arm_sweep()
            self._ready_task = state.spawn(self._run_ready_hooks(initial=True))
            return await self._command_loop()
        finally:
            await self.control.close()
            self._remove_pid_file(config.pid_file)
            ledger.close()

    async def _rebind(self, config: Config) -> None:
        """Listen on the new address, then stop accepting on the old ones."""
        old_servers, self._servers = self._servers, []
        old_bound, self.bound = self.bound, []
        try:
            await self._listen(config)
        except OSError:
            self._servers, self.bound = old_servers, old_bound
            raise
        for server in old_servers:
            server.close()

    async def _listen(self, config: Config) -> None:
        assert self.state is not None
        loop = self.state.loop
        state = self.state
        host = config.listen.host or None
        listeners = await listen(loop, lambda peer: HttpConnection(state, peer), host,
                                 config.listen.port, backlog=4096)
        self._servers += listeners
        for listener in listeners:
            addr = listener.sock.getsockname()
            self.bound.append((addr[0], addr[1]))
        state.listen_port = self.bound[0][1] if self.bound else config.listen.port
        for host_, port in self.bound:
            log.info("navigator listening on http://%s:%d", host_, port)

    async def _listen_metrics(self, config: Config) -> None:
        """Open (or move, or close) the internal metrics listener to match `config`."""
        assert self.state is not None
        settings = config.metrics
        old = self._metrics_server
        server = None
        if settings.enabled and settings.listen is not None:
            server = await start_metrics_listener(  # the new socket first, as for _rebind
                self.state.loop, self.metrics, settings.listen.host, settings.listen.port,
                settings.path)
        self._metrics_server, self.metrics_bound = server, None
        if server is not None:
            host, port = server.sockets[0].getsockname()[:2]
            self.metrics_bound = (host, port)
            log.info("navigator metrics on http://%s:%d%s", host, port, settings.path)
        if old is not None:
            old.close()

    async def _command_loop(self) -> int:
        assert self._commands is not None
        while True:
            command = await self._commands.get()
            if command == "reload":
                self.metrics.config_reloaded(await self.reload(self.config.source))
            elif command.startswith("reload:"):
                self.metrics.config_reloaded(await self.reload(Path(command.partition(":")[2])))
            elif command == "stop":
                await self.shutdown()
                return 0
            elif command == "dump":
                self._dump_connections()

    def _dump_connections(self) -> None:
        """SIGUSR1: one log line per open client connection, for "what is stuck?"."""
        assert self.state is not None
        now = self.state.loop.time()
        connections = list(self.state.connections)
        log.warning("connection dump: %d open, %d idle backend connections, %d tasks",
                    len(connections), self.state.pool.idle_count(), len(self.state.tasks))
        for conn in connections:
            log.warning("connection %s", conn.describe(now))

    def request(self, command: str) -> None:
        """Enqueue a command for the lifecycle loop (safe from signal handlers)."""
        if self._commands is not None:
            self._commands.put_nowait(command)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig, command in ((signal.SIGTERM, "stop"), (signal.SIGINT, "stop"),
                             (signal.SIGHUP, "reload"), (signal.SIGUSR1, "dump")):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request, command)

    async def _run_idle_hooks(self, which: str) -> HookResult:
        hooks = self.config.server_hooks
        result = await run_hooks(hooks.idle if which == "idle" else hooks.resume, self.environ)
        if which == "resume" and result.ok and result.reload_config:
            self._reload_from_hook(result.reload_config)
        return result

    async def _exit_when_idle_says(self) -> None:
        """The `exit` idle action: a graceful stop, as if SIGTERM had arrived."""
        assert self._exit_event is not None
        await self._exit_event.wait()
        log.info("idle: exiting the process")
        self.request("stop")

    # --- reload --------------------------------------------------------------------------------
    async def reload(self, path: Path) -> bool:
        """Load, validate and resolve completely, then swap; on any error keep the old config."""
        assert self.state is not None
        assert self.supervisor is not None
        try:
            config = load_config(path, self.environ)
            snapshot = build_snapshot(config, previous=self.state.snapshot)
            new_logging = config.logging != self.config.logging
            access_file = self._open_access_log(config) if new_logging else self._access_file
        except (ConfigError, ValueError, OSError) as exc:
            log.error("reload of %s rejected, keeping the running config: %s", path, exc)
            return False
        for warning in (*config.warnings, *snapshot_warnings(snapshot)):
            log.warning("config: %s", warning)
        if config.listen != self.config.listen:
            try:  # open the new socket before closing the old, so nothing is refused
                await self._rebind(config)
            except OSError as exc:
                log.error("reload of %s rejected: cannot listen on %s:%d: %s", path,
                          config.listen.host or "*", config.listen.port, exc)
                if new_logging and access_file is not None:
                    access_file.close()
                return False
        if config.metrics != self.config.metrics:
            try:
                await self._listen_metrics(config)
            except OSError as exc:  # the public side changed already: keep going, say so
                log.error("metrics listener not moved: %s", exc)
        if new_logging:
            self._swap_logging(config, access_file)
        self.state.observer = RequestRecorder(self._access_logger(), self.metrics,
                                              config.trust_proxy)
        self.state.snapshot = snapshot
        self.config = config
        self.loaded_at = time.time()
        await self.supervisor.apply_config(config)
        if self.idle is not None and self._exit_event is not None:
            self.idle.configure(config.idle, make_action(config.idle, config.stamp, self.environ,
                                                         self._exit_event))
        log.info("configuration reloaded from %s (%d tenants)", path, len(config.tenants))
        result = await run_hooks(config.server_hooks.start, self.environ)
        if not result.ok:
            log.warning("server start hooks failed after reload")
        self.state.spawn(self._run_ready_hooks(initial=False))
        return True

    async def _run_ready_hooks(self, *, initial: bool) -> None:
        await asyncio.sleep(0.1 if initial else 0)
        hooks = self.config.server_hooks.ready
        if not hooks:
            return
        result = await run_hooks(hooks, self.environ)
        if result.ok and result.reload_config and initial:
            self._reload_from_hook(result.reload_config)

    def _reload_from_hook(self, target: str) -> None:
        """Reference 14.2: another file → reload it; same file → only if it changed since."""
        path = Path(target)
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.resolve() != self.config.source.resolve():
            if path.exists():
                self.request(f"reload:{path}")
            else:
                log.warning("reload_config %s does not exist", path)
        elif path.exists() and path.stat().st_mtime > self.loaded_at:
            self.request(f"reload:{path}")

    # --- periodic sweep ------------------------------------------------------------------------
    def _arm_sweep(self) -> None:
        assert self.state is not None
        self._sweep_handle = self.state.loop.call_later(SWEEP_INTERVAL, self._sweep)

    def _sweep(self) -> None:
        """Expire connection deadlines (header, keep-alive, body, upstream, websocket) and
        pick up a changed htpasswd file: one `stat` a second, off the request path."""
        assert self.state is not None
        now = self.state.loop.time()
        for conn in list(self.state.connections):
            try:
                conn.expire(now)  # a no-op unless its deadline has passed
            except Exception:
                log.exception("error expiring a connection")
        users = self.state.snapshot.auth
        if users is not None:
            try:
                users.refresh()
            except Exception:
                log.exception("error re-reading the htpasswd file")
        self._arm_sweep()

    # --- shutdown ------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Graceful stop within `server.limits.shutdown_timeout`, by construction: the drain
        gets what remains after reserving the stop hooks' timeouts and the process graces
        (shutdownplan), and each later phase is clipped to the budget's end."""
        assert self.state is not None
        assert self.supervisor is not None
        state = self.state
        loop = state.loop
        plan = plan_shutdown(self.config, self.supervisor.policy.stop_grace)
        end = loop.time() + plan.budget
        deadline = loop.time() + plan.drain
        log.info("shutting down: %s", plan.describe())
        state.shutting_down = True
        if self.control is not None:
            await self.control.close()
        if self.idle is not None:
            self.idle.stop()
        for server in self._servers:
            server.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        for conn in list(state.connections):
            conn.shutdown_idle()
        while state.connections and state.loop.time() < deadline:
            busy = [c for c in state.connections if not c.shutdown_idle()]
            if not busy:
                break
            await asyncio.sleep(0.05)
        state.cable.close_all()
        await state.machines.close()
        for conn in list(state.connections):
            conn.abort()
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        limits = self.config.limits
        try:
            result = await asyncio.wait_for(
                run_hooks(self.config.server_hooks.stop, self.environ,
                          default_timeout=limits.stop_hook_timeout),
                phase_window(plan.server_hooks, end - loop.time(), plan.after_server_hooks))
        except TimeoutError:
            log.warning("server stop hooks cut off by the shutdown budget")
            result = HookResult(False)
        if not result.ok:
            log.warning("server stop hooks failed")
        tenant_hooks = phase_window(plan.tenant_hooks, end - loop.time(), plan.after_tenant_hooks)
        await self.supervisor.shutdown(self.supervisor.policy.stop_grace,
                                       hooks_within=tenant_hooks)
        state.pool.close_all()
        if self.access is not None:
            self.access.close()
        if self._access_file is not None:
            self._access_file.close()
        for task in list(state.tasks):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        log.info("stopped")
        self.outputs.detach()  # the loop closes next: __main__ flushes with a deadline

    def _status_page(self) -> bytes:
        """`server.status_page`: the rows `navigator status` shows, from the same metrics."""
        now = time.time()
        facts = {"pid": os.getpid(), "version": __version__, "config": str(self.config.source),
                 "up": f"{(now - self.started_at) / 3600:.1f} h",
                 "open connections": len(self.state.connections) if self.state else 0}
        return render_status_page(facts, page_rows(self.metrics.render().decode(), now),
                                  self.recent.events, now)

    # --- files ---------------------------------------------------------------------------------
    def _log_drops(self) -> list[tuple[tuple[str], float]]:
        """Lines each log destination had to drop (the metrics source)."""
        drops = self.outputs.dropped()
        if self._access_file is not None:
            drops.append((("access_file",), float(self._access_file.dropped)))
        return drops

    def _open_access_log(self, config: Config) -> FileLineWriter | None:
        """`access_log: <path>`: opened before anything starts (or before a reload swaps),
        so a bad path exits at once (or rejects the reload)."""
        try:
            return open_access_log(config.logging)
        except OSError as exc:
            raise ConfigError(f"access_log: cannot open {config.logging.access_log_file}: "
                              f"{exc.strerror or exc}") from exc

    def _access_logger(self) -> AccessLogger:
        assert self.access is not None
        return self.access

    def _swap_logging(self, config: Config, access_file: FileLineWriter | None) -> None:
        """A reload that changed `logging`: format, file, Vector and the access log's
        destination follow it. stdout's writer is kept (same descriptor, and whatever a
        stalled pipe still holds); the old access logger is flushed before its
        destinations close, so no line is lost in the swap."""
        assert self.state is not None
        self._access_logger().close()  # flush into the old destinations
        outputs = configure_logging(config.logging, stdout=self.outputs.stdout)
        old_file, self._access_file = self._access_file, access_file
        self.outputs = outputs
        self.access = AccessLogger(access_file if access_file is not None else outputs.stdout,
                                   config.logging.access_log, outputs.vector,
                                   loop=self.state.loop)
        if old_file is not None and old_file is not access_file:
            old_file.close()
        log.info("logging reconfigured (format %s, access log %s)", config.logging.format,
                 config.logging.access_log_file or
                 ("stdout" if config.logging.access_log else "off"))

    def _write_pid_file(self, path: Path) -> None:
        try:
            path.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise ConfigError(f"server.pid_file: cannot write {path}: {exc}") from exc

    def _remove_pid_file(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()
