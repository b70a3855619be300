"""The never-blocking line writers over real pipes, files and /dev/full (no mocks): whole
lines only, a bounded backlog, drops counted, one notice when the destination drains, the
caller's file description left as it was."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from navigator.ops.logwriter import FdLineWriter, FileLineWriter, StreamLineWriter, plain_notice

pytestmark = pytest.mark.timeout(30)

F_SETPIPE_SZ = 1031


@pytest.fixture
def pipe() -> Iterator[list[int]]:
    """[read end, write end]; a test that closes an end sets it to -1 (so teardown never
    closes a descriptor number that has been reused meanwhile)."""
    ends = list(os.pipe())
    try:
        yield ends
    finally:
        for fd in ends:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def close_end(ends: list[int], index: int) -> None:
    os.close(ends[index])
    ends[index] = -1


def read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def numbered(n: int, size: int = 100) -> bytes:
    return f"line {n:06d} ".encode().ljust(size - 1, b".") + b"\n"


def test_reopens_a_pipe_without_touching_the_callers_description(
        pipe: list[int]) -> None:
    _, write_fd = pipe
    writer = FdLineWriter(write_fd)
    assert writer.mode == "poll"
    assert os.get_blocking(write_fd)  # the inherited description stays blocking
    writer.close()
    assert os.get_blocking(write_fd)


def test_full_pipe_drops_whole_lines_then_reports_once_drained(pipe: list[int]) -> None:
    read_fd, write_fd = pipe
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)
    received = bytearray()

    async def run() -> FdLineWriter:
        loop = asyncio.get_running_loop()
        writer = FdLineWriter(write_fd, limit=10_000)
        writer.attach(loop)
        for n in range(500):  # 50 KB into 4 KiB of pipe + 10 KB of backlog
            writer.write(numbered(n))
        assert writer.dropped > 0
        assert not writer.accepting
        drained = asyncio.Event()

        def on_readable() -> None:
            received.extend(os.read(read_fd, 65536))
            if received.endswith(b"writes\n"):
                drained.set()

        loop.add_reader(read_fd, on_readable)
        await asyncio.wait_for(drained.wait(), 10)
        loop.remove_reader(read_fd)
        writer.detach()
        return writer

    writer = asyncio.run(run())
    *lines, notice = bytes(received).split(b"\n")[:-1]
    assert all(len(line) == 99 and line.startswith(b"line ") for line in lines)  # none torn
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(len(numbers)))  # in order: the newest lines were dropped
    assert len(numbers) + writer.dropped == 500
    assert notice + b"\n" == plain_notice(writer.dropped, "stdout")
    writer.close()


def test_short_writes_finish_the_line_before_anything_newer(pipe: list[int]) -> None:
    read_fd, write_fd = pipe
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, 4096)
    writer = FdLineWriter(write_fd)
    big = [numbered(n, 6000) for n in range(6)]  # over PIPE_BUF: short writes on 4 KiB
    received = bytearray()
    for line in big:  # no loop attached: each write retries what is pending first
        writer.write(line)
        received += read_all(read_fd)
    assert writer.dropped == 0
    os.set_blocking(read_fd, True)
    reader = threading.Thread(target=lambda: received.extend(read_to_end(read_fd)))
    reader.start()
    writer.close()  # writes the rest while the reader empties the pipe
    close_end(pipe, 1)  # the last writer gone: the reader sees end of file
    reader.join(10)
    assert bytes(received) == b"".join(big)
    assert writer.dropped == 0


def read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_broken_pipe_drops_and_counts(pipe: list[int]) -> None:
    write_fd = pipe[1]
    writer = FdLineWriter(write_fd)
    close_end(pipe, 0)
    writer.write(b"one\ntwo\n")  # EPIPE: no exception
    writer.write(b"three\n")
    assert writer.dropped == 3
    writer.close()


def test_close_on_a_stalled_pipe_gives_up_at_the_deadline(pipe: list[int]) -> None:
    _, write_fd = pipe
    writer = FdLineWriter(write_fd)
    while writer.dropped == 0:
        writer.write(numbered(0, 4096))
    held = writer.dropped
    writer.close(timeout=0.2)  # nobody reads: returns anyway, the backlog counted as lost
    assert writer.dropped > held


def test_dev_full_is_written_directly_and_counted() -> None:
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        writer = FdLineWriter(fd)
        assert writer.mode == "direct"
        writer.write(b"a\nb\n")
        assert writer.dropped == 2
        writer.close()
    finally:
        os.close(fd)


def test_socket_destination_uses_per_call_nonblocking() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = FdLineWriter(ours.fileno())
        assert writer.mode == "socket"
        writer.write(b"hello\n")
        assert theirs.recv(100) == b"hello\n"
        assert ours.getblocking()  # the caller's socket keeps its mode
        writer.close()


def test_file_writer_recreates_a_deleted_directory(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "app.log"
    writer = FileLineWriter(str(path), reopen_interval=0.0)
    writer.write(b"first\n")
    assert path.read_bytes() == b"first\n"
    path.unlink()
    path.parent.rmdir()
    writer.write(b"second\n")
    assert path.read_bytes() == b"second\n"
    assert writer.dropped == 0
    writer.close()


def test_file_writer_drops_while_unusable_then_reports(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("not a directory")
    path = blocker / "app.log"
    writer = FileLineWriter(str(path), reopen_interval=0.0)
    writer.write(b"lost 1\nlost 2\n")
    assert writer.dropped == 2
    blocker.unlink()
    writer.write(b"kept\n")
    assert path.read_bytes() == plain_notice(2, "file") + b"kept\n"
    writer.close()
    writer.write(b"after close\n")  # closed for good: counted, not written
    assert writer.dropped == 3


def test_file_writer_on_a_full_disk() -> None:
    writer = FileLineWriter("/dev/full")
    writer.write(b"x\n")
    writer.write(b"y\nz\n")
    assert writer.dropped == 3
    writer.close()


def test_stream_writer_for_text_and_bytes() -> None:
    import io

    text, raw = io.StringIO(), io.BytesIO()
    StreamLineWriter(text).write(b"t\n")
    StreamLineWriter(raw).write(b"b\n")
    assert (text.getvalue(), raw.getvalue()) == ("t\n", b"b\n")


def test_a_closed_descriptor_drops_everything() -> None:
    write_fd = os.open(os.devnull, os.O_WRONLY)
    os.close(write_fd)
    writer = FdLineWriter(write_fd)  # e.g. navigator started with `>&-`
    assert writer.mode == "closed"
    writer.write(b"lost\n")
    assert writer.dropped == 1
    writer.close()


def test_a_dropped_writer_releases_the_pipe(pipe: list[int]) -> None:
    read_fd, write_fd = pipe
    writer = FdLineWriter(write_fd)  # its own description of the pipe's write end
    writer.write(b"x\n")
    del writer
    close_end(pipe, 1)
    assert read_to_end(read_fd) == b"x\n"  # end of file: no write end left open
