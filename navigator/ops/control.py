"""The control channel: a unix socket beside the pid file that `navigator restart` talks to.

Room: ops (I/O: one unix listener, one client call; the line protocol is pure). Why a
socket and not the pid file plus a signal: a signal carries no argument (which tenant?) and
gets no answer (unknown name? done? the new pid?); the socket does both, and unix-socket
permissions plus the peer's credentials decide who may ask.

Protocol: one request line `<verb> <argument>\\n`, one answer line `ok <text>\\n` or
`error <text>\\n`, then the server closes. Verbs are what `server.py` injects: a mapping of
verb → `Callable[[str], Awaitable[str]]`; a handler refuses with `ControlError`.

Invariants:
- the socket is `<pid_file>.sock`, mode 0600, and only peers with our uid (or root) are
  answered, so a local user cannot restart another user's tenants;
- a stale socket file (left by a killed server) is replaced; anything else at that path is
  not touched (the listener is then off, logged);
- a request line is bounded (`MAX_LINE`) and read with a deadline; nothing here can block
  the server.

Must not touch: tenants, routing (the injected handlers do that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

log = logging.getLogger("navigator.control")

SUFFIX = ".sock"
MAX_LINE = 4096
READ_TIMEOUT = 5.0

Handler = Callable[[str], Awaitable[str]]


class ControlError(Exception):
    """A refusal a handler explains to the caller (unknown tenant, nothing to do)."""


def control_path(pid_file: Path) -> Path:
    return pid_file.with_name(pid_file.name + SUFFIX)


def parse_request(line: bytes) -> tuple[str, str]:
    """PURE. `restart /sam/list1\\n` → ("restart", "/sam/list1"); ValueError when malformed."""
    text = line.decode("utf-8", "strict").strip()
    verb, _, argument = text.partition(" ")
    if not verb.isidentifier():
        raise ValueError(f"malformed request {text[:80]!r}")
    return verb, argument.strip()


def format_answer(ok: bool, text: str) -> bytes:
    """PURE. One line: newlines in `text` become spaces."""
    return f"{'ok' if ok else 'error'} {' '.join(text.split())}\n".encode()


def parse_answer(line: bytes) -> tuple[bool, str]:
    """PURE. The client's side of `format_answer`."""
    text = line.decode("utf-8", "replace").strip()
    status, _, rest = text.partition(" ")
    if status not in ("ok", "error"):
        return False, f"unexpected answer {text[:200]!r}"
    return status == "ok", rest


def peer_uid(sock: socket.socket | None) -> int | None:
    """The connecting process's uid (SO_PEERCRED), None when unknown."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _, uid, _ = struct.unpack("3i", creds)
    return int(uid)


class ControlListener:
    """Serves the control socket while the server runs."""

    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self._handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> bool:
        """Listen; False (logged) when the path is taken by something that is not a socket."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                log.warning("control socket disabled: %s exists and is not a socket",
                            self.path)
                return False
            if await _answers(self.path):
                log.warning("control socket disabled: another server answers on %s (two "
                            "servers with one pid_file?)", self.path)
                return False
            self.path.unlink()  # a killed server's socket: nothing listens on it any more
        try:
            self._server = await asyncio.start_unix_server(self._serve, str(self.path))
            os.chmod(self.path, 0o600)
        except OSError as exc:
            log.warning("control socket disabled: cannot listen on %s: %s", self.path, exc)
            return False
        log.info("control socket on %s", self.path)
        return True

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await self._answer(reader, writer.get_extra_info("socket")))
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            await _close(writer)

    async def _answer(self, reader: asyncio.StreamReader, sock: socket.socket | None) -> bytes:
        uid = peer_uid(sock)
        if uid is not None and uid not in (0, os.geteuid()):
            log.warning("control request from uid %d refused", uid)
            return format_answer(False, "permission denied")
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            if len(line) > MAX_LINE:
                raise ValueError("request too long")
            verb, argument = parse_request(line)
        except (ValueError, UnicodeDecodeError, asyncio.LimitOverrunError) as exc:
            return format_answer(False, str(exc))
        handler = self._handlers.get(verb)
        if handler is None:
            return format_answer(False, f"unknown command {verb!r} "
                                        f"(known: {', '.join(sorted(self._handlers))})")
        log.info("control: %s %s", verb, argument)
        try:
            return format_answer(True, await handler(argument))
        except ControlError as exc:
            return format_answer(False, str(exc))
        except Exception as exc:  # a bug in a handler must not kill the listener
            log.exception("control command %s %s failed", verb, argument)
            return format_answer(False, f"internal error: {exc}")


async def _answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait for it: a transport whose close is still pending when the loop ends
    is reported unclosed (ResourceWarning)."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def call(path: Path, verb: str, argument: str, timeout: float) -> tuple[bool, str]:
    """Client side (blocking, for the CLI): send one request, read the answer line.
    Raises OSError when no server listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(f"{verb} {argument}\n".encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                break
    return parse_answer(b"".join(chunks))
