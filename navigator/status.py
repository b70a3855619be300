"""`navigator status`: what the running server's tenant processes are doing.

Room: CLI helper (I/O: pid file, /proc via psutil). It inspects the processes the server
started (its direct children, each a tenant or managed process in its own session) rather
than asking the server, so it works even when the server is too busy to answer.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import psutil

from navigator.metrics import format_status_table

DEFAULT_PID_FILE = Path("/tmp/navigator.pid")


def collect_rows(server_pid: int) -> list[dict[str, object]]:
    """One row per child process of the server: name, pid, port, uptime, memory."""
    rows: list[dict[str, object]] = []
    now = time.time()
    for child in psutil.Process(server_pid).children():
        try:
            with child.oneshot():
                env = _environ(child)
                tree = [child, *child.children(recursive=True)]
                memory = sum(p.memory_info().rss for p in tree if p.is_running())
                rows.append({
                    "tenant": env.get("TENANT_NAME") or " ".join(child.cmdline()[:3]),
                    "state": child.status(),
                    "pid": child.pid,
                    "port": env.get("PORT"),
                    "uptime": now - child.create_time(),
                    "memory": memory,
                    "last_request": None,
                })
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rows


def _environ(process: psutil.Process) -> dict[str, str]:
    try:
        return dict(process.environ())
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return {}


def print_status(config_path: str) -> int:
    pid_file = DEFAULT_PID_FILE
    if Path(config_path).exists():
        from navigator.config import ConfigError, load_config

        with contextlib.suppress(ConfigError, OSError):
            pid_file = load_config(config_path).pid_file
    try:
        pid = int(pid_file.read_text().strip())
        rows = collect_rows(pid)
    except (OSError, ValueError, psutil.NoSuchProcess) as exc:
        print(f"navigator: no running server found via {pid_file}: {exc}", file=sys.stderr)
        return 1
    print(f"navigator pid {pid}: {len(rows)} child processes")
    sys.stdout.write(format_status_table(rows))
    return 0
