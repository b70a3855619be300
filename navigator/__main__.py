"""Command line: `navigator [CONFIG]`, `--config`, `check`, `schema`, `docs`, `status`,
`-s reload|stop`, `--version`.

Room: CLI only. Parses arguments, installs uvloop, runs the server or a one-shot command and
turns the outcome into an exit code. Decisions live in the rooms it calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from navigator import __version__

DEFAULT_CONFIG = "config/navigator.yml"
DEFAULT_PID_FILE = "/tmp/navigator.pid"
COMMANDS = ("check", "schema", "docs", "status", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="navigator",
        description="Multi-tenant application server and reverse proxy.",
        epilog="commands: check CONFIG (validate), schema (JSON Schema), "
        "docs (configuration reference, Markdown), status (running tenants)",
    )
    parser.add_argument("args", nargs="*", help="[command] [CONFIG]")
    parser.add_argument("-c", "--config", help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("-s", dest="signal", choices=["reload", "stop"],
                        help="signal the running server (reads the pid file) and exit")
    parser.add_argument("--pid-file", help=f"pid file for -s (default {DEFAULT_PID_FILE})")
    parser.add_argument("-v", "--version", action="version", version=f"Navigator {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    words = list(options.args)
    command = words.pop(0) if words and words[0] in COMMANDS else "serve"
    config_path = options.config or (words[0] if words else DEFAULT_CONFIG)
    if options.signal:
        return signal_running(options.signal, options.pid_file, config_path)
    if command == "check":
        return check(config_path)
    if command == "schema":
        from navigator.docs import schema_json

        sys.stdout.write(schema_json())
        return 0
    if command == "docs":
        from navigator.docs import reference_markdown

        sys.stdout.write(reference_markdown())
        return 0
    if command == "status":
        from navigator.status import print_status

        status: int = print_status(config_path)
        return status
    return serve(config_path)


def check(config_path: str) -> int:
    import dataclasses

    from navigator.config import ConfigError, load_config, summarize
    from navigator.snapshot import build_snapshot, snapshot_warnings

    try:
        config = load_config(config_path)
        snapshot = build_snapshot(config)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    extra = snapshot_warnings(snapshot)
    print(summarize(dataclasses.replace(config, warnings=(*config.warnings, *extra))))
    return 0


def serve(config_path: str) -> int:
    from navigator.config import ConfigError, load_config
    from navigator.logs import configure_logging

    try:
        config = load_config(config_path)
    except (ConfigError, OSError) as exc:
        print(f"navigator: {exc}", file=sys.stderr)
        return 1
    configure_logging(config.logging)
    log = logging.getLogger("navigator")
    for warning in config.warnings:
        log.warning("config: %s", warning)
    from navigator.server import Server

    try:
        return run_on_uvloop(Server(config).run())
    except (ConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130


def run_on_uvloop(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on uvloop (the design card's loop); plain asyncio if it is missing."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(main)
    if sys.version_info >= (3, 12):
        return asyncio.run(main, loop_factory=uvloop.new_event_loop)
    uvloop.install()
    return asyncio.run(main)


def signal_running(action: str, pid_file: str | None, config_path: str) -> int:
    """`-s reload|stop`: signal the server named by the pid file, then exit (unlike the
    reference, which went on to boot a second server)."""
    path = Path(pid_file or _pid_file_from_config(config_path) or DEFAULT_PID_FILE)
    try:
        pid = int(path.read_text().strip())
    except FileNotFoundError:
        print(f"navigator: no pid file at {path}: is navigator running?", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"navigator: unreadable pid file {path}: {exc}", file=sys.stderr)
        return 1
    sig = signal.SIGHUP if action == "reload" else signal.SIGTERM
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        print(f"navigator: process {pid} from {path} is gone; removing the stale pid file",
              file=sys.stderr)
        with contextlib.suppress(OSError):
            path.unlink()
        return 1
    except PermissionError as exc:
        print(f"navigator: cannot signal {pid}: {exc}", file=sys.stderr)
        return 1
    print(f"navigator: sent {sig.name} to {pid} ({action})")
    return 0


def _pid_file_from_config(config_path: str) -> str | None:
    if not Path(config_path).exists():
        return None
    from navigator.config import ConfigError, load_config

    try:
        return str(load_config(config_path).pid_file)
    except (ConfigError, OSError):
        return None


if __name__ == "__main__":
    sys.exit(main())
