"""Command line: `navigator [CONFIG]`, `--config`, `check [--format]`, `convert [--to]`,
`init`, `schema`, `docs`, `status`, `restart NAME|PATH`, `-s reload|stop`, `--version`.

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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navigator import __version__
from navigator.build import build_kind

if TYPE_CHECKING:
    from navigator.config.shutdownplan import ShutdownPlan

DEFAULT_CONFIG = "config/navigator.yml"
DEFAULT_PID_FILE = "/tmp/navigator.pid"
COMMANDS = ("check", "convert", "init", "schema", "docs", "status", "restart", "serve")
NO_CONFIG = frozenset({"schema", "docs", "init"})
FORMATS = ("concise", "reference")
USAGE_ERROR = 2  # argparse's status for a bad command line


class UsageError(ValueError):
    """A command line that must not run anything (exit 2 with the usage)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    command: str
    config: str
    target: str = ""  # `restart`'s tenant name or path


def parse_words(words: Sequence[str], config: str | None,
                exists: Callable[[str], bool] = os.path.exists) -> Invocation:
    """PURE apart from `exists`. `[command] [CONFIG]` → what to run. A first word that is
    neither a command nor something that can be a config file (an existing file, or a word
    with `/` or `.` in it) is an unknown command: serving it as a config path would start a
    second server (`navigator restart x`)."""
    rest = list(words)
    target = ""
    if rest and rest[0] in COMMANDS:
        command = rest.pop(0)
        if command == "restart":
            if not rest:
                raise UsageError("restart needs a tenant name or path (navigator restart "
                                 "NAME|PATH [CONFIG])")
            target = rest.pop(0)
    else:
        command = "serve"
        first = rest[0] if rest else ""
        if first and not (exists(first) or "/" in first or "." in first):
            raise UsageError(f"unknown command {first!r} (commands: {', '.join(COMMANDS)}; "
                             "or a config file path)")
    if command in NO_CONFIG and rest:
        raise UsageError(f"{command} takes no arguments, got {' '.join(rest)!r}")
    if len(rest) > 1 or (rest and config):
        extra = rest[1:] if len(rest) > 1 else rest
        raise UsageError(f"unexpected argument {' '.join(extra)!r} (one config file at most)")
    return Invocation(command, config or (rest[0] if rest else DEFAULT_CONFIG), target)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="navigator",
        description="Multi-tenant application server and reverse proxy.",
        epilog="commands: check CONFIG (validate; --format prints it in that format), "
        "convert CONFIG (to the other format, or --to), init (write navigator.yml for the "
        "app here), schema (JSON Schema), docs (configuration reference, Markdown), "
        "status (running tenants), restart NAME|PATH [CONFIG] (restart one tenant of the "
        "running server)",
    )
    parser.add_argument("args", nargs="*", help="[command] [CONFIG]")
    parser.add_argument("-c", "--config", help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("-s", dest="signal", choices=["reload", "stop"],
                        help="signal the running server (reads the pid file) and exit")
    parser.add_argument("--pid-file", help=f"pid file for -s (default {DEFAULT_PID_FILE})")
    parser.add_argument("--format", choices=FORMATS,
                        help="check: print the effective config in this format")
    parser.add_argument("--to", choices=FORMATS,
                        help="convert: the format to write (default: the other one)")
    parser.add_argument("-v", "--version", action="version",
                        version=f"Navigator {__version__} ({build_kind()})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_intermixed_args(argv)
    try:
        invocation = parse_words(options.args, options.config)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"navigator: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    command, config_path = invocation.command, invocation.config
    misplaced = ("--to" if options.to and command != "convert"
                 else "--format" if options.format and command != "check" else "")
    if misplaced:
        parser.print_usage(sys.stderr)
        print(f"navigator: error: {misplaced} goes with "
              f"{'convert' if misplaced == '--to' else 'check'}", file=sys.stderr)
        return USAGE_ERROR
    if options.signal:
        return signal_running(options.signal, options.pid_file, config_path)
    if command == "restart":
        return restart(invocation.target, options.pid_file, config_path)
    if command == "serve":
        return serve(config_path)
    if command == "init":
        return init(Path.cwd())
    try:
        if command == "convert" or (command == "check" and options.format):
            return convert(config_path, options.to or options.format or "",
                           validate=command == "check")
        return run_report(command, config_path)
    except BrokenPipeError:
        # `navigator docs | head`: the reader left; end quietly, as other CLI tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def run_report(command: str, config_path: str) -> int:
    """The commands that print a report and exit (check, schema, docs, status)."""
    if command == "check":
        return check(config_path)
    if command == "schema":
        from navigator.config.docs import schema_json

        sys.stdout.write(schema_json())
        return 0
    if command == "docs":
        from navigator.config.docs import reference_markdown

        sys.stdout.write(reference_markdown())
        return 0
    if command == "status":
        from navigator.ops.status import print_status

        status: int = print_status(config_path)
        return status
    raise AssertionError(f"unknown command {command!r}")  # parse_words admits no other


def convert(config_path: str, to: str, *, validate: bool) -> int:
    """`convert` and `check --format`: the file in a format on stdout (after loading it
    whole, so a file that would not serve is not converted)."""
    from navigator.config.convert import convert_file
    from navigator.config.loader import ConfigError, load_config

    try:
        config = load_config(config_path)
        text = convert_file(config_path, to)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in config.warnings if validate else ():
        print(f"# warning: {warning}")
    sys.stdout.write(text)
    return 0


def init(directory: Path) -> int:
    from navigator.config.starter import write_starter

    try:
        written = write_starter(directory)
    except FileExistsError as exc:
        print(f"navigator: {exc.filename} exists; not overwritten", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"navigator: cannot write the starter config: {exc}", file=sys.stderr)
        return 1
    print(f"navigator: wrote {written}; check it with `navigator check {written.name}`")
    return 0


def check(config_path: str) -> int:
    import dataclasses

    from navigator.config.loader import ConfigError, load_config, summarize
    from navigator.config.shutdownplan import DEFAULT_STOP_GRACE, plan_shutdown
    from navigator.web.snapshot import build_snapshot, snapshot_warnings

    try:
        config = load_config(config_path)
        snapshot = build_snapshot(config)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    extra = snapshot_warnings(snapshot)
    print(summarize(dataclasses.replace(config, warnings=(*config.warnings, *extra))))
    plan = plan_shutdown(config, DEFAULT_STOP_GRACE)
    print(plan.describe())
    for warning in _kill_timeout_warnings(plan, Path(config_path)):
        print(f"warning: {warning}")
    return 0


def _kill_timeout_warnings(plan: ShutdownPlan, config_path: Path) -> list[str]:
    """Compare the shutdown budget with the kill_timeout of the fly.toml that deploys this
    config (looked for in the working directory, beside the config and one level up)."""
    import tomllib

    from navigator.config.shutdownplan import fly_kill_timeout, kill_timeout_warnings

    here = config_path.resolve().parent
    for candidate in dict.fromkeys((Path.cwd() / "fly.toml", here / "fly.toml",
                                    here.parent / "fly.toml")):
        if not candidate.is_file():
            continue
        try:
            kill_timeout = fly_kill_timeout(tomllib.loads(candidate.read_text()))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            return [f"{candidate}: unreadable ({exc}); kill_timeout not checked"]
        if kill_timeout is None:
            return [f"{candidate}: kill_timeout is not a number of seconds; not checked"]
        return kill_timeout_warnings(plan, kill_timeout, str(candidate))
    return []


def serve(config_path: str) -> int:
    from navigator.config.loader import ConfigError, load_config
    from navigator.ops.logs import configure_logging

    try:
        config = load_config(config_path)
    except (ConfigError, OSError) as exc:
        print(f"navigator: {exc}", file=sys.stderr)
        return 1
    outputs = configure_logging(config.logging)
    log = logging.getLogger("navigator")
    for warning in config.warnings:
        log.warning("config: %s", warning)
    from navigator.server import Server

    server = Server(config, outputs=outputs)
    try:
        return run_on_uvloop(server.run())
    except (ConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        # What a stalled stdout still holds is written within a deadline; a reload that
        # changed `logging` left the server with destinations of its own.
        server.outputs.close()


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
    reference, which went on to boot a second server). A stale pid file may name an unrelated
    process by now: it is signalled only when it is navigator (`leftovers.identify`)."""
    path = Path(pid_file or _pid_file_from_config(config_path) or DEFAULT_PID_FILE)
    try:
        pid = int(path.read_text().strip())
    except FileNotFoundError:
        print(f"navigator: no pid file at {path}: is navigator running?", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"navigator: unreadable pid file {path}: {exc}", file=sys.stderr)
        return 1
    import psutil

    from navigator.tenants.leftovers import identify

    sig = signal.SIGHUP if action == "reload" else signal.SIGTERM
    try:
        is_navigator, what = identify(pid, path)
        if is_navigator:
            os.kill(pid, sig)
    except (ProcessLookupError, psutil.NoSuchProcess):
        print(f"navigator: process {pid} from {path} is gone; removing the stale pid file",
              file=sys.stderr)
        with contextlib.suppress(OSError):
            path.unlink()
        return 1
    except PermissionError as exc:
        print(f"navigator: cannot signal {pid}: {exc}", file=sys.stderr)
        return 1
    if not is_navigator:
        print(f"navigator: pid file {path} is stale: process {pid} is not navigator "
              f"({what}); not signalling it", file=sys.stderr)
        return 1
    print(f"navigator: sent {sig.name} to {pid} ({action})")
    return 0


RESTART_TIMEOUT = 330.0  # the server waits for the new process (ready_timeout, 5 min)


def restart(target: str, pid_file: str | None, config_path: str) -> int:
    """`restart NAME|PATH`: ask the running server over its control socket (beside the pid
    file) and print its answer; 1 when it refuses (unknown tenant) or is not there."""
    from navigator.ops.control import call, control_path

    path = control_path(Path(pid_file or _pid_file_from_config(config_path)
                             or DEFAULT_PID_FILE))
    try:
        ok, text = call(path, "restart", target, RESTART_TIMEOUT)
    except OSError as exc:
        print(f"navigator: no control socket at {path} ({exc.strerror or exc}): is "
              "navigator running with this config or --pid-file?", file=sys.stderr)
        return 1
    print(f"navigator: {text}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _pid_file_from_config(config_path: str) -> str | None:
    if not Path(config_path).exists():
        return None
    from navigator.config.loader import ConfigError, load_config

    try:
        return str(load_config(config_path).pid_file)
    except (ConfigError, OSError):
        return None


if __name__ == "__main__":
    sys.exit(main())
