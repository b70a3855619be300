"""CGI/1.1 scripts (reference section 7, RFC 3875).

Room: I/O (one subprocess per request) around two pure helpers: `build_cgi_env` (the
environment) and `check_cgi_access` (allowed_users → 401/403). The client protocol adapts the
connection to a `CgiSink` and an async iterator of body chunks; nothing here touches sockets.

Invariants:
- the script runs in its own session/process group (`start_new_session=True`; uvloop rejects
  `process_group=0`), so killing the group never reaches the server;
- timeout and cancellation (client gone) kill the whole group: SIGTERM, then SIGKILL after a
  grace period; a process already gone is not an error;
- stdin is fed concurrently with reading stdout (no pipe deadlock) and with backpressure
  (`drain` per chunk); stdout is read only as fast as `send.body` drains;
- `run_cgi` drives the sink completely: `start` once, `body` per chunk, `end` once when the
  response is complete. If the script fails before sending headers it answers 502 (504 on
  timeout) itself; if it dies after the headers, `end` is NOT called (the caller must close
  the connection: the body is truncated);
- user/group switching happens in `preexec_fn` (uvloop rejects the `user=`/`group=` keywords)
  and only when the server runs as root; the parent-death signal is armed after it, so a
  script dies with a SIGKILLed server (`navigator.tenants.lifeline`).
Must not touch: HTTP framing, routing, reload (it only reports `reload` in the outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import re
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from navigator.config.runtime import CgiScript
from navigator.tenants.lifeline import child_setup
from navigator.web.decision import RequestInfo

log = logging.getLogger("navigator.cgi")
output_log = logging.getLogger("navigator.output")

KILL_GRACE: Final = 2.0
STDOUT_CHUNK: Final = 64 * 1024
MAX_HEADER_LINES: Final = 100
LINE_LIMIT: Final = 64 * 1024  # longest header or stderr line we read as one
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SKIPPED_HEADERS: Final = frozenset({"content-type", "content-length", "proxy"})


class CgiSink(Protocol):
    """Where the response goes; implemented by the client protocol's glue."""

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None: ...
    async def body(self, chunk: bytes) -> None: ...  # returns once the client drained
    async def end(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CgiOutcome:
    exit_code: int | None  # None: never started, or killed by us
    reload: bool  # exit 0 and the script has reload_config: apply section 14.2
    status: int  # status sent to the client (0 if nothing was sent)
    completed: bool  # sink.end() was called; False after headers → close the connection
    timed_out: bool = False
    pid: int | None = None


class CgiOutputError(Exception):
    """The script's output is not a valid CGI response."""


# --- pure helpers ----------------------------------------------------------------------------
def check_cgi_access(script: CgiScript, remote_user: str | None) -> int | None:
    """401 without credentials, 403 for a user not listed, None when allowed."""
    if not script.allowed_users:
        return None
    if remote_user is None or not remote_user.strip():
        return 401
    return None if remote_user.strip() in script.allowed_users else 403


def build_cgi_env(script: CgiScript, req: RequestInfo, headers: list[tuple[bytes, bytes]],
                  server_port: int, base_env: Mapping[str, str], *,
                  protocol: str = "HTTP/1.1") -> dict[str, str]:
    """Server env, then the script's `env`, then the CGI/1.1 variables (RFC 3875 §4.1).

    Header names containing "_" are left out: `X_Foo` would otherwise spoof `X-Foo`
    (nginx drops them too); `Proxy` is left out against httpoxy.
    """
    env = dict(base_env)
    env.update(script.env)
    joined: dict[str, list[str]] = {}
    content_type = ""
    content_length = ""
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").strip()
        value = raw_value.decode("latin-1").strip()
        lname = name.lower()
        if lname == "content-type":
            content_type = value
        elif lname == "content-length":
            content_length = value
        if lname in _SKIPPED_HEADERS or "_" in name or not _TOKEN.fullmatch(name):
            continue
        joined.setdefault("HTTP_" + name.upper().replace("-", "_"), []).append(value)
    for key, values in joined.items():
        env[key] = ", ".join(values)
    if not content_length and req.content_length is not None:
        content_length = str(req.content_length)
    host = req.host
    env.update({
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": protocol,
        "SERVER_SOFTWARE": "Navigator",
        "SERVER_NAME": _host_name(host) or "localhost",
        "SERVER_PORT": str(server_port),
        "REQUEST_METHOD": req.method,
        "QUERY_STRING": req.query,
        "SCRIPT_NAME": script.path,
        "PATH_INFO": "",
        "REMOTE_ADDR": req.peer_ip,
        "REMOTE_HOST": req.peer_ip,
    })
    for key, value in (("CONTENT_TYPE", content_type), ("CONTENT_LENGTH", content_length)):
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    if req.remote_user:
        env["AUTH_TYPE"] = "Basic"
        env["REMOTE_USER"] = req.remote_user
    else:
        env.pop("AUTH_TYPE", None)
        env.pop("REMOTE_USER", None)
    return env


def _host_name(host: str) -> str:
    """Host header without the port; IPv6 literals keep their brackets' content."""
    host = host.strip()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def parse_header_line(line: bytes) -> tuple[str, str]:
    """One CGI response header line (without its line end) → (name, value)."""
    text = line.decode("latin-1")
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise CgiOutputError(f"malformed header line {text[:80]!r}")
    value = value.strip()
    if "\r" in value or "\0" in value:
        raise CgiOutputError(f"bad characters in header {name}")
    return name, value


def parse_status(value: str) -> int:
    """`404 Not Found` → 404 (RFC 3875 §6.3.3)."""
    code = value.split(None, 1)[0] if value.strip() else ""
    if not (len(code) == 3 and code.isdigit() and 100 <= int(code) <= 599):
        raise CgiOutputError(f"invalid Status header {value[:40]!r}")
    return int(code)


def response_head(lines: list[bytes]) -> tuple[int, list[tuple[str, str]]]:
    """Status and headers from the header lines; Location alone means 302 (§6.2.3)."""
    status = 0
    headers: list[tuple[str, str]] = []
    for line in lines:
        name, value = parse_header_line(line)
        if name.lower() == "status":
            status = parse_status(value)
        else:
            headers.append((name, value))
    if status == 0:
        has_location = any(n.lower() == "location" for n, _ in headers)
        status = 302 if has_location else 200
    return status, headers


# --- running -----------------------------------------------------------------------------------
async def run_cgi(script: CgiScript, env: dict[str, str], body: AsyncIterator[bytes],
                  send: CgiSink, *, kill_grace: float = KILL_GRACE) -> CgiOutcome:
    """Run one request through the script; see the module invariants for the sink contract.

    Cancellation (client gone) kills the process group and re-raises.
    """
    name = script.script.name
    try:
        proc = await asyncio.create_subprocess_exec(
            str(script.script), cwd=str(script.script.parent), env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=LINE_LIMIT,
            preexec_fn=child_setup(_credentials(script)))
    except (OSError, KeyError, ValueError) as exc:
        log.error("cgi %s: cannot start: %s", script.script, exc)
        await _answer(send, 502, b"Bad Gateway")
        return CgiOutcome(None, False, 502, True)
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    feeder = loop.create_task(_feed_stdin(proc.stdin, body))
    stderr_logger = loop.create_task(_log_stderr(proc.stderr, f"cgi:{name}"))
    progress = _Progress()
    exit_code: int | None = None
    timed_out = False
    try:
        try:
            async with asyncio.timeout(script.timeout):
                await _relay_stdout(proc.stdout, send, progress)
                exit_code = await proc.wait()
        except TimeoutError:
            timed_out = True
            log.warning("cgi %s: timed out after %.1f s; killing it", script.script,
                        script.timeout or 0.0)
            await _kill_group(proc, kill_grace)
        except CgiOutputError as exc:
            log.error("cgi %s: %s", script.script, exc)
            await _kill_group(proc, kill_grace)
        except BaseException:  # cancelled (client gone) or the sink failed
            await _kill_group(proc, kill_grace)
            raise
    finally:
        _kill_now(proc)
        feeder.cancel()
        await _settle(proc, feeder, stderr_logger)
    if exit_code is not None and exit_code != 0:
        log.warning("cgi %s: exited with status %d", script.script, exit_code)
    if not progress.started:
        if timed_out:
            await _answer(send, 504, b"Gateway Timeout")
            progress.status = 504
        else:
            await _answer(send, 502, b"Bad Gateway")
            progress.status = 502
        progress.completed = True
    elif exit_code is not None:
        await send.end()
        progress.completed = True
    return CgiOutcome(exit_code=exit_code,
                      reload=exit_code == 0 and bool(script.reload_config),
                      status=progress.status, completed=progress.completed,
                      timed_out=timed_out, pid=proc.pid)


class _Progress:
    __slots__ = ("completed", "started", "status")

    def __init__(self) -> None:
        self.started = False
        self.completed = False
        self.status = 0


async def _relay_stdout(stdout: asyncio.StreamReader, send: CgiSink, progress: _Progress) -> None:
    lines: list[bytes] = []
    while True:
        try:
            line = await stdout.readline()
        except (ValueError, asyncio.LimitOverrunError):
            raise CgiOutputError("header line too long") from None
        if not line:  # EOF inside the head: what we have is the whole head, no body
            if not lines:
                raise CgiOutputError("no output")
            break
        line = line.rstrip(b"\n").rstrip(b"\r")
        if not line:
            break
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise CgiOutputError("too many header lines")
    status, headers = response_head(lines)
    progress.started = True
    progress.status = status
    await send.start(status, headers)
    while chunk := await stdout.read(STDOUT_CHUNK):
        await send.body(chunk)


async def _feed_stdin(stdin: asyncio.StreamWriter, body: AsyncIterator[bytes]) -> None:
    """Copy the request body to the script; a script that stops reading is not an error
    (the rest of the body is read and discarded so the client is not stalled)."""
    open_ = True
    async for chunk in body:
        if not open_:
            continue
        try:
            stdin.write(chunk)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            open_ = False
    if open_:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def _log_stderr(stderr: asyncio.StreamReader, source: str) -> None:
    extra = {"source": source, "stream": "stderr"}
    while True:
        try:
            line = await stderr.readline()
        except (ValueError, asyncio.LimitOverrunError):
            line = await stderr.read(LINE_LIMIT)
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        output_log.info("%s", text, extra=extra)


async def _settle(proc: asyncio.subprocess.Process, feeder: asyncio.Task[None],
                  stderr_logger: asyncio.Task[None]) -> None:
    """Close our end of stdin, read stdout and stderr to EOF (so their transports close;
    bounded in case an escaped grandchild keeps them open), then reap the helper tasks."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await feeder
    assert proc.stdin is not None
    assert proc.stdout is not None
    with contextlib.suppress(Exception):
        proc.stdin.close()
    loop = asyncio.get_running_loop()
    stdout_drain = loop.create_task(_discard(proc.stdout))
    await asyncio.wait({stdout_drain, stderr_logger}, timeout=1.0)
    for task in (stdout_drain, stderr_logger):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(STDOUT_CHUNK):
        pass


async def _kill_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the script's process group, SIGKILL whatever is left after `grace` seconds."""
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), grace)
    _signal_group(proc.pid, signal.SIGKILL)  # leader gone or not: no stragglers
    await proc.wait()


def _kill_now(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _answer(send: CgiSink, status: int, text: bytes) -> None:
    await send.start(status, [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(text)))])
    await send.body(text)
    await send.end()


def _credentials(script: CgiScript) -> Callable[[], None] | None:
    """A preexec_fn dropping to the script's user/group (root only; resolved here, not in
    the child). Not root: the script runs as the server's user, with a warning."""
    if not script.user and not script.group:
        return None
    if os.geteuid() != 0:
        log.warning("cgi %s: user/group set but the server is not root; running as self",
                    script.script)
        return None
    uid: int | None = None
    gid: int | None = None
    groups: list[int] = []
    if script.user:
        entry = pwd.getpwnam(script.user)
        uid, gid = entry.pw_uid, entry.pw_gid
    if script.group:
        gid = grp.getgrnam(script.group).gr_gid
    if script.user and gid is not None:
        groups = os.getgrouplist(script.user, gid)
    elif gid is not None:
        groups = [gid]

    def drop() -> None:
        os.setgroups(groups)
        if gid is not None:
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)

    return drop
