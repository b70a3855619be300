"""The small-file response cache: served only while the file is the same and the entry fresh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from navigator.web.decision import RequestInfo, ServeFile
from navigator.web.filecache import MAX_FILE_BYTES, MAX_TOTAL_BYTES, FileCache
from navigator.web.static import prepare_file

EXTRA = (("Cache-Control", "max-age=60"),)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def get(path: Path) -> RequestInfo:
    return RequestInfo("GET", "/" + path.name, "", "t", "127.0.0.1")


def fill(cache: FileCache, path: Path, accept: str = "") -> None:
    prepared = prepare_file(ServeFile(str(path), EXTRA), get(path))
    cache.put(str(path), accept, EXTRA, prepared, b"HTTP/1.1 200 OK\r\nX-Head: 1\r\n")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_hit_returns_the_whole_response_in_one_buffer(tmp_path: Path, clock: Clock) -> None:
    page = tmp_path / "a.txt"
    page.write_bytes(b"hello")
    cache = FileCache(clock)
    assert cache.get(str(page), "", EXTRA) is None
    fill(cache, page)
    hit = cache.get(str(page), "", EXTRA)
    assert hit is not None
    assert hit.keep_alive_response == b"HTTP/1.1 200 OK\r\nX-Head: 1\r\n\r\nhello"
    assert cache.get(str(page), "gzip", EXTRA) is None  # another Accept-Encoding: own entry
    assert cache.get(str(page), "", ()) is None  # another route's headers: own entry


def test_a_changed_file_misses_at_once(tmp_path: Path, clock: Clock) -> None:
    page = tmp_path / "a.txt"
    page.write_bytes(b"hello")
    cache = FileCache(clock)
    fill(cache, page)
    page.write_bytes(b"hello, world")  # new size (and mtime)
    assert cache.get(str(page), "", EXTRA) is None
    fill(cache, page)
    replacement = tmp_path / "b.txt"
    replacement.write_bytes(b"HELLO, WORLD")
    st = page.stat()
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, page)  # same size and mtime, another inode
    assert cache.get(str(page), "", EXTRA) is None
    page.unlink()
    assert cache.get(str(page), "", EXTRA) is None
    assert len(cache) == 0


def test_entries_expire_so_new_siblings_are_noticed(tmp_path: Path, clock: Clock) -> None:
    page = tmp_path / "a.txt"
    page.write_bytes(b"hello")
    cache = FileCache(clock)
    fill(cache, page)
    clock.now += 0.5
    assert cache.get(str(page), "", EXTRA) is not None
    clock.now += 1.0
    assert cache.get(str(page), "", EXTRA) is None


def test_large_files_and_partial_answers_are_not_kept(tmp_path: Path, clock: Clock) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    cache = FileCache(clock)
    fill(cache, big)
    assert cache.get(str(big), "", EXTRA) is None
    small = tmp_path / "small.txt"
    small.write_bytes(b"0123456789")
    ranged = RequestInfo("GET", "/small.txt", "", "t", "127.0.0.1", range="bytes=2-4")
    partial = prepare_file(ServeFile(str(small), EXTRA), ranged)
    assert partial.status == 206
    cache.put(str(small), "", EXTRA, partial, b"HTTP/1.1 206 Partial Content\r\n")
    assert cache.get(str(small), "", EXTRA) is None


def test_total_size_is_bounded_oldest_first(tmp_path: Path, clock: Clock) -> None:
    cache = FileCache(clock)
    count = MAX_TOTAL_BYTES // MAX_FILE_BYTES + 3
    paths = []
    for i in range(count):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(bytes([i % 256]) * MAX_FILE_BYTES)
        fill(cache, path)
        paths.append(path)
    assert len(cache) == MAX_TOTAL_BYTES // MAX_FILE_BYTES
    assert cache.get(str(paths[0]), "", EXTRA) is None
    assert cache.get(str(paths[-1]), "", EXTRA) is not None
