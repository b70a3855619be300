"""run_cgi with real shell and Python scripts: environment, stdin/stdout streaming, Status,
timeouts and cancellation killing the whole process group, stderr logging, credentials."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
import uvloop

from navigator.config.runtime import CgiScript
from navigator.extras.cgi import CgiOutcome, run_cgi
from tests.fixtures.apps.support import wait_for as eventually

T = TypeVar("T")
LOOPS = ["uvloop", "asyncio"]


def run(coro: Awaitable[T], loop_kind: str = "uvloop") -> T:
    async def main() -> T:
        return await coro

    if loop_kind == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


class RecordingSink:
    """Collects what run_cgi sends; `gate` (if set) holds every body() call, like a slow
    client whose socket does not drain."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.ended = 0
        self.events: list[str] = []
        self.gate: asyncio.Event | None = None

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        assert self.status is None, "start called twice"
        self.status = status
        self.headers = headers
        self.events.append("start")

    async def body(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.events.append("body")
        if self.gate is not None:
            await self.gate.wait()

    async def end(self) -> None:
        self.ended += 1
        self.events.append("end")

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode()


async def chunks(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def write_script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def python_script(tmp_path: Path, name: str, body: str) -> Path:
    return write_script(tmp_path, name, f"#!{sys.executable}\n{body}")


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes still in the process group."""
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive




def env_with(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra}


# --- output, environment, status ---------------------------------------------------------------
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_env_cwd_and_status(tmp_path: Path, loop_kind: str) -> None:
    script_path = write_script(tmp_path, "show.sh", (
        "#!/bin/sh\n"
        "printf 'Status: 404 Not Found\\r\\nContent-Type: text/plain\\r\\nX-Tag: a\\r\\n\\r\\n'\n"
        "echo \"method=$REQUEST_METHOD query=$QUERY_STRING script=$SCRIPT_NAME\"\n"
        "echo \"gw=$GATEWAY_INTERFACE custom=$CUSTOM accept=$HTTP_ACCEPT\"\n"
        "echo \"cwd=$(pwd)\"\n"))
    script = CgiScript(path="/run", script=script_path)
    sink = RecordingSink()
    env = env_with(REQUEST_METHOD="GET", QUERY_STRING="x=1", SCRIPT_NAME="/run",
                   GATEWAY_INTERFACE="CGI/1.1", CUSTOM="yes", HTTP_ACCEPT="a, b")
    outcome = run(run_cgi(script, env, chunks([]), sink), loop_kind)
    assert sink.status == 404
    assert sink.headers == [("Content-Type", "text/plain"), ("X-Tag", "a")]
    assert sink.text.splitlines() == [
        "method=GET query=x=1 script=/run", "gw=CGI/1.1 custom=yes accept=a, b",
        f"cwd={tmp_path}"]
    assert sink.ended == 1
    assert outcome.exit_code == 0
    assert outcome.completed
    assert outcome.status == 404
    assert not outcome.reload


def test_lf_headers_and_default_status(tmp_path: Path) -> None:
    script_path = write_script(tmp_path, "lf.sh",
                               "#!/bin/sh\necho 'Content-Type: text/html'\necho\necho '<p>hi'\n")
    sink = RecordingSink()
    run(run_cgi(CgiScript(path="/x", script=script_path), env_with(), chunks([]), sink))
    assert sink.status == 200
    assert sink.headers == [("Content-Type", "text/html")]
    assert sink.text == "<p>hi\n"


def test_headers_only_output(tmp_path: Path) -> None:
    script_path = write_script(tmp_path, "h.sh", "#!/bin/sh\nprintf 'Location: /next\\n'\n")
    sink = RecordingSink()
    outcome = run(run_cgi(CgiScript(path="/x", script=script_path), env_with(), chunks([]),
                          sink))
    assert (sink.status, sink.headers, sink.chunks, sink.ended) == (
        302, [("Location", "/next")], [], 1)
    assert outcome.completed


@pytest.mark.parametrize(("text", "why"), [
    ("#!/bin/sh\nexit 0\n", "no output"),
    ("#!/bin/sh\necho '<html>not a header'\necho\n", "malformed"),
    ("#!/bin/sh\necho 'Status: banana'\necho\n", "bad status"),
])
def test_bad_output_answers_502(tmp_path: Path, text: str, why: str) -> None:
    script_path = write_script(tmp_path, "bad.sh", text)
    sink = RecordingSink()
    outcome = run(run_cgi(CgiScript(path="/x", script=script_path), env_with(), chunks([]),
                          sink))
    assert sink.status == 502, why
    assert sink.text == "Bad Gateway"
    assert sink.ended == 1
    assert outcome.status == 502


def test_script_that_cannot_start_answers_502(tmp_path: Path) -> None:
    not_executable = tmp_path / "plain.txt"
    not_executable.write_text("hello")
    sink = RecordingSink()
    outcome = run(run_cgi(CgiScript(path="/x", script=not_executable), env_with(), chunks([]),
                          sink))
    assert sink.status == 502
    assert outcome.exit_code is None


@pytest.mark.parametrize(("code", "reload_config", "reload"), [
    (0, "/etc/new.yml", True), (3, "/etc/new.yml", False), (0, "", False)])
def test_exit_code_and_reload(tmp_path: Path, code: int, reload_config: str,
                              reload: bool) -> None:
    script_path = write_script(tmp_path, "exit.sh", f"#!/bin/sh\necho\necho body\nexit {code}\n")
    script = CgiScript(path="/x", script=script_path, reload_config=reload_config)
    sink = RecordingSink()
    outcome = run(run_cgi(script, env_with(), chunks([]), sink))
    assert outcome.exit_code == code
    assert outcome.reload is reload
    assert sink.text == "body\n"
    assert sink.ended == 1


# --- stdin and streaming ----------------------------------------------------------------------
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_large_body_to_stdin_and_output_back(tmp_path: Path, loop_kind: str) -> None:
    script_path = python_script(tmp_path, "echo.py", (
        "import sys, hashlib\n"
        "data = sys.stdin.buffer.read()\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'Content-Type: application/octet-stream\\r\\n\\r\\n')\n"
        "out.write(hashlib.sha256(data).hexdigest().encode() + b'\\n')\n"
        "out.write(data.upper())\n"))
    part = b"abcdefgh" * 8192  # 64 KiB
    body = [part] * 32  # 2 MiB: far beyond the pipe buffers both ways
    sink = RecordingSink()
    outcome = run(run_cgi(CgiScript(path="/x", script=script_path), env_with(), chunks(body),
                          sink), loop_kind)
    import hashlib

    data = b"".join(sink.chunks)
    digest, _, echoed = data.partition(b"\n")
    assert digest.decode() == hashlib.sha256(b"".join(body)).hexdigest()
    assert echoed == b"".join(body).upper()
    assert outcome.exit_code == 0
    assert len(sink.chunks) > 1  # streamed in pieces, not collected


def test_output_streams_before_the_body_ends(tmp_path: Path) -> None:
    """The script answers each input line at once: the second body chunk is only produced
    after the first answer reached the sink, so nothing can be buffered to the end."""
    script_path = python_script(tmp_path, "lines.py", (
        "import sys\n"
        "print('Content-Type: text/plain\\n', flush=True)\n"
        "for line in sys.stdin:\n"
        "    print('got ' + line.strip(), flush=True)\n"))

    async def scenario() -> RecordingSink:
        sink = RecordingSink()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def body() -> AsyncIterator[bytes]:
            while (item := await queue.get()) is not None:
                yield item

        task = asyncio.create_task(run_cgi(CgiScript(path="/x", script=script_path),
                                           env_with(), body(), sink))
        await queue.put(b"one\n")
        await eventually(lambda: b"got one" in b"".join(sink.chunks))
        await queue.put(b"two\n")
        await eventually(lambda: b"got two" in b"".join(sink.chunks))
        await queue.put(None)
        outcome = await task
        assert outcome.exit_code == 0
        return sink

    sink = run(scenario())
    assert sink.text == "got one\ngot two\n"


def test_script_ignoring_stdin_does_not_deadlock(tmp_path: Path) -> None:
    script_path = write_script(tmp_path, "ignore.sh", "#!/bin/sh\necho\necho done\n")
    sink = RecordingSink()
    outcome = run(run_cgi(CgiScript(path="/x", script=script_path), env_with(),
                          chunks([b"x" * 65536] * 64), sink))
    assert sink.text == "done\n"
    assert outcome.exit_code == 0


def test_slow_client_backpressure_reaches_the_script(tmp_path: Path) -> None:
    """While the sink does not drain, stdout is not read: the script blocks on its pipe."""
    marker = tmp_path / "finished"
    script_path = python_script(tmp_path, "flood.py", (
        "import sys, pathlib\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'\\n')\n"
        "for _ in range(64):\n"
        "    out.write(b'y' * 65536)\n"
        "out.flush()\n"
        f"pathlib.Path({str(marker)!r}).write_text('x')\n"))

    async def scenario() -> None:
        sink = RecordingSink()
        sink.gate = asyncio.Event()
        task = asyncio.create_task(run_cgi(CgiScript(path="/x", script=script_path),
                                           env_with(), chunks([]), sink))
        await eventually(lambda: sink.chunks)
        # Held: at most the pipe buffer plus one read can be in flight; 4 MiB cannot.
        assert not marker.exists()
        assert len(b"".join(sink.chunks)) < 4 * 1024 * 1024
        sink.gate.set()
        outcome = await task
        assert outcome.exit_code == 0
        assert marker.exists()
        assert len(b"".join(sink.chunks)) == 64 * 65536

    run(scenario())


# --- stderr -------------------------------------------------------------------------------------
def test_stderr_lines_logged_on_output_logger(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    script_path = write_script(tmp_path, "noisy.sh",
                               "#!/bin/sh\necho 'warn one' >&2\necho\necho ok\necho 'two' >&2\n")
    sink = RecordingSink()
    with caplog.at_level(logging.INFO, logger="navigator.output"):
        run(run_cgi(CgiScript(path="/x", script=script_path), env_with(), chunks([]), sink))
    records = [r for r in caplog.records if r.name == "navigator.output"]
    assert [r.getMessage() for r in records] == ["warn one", "two"]
    assert all(getattr(r, "source", None) == "cgi:noisy.sh" for r in records)
    assert all(getattr(r, "stream", None) == "stderr" for r in records)
    assert sink.text == "ok\n"


# --- killing ------------------------------------------------------------------------------------
# The timeouts below are what the tests exercise, so they cannot wait on a signal; they leave
# the shell over a second for the few commands before the point the test inspects (headers
# printed, pids recorded), which a loaded CI machine needs more than the 0.3-0.5 s they had.
TIMEOUT = 1.5


def _tree_script(tmp_path: Path, headers_first: bool, trap_term: bool = False) -> Path:
    pids = tmp_path / "pids"
    lines = ["#!/bin/sh"]
    if trap_term:
        lines.append("trap '' TERM")
    if headers_first:
        lines.append("printf 'Content-Type: text/plain\\n\\npartial\\n'")
    lines += [
        "sleep 60 &",
        f"echo \"$$ $!\" > {pids}.tmp && mv {pids}.tmp {pids}",
        "wait",
    ]
    return write_script(tmp_path, "tree.sh", "\n".join(lines) + "\n")


def _recorded_pids(tmp_path: Path) -> list[int]:
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_timeout_before_headers_kills_group_and_answers_504(tmp_path: Path,
                                                            loop_kind: str) -> None:
    script = CgiScript(path="/x", script=_tree_script(tmp_path, headers_first=False),
                       timeout=TIMEOUT)
    sink = RecordingSink()
    outcome: CgiOutcome = run(run_cgi(script, env_with(), chunks([]), sink, kill_grace=2.0),
                              loop_kind)
    assert outcome.timed_out
    assert outcome.exit_code is None
    assert (sink.status, sink.text, sink.ended) == (504, "Gateway Timeout", 1)
    assert outcome.pid is not None
    assert group_alive(outcome.pid) == []
    assert all(not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
               for pid in _recorded_pids(tmp_path))


def test_timeout_after_headers_leaves_response_incomplete(tmp_path: Path) -> None:
    script = CgiScript(path="/x", script=_tree_script(tmp_path, headers_first=True),
                       timeout=TIMEOUT)
    sink = RecordingSink()
    outcome = run(run_cgi(script, env_with(), chunks([]), sink))
    assert sink.status == 200
    assert sink.text == "partial\n"
    assert sink.ended == 0  # the caller must close the connection
    assert not outcome.completed
    assert outcome.timed_out
    assert outcome.pid is not None
    assert group_alive(outcome.pid) == []


def test_term_ignoring_script_gets_sigkill(tmp_path: Path) -> None:
    script = CgiScript(path="/x", script=_tree_script(tmp_path, headers_first=False,
                                                      trap_term=True), timeout=0.3)
    sink = RecordingSink()
    outcome = run(run_cgi(script, env_with(), chunks([]), sink, kill_grace=0.3))
    assert outcome.timed_out
    assert outcome.pid is not None
    assert group_alive(outcome.pid) == []


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_cancellation_kills_process_group(tmp_path: Path, loop_kind: str) -> None:
    script = CgiScript(path="/x", script=_tree_script(tmp_path, headers_first=True))
    pids_file = tmp_path / "pids"

    async def scenario() -> list[int]:
        sink = RecordingSink()
        task = asyncio.create_task(run_cgi(script, env_with(), chunks([]), sink))
        await eventually(pids_file.exists)
        await eventually(lambda: sink.chunks)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sink.ended == 0
        return _recorded_pids(tmp_path)

    leader, grandchild = run(scenario(), loop_kind)
    assert group_alive(leader) == []
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


# --- credentials ----------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_runs_as_configured_user() -> None:
    # pytest's tmp_path lives under a 0700 directory the other user cannot enter
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:
        os.chmod(shared, 0o755)
        script_path = write_script(Path(shared), "id.sh", "#!/bin/sh\necho\nid -u; id -g\n")
        script = CgiScript(path="/x", script=script_path, user="nobody")
        sink = RecordingSink()
        run(run_cgi(script, env_with(), chunks([]), sink))
    import pwd

    entry = pwd.getpwnam("nobody")
    assert sink.text.split() == [str(entry.pw_uid), str(entry.pw_gid)]


def test_unknown_user_answers_502(tmp_path: Path) -> None:
    script_path = write_script(tmp_path, "id.sh", "#!/bin/sh\necho\nid -u\n")
    script = CgiScript(path="/x", script=script_path, user="no-such-user-xyz")
    sink = RecordingSink()
    outcome: Any = run(run_cgi(script, env_with(), chunks([]), sink))
    if os.geteuid() == 0:
        assert sink.status == 502
        assert outcome.exit_code is None
    else:  # not root: the user setting is ignored with a warning
        assert sink.status == 200
