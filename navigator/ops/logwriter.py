"""Bounded, non-blocking line writers: no log destination can ever stall serving.

Room: ops (I/O). Every byte navigator writes on the serving path — its own log lines, the
access log, the relayed output of tenants and managed processes, the Vector copy — goes
through one of these writers. A destination that cannot take more (a pipe nobody drains, a
paused terminal, a full disk, a deleted log directory) costs dropped lines, never a blocked
event loop: the lines are counted (`dropped`, shown by `/metrics` and `navigator status`) and
one notice line ("dropped N lines ...") is written when the destination takes data again.

How a file descriptor is made non-blocking without touching anybody else's (why not simply
`O_NONBLOCK` on fd 1): that flag lives on the *open file description*, which fd 1 shares
with our parent — with the shell when stdout is a terminal (the shell's next `read` would
fail with EAGAIN), with every other writer of a container's log pipe — and `dup()` shares it
too. So, by the kind of file behind the descriptor:
- pipe/FIFO or terminal: reopen `/proc/self/fd/N` with `O_NONBLOCK`, which gives a *fresh*
  description of the same pipe or tty whose flags are ours alone. Writes that do not fit
  return EAGAIN or a short count; the rest waits in a bounded buffer and is written when the
  event loop reports the descriptor writable (`loop.add_writer`). When /proc is missing the
  flag is set on a dup (shared description) and put back at `close()`;
- socket (systemd's journal stream): `send(MSG_DONTWAIT)` on a dup, a per-call flag;
- regular file, /dev/null, /dev/full: written directly (a page-cache write does not wait
  for a reader; ENOSPC fails at once). A file on a hung network filesystem is the one case
  that can still block: navigator does not support log files there.

Invariants:
- a destination only ever receives whole lines: a short write keeps the remainder, which is
  finished before anything newer; when a hard error cut a line, the next write begins with a
  newline so the torn line never glues onto the next one;
- memory is bounded by `limit` bytes per destination; what does not fit is dropped whole;
- thread-safe (logging handlers may run off the loop thread); the loop is only touched
  from its own thread (`call_soon_threadsafe` otherwise);
- `close(timeout)` writes what is pending within the deadline and then gives up: a stalled
  pipe cannot hang exit.

Must not touch: formatting (callers hand in finished bytes), configuration, processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import logging
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Callable
from typing import IO, Any

DEFAULT_LIMIT = 1024 * 1024
"""Bytes a destination may hold back while it is not accepting writes."""
REOPEN_INTERVAL = 1.0
"""Seconds between checks that a log file's path still names the open file."""
CLOSE_TIMEOUT = 2.0
"""Seconds `close()` may spend writing what is pending (shutdown)."""

NEWLINE = 10  # b"\n"[0]

Notice = Callable[[int, str], bytes]
"""Builds the one line (with its newline) reporting `count` lines dropped at `destination`."""

log = logging.getLogger("navigator.logs")


def plain_notice(count: int, destination: str) -> bytes:
    """The default report line, for destinations without a log format of their own."""
    return (f"navigator: dropped {count} log lines: {destination} was not accepting "
            f"writes\n").encode()


class LineWriter:
    """A destination of whole lines that never blocks the caller. Subclasses write."""

    __slots__ = ("_dropped_since", "_lock", "_notice", "_torn", "destination", "dropped")

    def __init__(self, destination: str, notice: Notice | None = None) -> None:
        self.destination = destination  # the metrics label: stdout, file, vector, ...
        self.dropped = 0  # lines lost since start (monotonic)
        self._dropped_since = 0  # lines lost since the last notice
        self._notice = notice or plain_notice
        self._torn = False  # a hard error cut a line: start the next write on a new line
        self._lock = threading.Lock()

    @property
    def accepting(self) -> bool:
        """False while lines would be dropped anyway: callers may skip formatting them."""
        return True

    def write(self, data: bytes) -> None:
        """Queue or write `data`: one or more complete lines, each ending in a newline."""
        raise NotImplementedError

    def skip(self) -> None:
        """Count one line as lost without formatting it (the caller saw `accepting` False)."""
        with self._lock:
            self.dropped += 1
            self._dropped_since += 1

    def drop(self, data: bytes | bytearray | memoryview) -> None:
        """Count the lines in `data` as lost (with the lock held)."""
        lines = bytes(data).count(b"\n") or 1
        self.dropped += lines
        self._dropped_since += lines

    def _report(self) -> bytes:
        """The notice for lines dropped since the last one ("" if none), resetting the count;
        a torn line is ended first."""
        lead = b"\n" if self._torn else b""
        self._torn = False
        if not self._dropped_since:
            return lead
        count, self._dropped_since = self._dropped_since, 0
        return lead + self._notice(count, self.destination)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the writer the event loop that will tell it when the destination drains."""

    def detach(self) -> None:
        """Stop using the loop (before it closes); pending data waits for `close()`."""

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Write what is pending within `timeout` seconds, then release the destination."""


class StreamLineWriter(LineWriter):
    """Lines into a Python stream without a usable file descriptor (StringIO, BytesIO, a
    test's capture). Such a stream is memory: it cannot stall."""

    __slots__ = ("_stream", "_text")

    def __init__(self, stream: IO[Any], destination: str = "stdout",
                 notice: Notice | None = None) -> None:
        super().__init__(destination, notice)
        self._stream = stream
        self._text = isinstance(stream, io.TextIOBase)

    def write(self, data: bytes) -> None:
        with self._lock:
            try:
                self._stream.write(data.decode() if self._text else data)
                self._stream.flush()
            except (OSError, ValueError):
                self.drop(data)


class FdLineWriter(LineWriter):
    """Whole lines to a file descriptor (stdout, a pipe, a tty, a socket, a file) without
    ever blocking: see the module docstring for how each kind is made non-blocking."""

    __slots__ = ("_fd", "_limit", "_loop", "_loop_thread", "_midline", "_mode", "_pending",
                 "_restore", "_sock", "_waiting")

    def __init__(self, fd: int, destination: str = "stdout", *, limit: int = DEFAULT_LIMIT,
                 notice: Notice | None = None) -> None:
        super().__init__(destination, notice)
        self._limit = limit
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._waiting = False  # add_writer registered for our fd
        self._midline = False  # the destination holds the first part of pending's first line
        self._restore: bool | None = None  # shared description: blocking flag to put back
        self._sock: socket.socket | None = None
        self._fd, self._mode = self._open(fd)

    def _open(self, fd: int) -> tuple[int, str]:
        """A private descriptor for `fd` and how to write it: poll, socket or direct
        (-1 and "closed" when `fd` is not open: every line is dropped and counted)."""
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return -1, "closed"
        if stat.S_ISSOCK(mode):
            own = os.dup(fd)
            self._sock = socket.socket(fileno=own)
            return own, "socket"
        if not (stat.S_ISFIFO(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))):
            return os.dup(fd), "direct"  # regular file, /dev/null, /dev/full
        flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        try:
            own = os.open(f"/proc/self/fd/{fd}", flags)
        except OSError:
            own = -1
        if own >= 0 and _same_file(own, fd):
            return own, "poll"
        if own >= 0:
            os.close(own)
        own = os.dup(fd)  # no /proc: the shared description, restored at close()
        self._restore = os.get_blocking(own)
        os.set_blocking(own, False)
        return own, "poll"

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def accepting(self) -> bool:
        return len(self._pending) < self._limit

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            if self._pending and self._mode != "direct":
                self._arm()

    def detach(self) -> None:
        with self._lock:
            self._disarm()
            self._loop = None

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                self.drop(data)
            elif self._pending or self._torn or self._dropped_since:
                if len(self._pending) + len(data) > self._limit:
                    self.drop(data)
                    return
                self._pending += data
                if not self._waiting:
                    self._flush()
            else:  # the common case: nothing held back, one syscall
                sent = self._send(data)
                if sent < len(data):
                    self._after_short_write(data, sent)

    def _after_short_write(self, data: bytes, sent: int) -> None:
        if sent < 0:  # hard error: the destination lost this chunk
            self.drop(data)
            return
        self._pending += data[sent:]
        self._midline = sent > 0 and data[sent - 1] != NEWLINE
        self._arm()

    def _send(self, data: bytes | bytearray | memoryview) -> int:
        """Bytes written (0 when the destination is full), or -1 after a hard error."""
        try:
            if self._sock is not None:
                return self._sock.send(data, socket.MSG_DONTWAIT)
            return os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return 0
            return -1

    def _flush(self) -> None:
        """Write pending data (and a due notice) until done or the destination is full."""
        pending = self._pending
        owed = 0  # lines the notice in `pending` reports (it holds nothing else then)
        while True:
            if not pending:
                owed = self._dropped_since
                report = self._report()
                if not report:
                    self._disarm()
                    return
                pending += report
            sent = self._send(pending)
            if sent < 0:  # hard error: drop what is held, end the cut line next time
                self._torn = self._torn or self._midline
                self._midline = False
                if owed:
                    self._dropped_since += owed  # only the notice was lost: still owed
                else:
                    self.drop(pending)
                pending.clear()
                self._disarm()
                return
            if sent == 0:
                self._arm()
                return
            self._midline = pending[sent - 1] != NEWLINE
            del pending[:sent]

    def _on_writable(self) -> None:
        with self._lock:
            self._flush()

    def _arm(self) -> None:
        """Ask the loop to call us when the descriptor takes data again."""
        if self._waiting or self._loop is None or self._mode == "direct":
            return
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._arm_locked)
            return
        try:
            self._loop.add_writer(self._fd, self._on_writable)
        except (OSError, RuntimeError, ValueError):
            return  # a closed loop or an fd the loop cannot watch: the next write retries
        self._waiting = True

    def _arm_locked(self) -> None:
        with self._lock:
            if self._pending:
                self._arm()

    def _disarm(self) -> None:
        if self._waiting and self._loop is not None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self._loop.remove_writer(self._fd)
        self._waiting = False

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        with self._lock:
            self._disarm()
            if self._fd < 0:
                return
            deadline = time.monotonic() + timeout
            poller = select.poll()
            poller.register(self._fd, select.POLLOUT)
            while self._pending or self._dropped_since or self._torn:
                before = len(self._pending) + self._dropped_since
                self._flush()
                self._disarm()
                remaining = deadline - time.monotonic()
                if not self._pending or remaining <= 0:
                    break
                if len(self._pending) + self._dropped_since == before:
                    poller.poll(remaining * 1000)
            if self._pending:
                self.drop(self._pending)
                self._pending.clear()
            if self._restore is not None:
                with contextlib.suppress(OSError):
                    os.set_blocking(self._fd, self._restore)
            if self._sock is not None:
                self._sock.close()
            else:
                os.close(self._fd)
            self._fd = -1


    def __del__(self) -> None:
        # An unclosed writer must not keep a pipe's write end open: its reader would never
        # see end of file. No flushing here (no deadline is possible in a finalizer).
        with contextlib.suppress(Exception):
            if self._fd >= 0:
                if self._sock is not None:
                    self._sock.close()
                else:
                    os.close(self._fd)
                self._fd = -1


def _same_file(a: int, b: int) -> bool:
    first, second = os.fstat(a), os.fstat(b)
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


class FileLineWriter(LineWriter):
    """Whole lines appended to a log file, surviving a full disk and a deleted directory.

    Opened on first use (directories created). At most once per `reopen_interval` the path is
    checked against the open file: deleted or replaced (log rotation, `rm -r logs/`), it is
    reopened and the directories created again. Any write or open error (ENOSPC, EROFS, a
    directory that cannot be made) drops the line and counts it; a failed open is retried at
    most once per interval, and one warning per failure episode goes to the server log."""

    __slots__ = ("_checked", "_failing", "_fd", "_interval", "_path")

    def __init__(self, path: str, destination: str = "file", notice: Notice | None = None,
                 *, reopen_interval: float = REOPEN_INTERVAL) -> None:
        super().__init__(destination, notice)
        self._path = path
        self._interval = reopen_interval
        self._fd = -1
        self._checked = -reopen_interval  # monotonic time of the last path check
        self._failing = False

    @property
    def path(self) -> str:
        return self._path

    def write(self, data: bytes) -> None:
        with self._lock:
            fd = self._ready_fd()
            if fd < 0:
                self.drop(data)
                return
            owed = self._dropped_since
            chunk = self._report() + data if (owed or self._torn) else data
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except OSError as exc:
                self._torn = len(view) < len(chunk) or self._torn
                self.drop(data)
                self._dropped_since += owed  # the notice is still owed
                self._fail(exc)
                return
            self._failing = False

    def open_now(self) -> None:
        """Open the file at once and raise OSError if that fails (a start-up check)."""
        with self._lock:
            self._fd = self._open_path()
            self._checked = time.monotonic()

    def _open_path(self) -> int:
        directory = os.path.dirname(self._path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _ready_fd(self) -> int:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return self._fd
        self._checked = now
        if self._fd >= 0:
            try:
                on_disk = os.stat(self._path)
                mine = os.fstat(self._fd)
                if (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino):
                    return self._fd
            except OSError:
                pass
            os.close(self._fd)  # deleted or replaced: start a new file at the path
            self._fd = -1
        try:
            self._fd = self._open_path()
        except OSError as exc:
            self._fail(exc)
        return self._fd

    def _fail(self, exc: OSError) -> None:
        if not self._failing:
            self._failing = True
            log.warning("cannot write log file %s: %s; dropping its lines until it works",
                        self._path, exc.strerror or exc)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd = -1
            self._checked = float("inf")  # closed for good: later lines are dropped


def writer_for_stream(stream: IO[Any], destination: str = "stdout",
                      notice: Notice | None = None) -> LineWriter:
    """The writer for `stream`: by its descriptor when it has one, else the stream itself."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # StringIO, BytesIO, pytest capture
        return StreamLineWriter(stream, destination, notice)
    with contextlib.suppress(OSError, ValueError):
        stream.flush()  # anything Python still buffers goes first
    return FdLineWriter(fd, destination, notice=notice)
