"""`navigator status`: what the running server's tenants are doing.

Room: CLI helper (I/O: pid file, /proc via psutil, one loopback HTTP request). The server is
found through its pid file; its listening port is read from /proc (so `listen: ...:0` and
any config work) and its own metrics endpoint gives each tenant's state, path, pid, port,
start and last request, its pool (processes, busy ones, queue, 503 refusals, recycles),
and the log lines dropped per destination; psutil adds the memory
of each tenant's process tree. When the
endpoint does not answer (metrics disabled, server too busy), the server's child processes
are listed instead, with what /proc alone can tell.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from navigator.ops.metrics import format_status_table, parse_samples
from navigator.tenants.leftovers import identify

# Series summed into a status row's column (over status classes and processes); both 503
# counters add up to `refusals`. The HTML status page reads the same rows.
POOL_SERIES = {
    "navigator_requests_total": "requests",
    "navigator_tenant_in_flight_requests": "in_flight",
    "navigator_tenant_starts_total": "starts",
    "navigator_tenant_crashes_total": "crashes",
    "navigator_tenant_processes": "processes", "navigator_tenant_busy_processes": "busy",
    "navigator_tenant_queue_length": "queue", "navigator_tenant_queue_full_total": "refusals",
    "navigator_tenant_queue_timeouts_total": "refusals",
    "navigator_tenant_recycles_total": "recycled",
}
DEFAULT_PID_FILE = Path("/tmp/navigator.pid")
DEFAULT_METRICS_PATH = "/_navigator/metrics"
SCRAPE_TIMEOUT = 3.0


def rows_from_metrics(samples: Iterable[tuple[str, dict[str, str], float]],
                      now: float) -> list[dict[str, object]]:
    """PURE. Status rows from the server's metric samples, one per tenant it knows; the
    HTML status page (`ops.statuspage`) shows the same rows."""
    rows: dict[str, dict[str, object]] = {}

    def row(tenant: str) -> dict[str, object]:
        return rows.setdefault(tenant, {"tenant": tenant})

    for name, labels, value in samples:
        tenant = labels.get("tenant")
        if not tenant:  # None, or "" (requests that reached no tenant)
            continue
        if name == "navigator_tenant_state" and value == 1:
            row(tenant)["state"] = labels.get("state", "")
        elif name == "navigator_tenant_info":
            entry = row(tenant)
            entry["path"] = labels.get("path", "")
            entry["pid"] = int(labels["pid"]) if labels.get("pid", "").isdigit() else None
            entry["port"] = labels.get("port") or None
        elif name == "navigator_tenant_started_timestamp_seconds":
            row(tenant)["uptime"] = now - value
        elif name == "navigator_tenant_last_request_timestamp_seconds":
            row(tenant)["last_request"] = now - value
        elif name in POOL_SERIES:
            entry, key = row(tenant), POOL_SERIES[name]
            previous = entry.get(key)
            entry[key] = int(value) + (previous if isinstance(previous, int) else 0)
    return sorted(rows.values(), key=lambda entry: str(entry["tenant"]))


def dropped_log_lines(samples: Iterable[tuple[str, dict[str, str], float]]) -> str:
    """PURE. `log lines dropped: stdout 0, file 12` from the server's samples ("" when the
    server exposes no such counter)."""
    counts = [f"{labels.get('destination', '?')} {int(value)}"
              for name, labels, value in samples
              if name == "navigator_log_lines_dropped_total"]
    return f"log lines dropped: {', '.join(counts)}" if counts else ""


def listening_address(pid: int) -> tuple[str, int] | None:
    """Where the server accepts connections, as a loopback address we may scrape from."""
    try:
        sockets = psutil.Process(pid).net_connections(kind="inet")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for conn in sorted(sockets, key=lambda c: c.family != socket.AF_INET):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr:
            continue
        host, port = conn.laddr.ip, conn.laddr.port
        address = ipaddress.ip_address(host)
        if address.is_unspecified:
            host = "127.0.0.1" if address.version == 4 else "::1"
        elif not address.is_loopback:
            continue  # the endpoint answers loopback peers only
        return host, port
    return None


def scrape(host: str, port: int, path: str) -> str:
    connection = http.client.HTTPConnection(host, port, timeout=SCRAPE_TIMEOUT)
    try:
        connection.request("GET", path, headers={"User-Agent": "navigator-status"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError(f"{path} answered {response.status}")
        return body.decode()
    finally:
        connection.close()


def tree_memory(pid: int) -> int | None:
    """RSS of a process and its descendants (a tenant may fork workers)."""
    try:
        process = psutil.Process(pid)
        tree = [process, *process.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    total = 0
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += member.memory_info().rss
    return total


def child_rows(server_pid: int) -> list[dict[str, object]]:
    """Fallback: one row per child process of the server, from /proc only."""
    rows: list[dict[str, object]] = []
    now = time.time()
    for child in psutil.Process(server_pid).children():
        try:
            with child.oneshot():
                env = _environ(child)
                rows.append({
                    "tenant": " ".join(child.cmdline()[:3]),
                    "state": child.status(),
                    "pid": child.pid,
                    "port": env.get("PORT"),
                    "uptime": now - child.create_time(),
                    "memory": tree_memory(child.pid),
                })
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rows


def _environ(process: psutil.Process) -> dict[str, str]:
    try:
        return dict(process.environ())
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def _settings(config_path: str) -> tuple[Path, str, bool]:
    """Pid file, metrics path, and whether the endpoint is enabled, from the config."""
    if Path(config_path).exists():
        from navigator.config.loader import ConfigError, load_config

        with contextlib.suppress(ConfigError, OSError):
            config = load_config(config_path)
            return config.pid_file, config.metrics.path, config.metrics.enabled
    return DEFAULT_PID_FILE, DEFAULT_METRICS_PATH, True


def print_status(config_path: str) -> int:
    pid_file, metrics_path, enabled = _settings(config_path)
    try:
        pid = int(pid_file.read_text().strip())
        is_navigator, what = identify(pid, pid_file)
    except (OSError, ValueError, psutil.NoSuchProcess) as exc:
        print(f"navigator: no running server found via {pid_file}: {exc}", file=sys.stderr)
        return 1
    if not is_navigator:
        print(f"navigator: pid file {pid_file} is stale: process {pid} is not navigator "
              f"({what})", file=sys.stderr)
        return 1
    address = listening_address(pid)
    problem = "metrics endpoint disabled" if not enabled else "no loopback listener found"
    if enabled and address is not None:
        host, port = address
        try:
            text = scrape(host, port, metrics_path)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"metrics endpoint unreachable: {exc}"
        else:
            samples = list(parse_samples(text))
            rows = rows_from_metrics(samples, time.time())
            for entry in rows:
                tenant_pid = entry.get("pid")
                if isinstance(tenant_pid, int):
                    entry["memory"] = tree_memory(tenant_pid)
            print(f"navigator pid {pid} on {host}:{port}: {len(rows)} tenants")
            sys.stdout.write(format_status_table(rows))
            drops = dropped_log_lines(samples)
            if drops:
                print(f"\n{drops}")
            return 0
    rows = child_rows(pid)
    print(f"navigator pid {pid} ({problem}): {len(rows)} child processes")
    sys.stdout.write(format_status_table(rows))
    return 0
