"""Whole responses for small static files, kept in memory and revalidated per request.

Room: I/O (stat, read). A plain GET of a small file (no Range, no conditional headers) is
answered from a prebuilt response, after one `stat` shows the file is still the same
(device, inode, mtime in ns, size). Everything else a response depends on (the precompressed
sibling chosen for this Accept-Encoding, Last-Modified, ETag) is recomputed at most
`FRESH_SECONDS` after it was built, so a newly added `.gz` sibling shows up within that time.

Bounded: files up to `MAX_FILE_BYTES`, at most `MAX_TOTAL_BYTES` in all (oldest dropped
first). Lives on the server state, across reloads: keys hold the absolute file path and the
route's extra headers, so a changed config simply misses.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from navigator.config.runtime import Pairs
from navigator.web.static import FileResponse

MAX_FILE_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024
FRESH_SECONDS = 1.0

CacheKey = tuple[str, str, Pairs]  # file path, Accept-Encoding, route's extra headers
Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_size


@dataclass(slots=True)
class CachedFile:
    identity: Identity
    expires: float
    head: bytes  # status line and header lines, without the blank line
    body: bytes
    keep_alive_response: bytes  # head, blank line and body: one write


def identity_of(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


class FileCache:
    """Prebuilt responses for small files; see the module docstring."""

    __slots__ = ("_clock", "_entries", "_total")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: OrderedDict[CacheKey, CachedFile] = OrderedDict()
        self._total = 0

    def get(self, path: str, accept_encoding: str, extra: Pairs,
            st: os.stat_result | None = None) -> CachedFile | None:
        """The cached response if the file is unchanged and the entry still fresh. `st` is a
        `stat` of `path` just made by the caller (routing's lookup), else one is made here."""
        key = (path, accept_encoding, extra)
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            current: Identity | None = identity_of(st if st is not None else os.stat(path))
        except OSError:
            current = None
        if current != entry.identity or self._clock() > entry.expires:
            self._drop(key)
            return None
        return entry

    def put(self, path: str, accept_encoding: str, extra: Pairs, prepared: FileResponse,
            head: bytes) -> None:
        """Remember the 200 response just prepared for `path`, if it is small enough."""
        if (prepared.status != 200 or not prepared.body_allowed or prepared.offset
                or prepared.length > MAX_FILE_BYTES):
            return
        try:
            before = identity_of(os.stat(path))
            with open(prepared.path, "rb") as handle:
                body = handle.read(MAX_FILE_BYTES + 1)
        except OSError:
            return
        if len(body) != prepared.length:
            return  # changed while we looked: serve it the slow way until it settles
        key = (path, accept_encoding, extra)
        self._drop(key)
        self._entries[key] = CachedFile(before, self._clock() + FRESH_SECONDS, head, body,
                                        head + b"\r\n" + body)
        self._total += len(body)
        while self._total > MAX_TOTAL_BYTES and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._total -= len(entry.body)

    def __len__(self) -> int:
        return len(self._entries)
