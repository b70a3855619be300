"""Static files: safe path resolution and the response head for a file.

Room: static. `resolve_under`/`find_file` decide whether a URL path names a regular file inside
the public directory (the path check is pure string work; existence needs one `stat`);
`prepare_file` turns a `ServeFile` decision into status + headers + byte range by one `stat`
(plus at most two for precompressed siblings). The protocol streams the bytes.

Invariants:
- a path containing NUL, a backslash or a `..` segment never resolves; a file whose real path
  (symlinks followed) lies outside the real public directory is refused;
- conditional requests: If-None-Match (weak comparison, RFC 9110 §13.1.2) wins over
  If-Modified-Since (§13.1.3); both only for GET/HEAD; a match gives 304 with validators;
- one `Range: bytes=` range (RFC 9110 §14.2) gives 206 or 416; several ranges or bad syntax are
  ignored (a full 200 is always allowed);
- HEAD: same headers as GET, `body_allowed=False`, `length=0`;
- a `.br`/`.gz` sibling is used only when Accept-Encoding allows it; such a resource always
  gets `Vary: Accept-Encoding`, and its ETag carries the coding.

Must not touch: sockets, asyncio, os.environ, module-level mutable state.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType

from navigator.config.runtime import Pairs
from navigator.web.decision import RequestInfo, ServeFile

_EXTRA_TYPES = {
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject", ".js": "text/javascript",
    ".mjs": "text/javascript", ".json": "application/json", ".map": "application/json",
    ".webmanifest": "application/manifest+json", ".wasm": "application/wasm",
    ".svg": "image/svg+xml", ".webp": "image/webp", ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon", ".md": "text/markdown", ".txt": "text/plain",
    ".html": "text/html", ".htm": "text/html", ".css": "text/css", ".xml": "text/xml",
    ".csv": "text/csv", ".pdf": "application/pdf", ".mp4": "video/mp4",
    ".webm": "video/webm", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
}


def _build_types() -> MappingProxyType[str, str]:
    # Built-in table only (strict, no /etc/mime.types), so answers do not vary by machine.
    table = dict(mimetypes.MimeTypes(filenames=()).types_map[True])
    table.update(_EXTRA_TYPES)
    for ext, kind in table.items():
        if kind.startswith("text/") or kind in ("application/json", "image/svg+xml",
                                                 "application/manifest+json"):
            table[ext] = f"{kind}; charset=utf-8"
    return MappingProxyType(table)


CONTENT_TYPES = _build_types()
DEFAULT_TYPE = "application/octet-stream"
_COMPRESSIBLE_PREFIXES = ("text/", "application/json", "image/svg+xml", "application/wasm",
                          "application/manifest+json", "application/xml",
                          "application/vnd.ms-fontobject", "font/ttf", "font/otf")
_SIBLINGS = (("br", ".br"), ("gzip", ".gz"))


def content_type(path: Path | str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return CONTENT_TYPES.get(ext, DEFAULT_TYPE)


# --- safe resolution ------------------------------------------------------------------------
def _clean_parts(rel_path: str) -> list[str] | None:
    if "\x00" in rel_path or "\\" in rel_path:
        return None
    parts = [p for p in rel_path.split("/") if p and p != "."]
    if ".." in parts:
        return None
    return parts


def _within(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def resolve_under(public_dir: Path | str, rel_path: str) -> Path | None:
    """The real path of `rel_path` under `public_dir`, or None if it would escape it."""
    parts = _clean_parts(rel_path)
    if parts is None:
        return None
    root = os.path.realpath(public_dir)
    try:
        real = os.path.realpath(os.path.join(root, *parts))
    except (OSError, ValueError):
        return None
    return Path(real) if _within(real, root) else None


INSIDE_LIMIT = 4096
"""Files remembered as lying inside the public dir; the memo is emptied when it fills."""


def find_file(root_real: str, rel_path: str,
              inside: dict[str, tuple[int, int]] | None = None) -> Path | None:
    """A regular file at `rel_path` under the (already real) public dir, else None."""
    found = locate_file(root_real, rel_path, inside)
    return Path(found[0]) if found is not None else None


def locate_file(root_real: str, rel_path: str, inside: dict[str, tuple[int, int]] | None = None
                ) -> tuple[str, os.stat_result] | None:
    """The path and `stat` of a regular file at `rel_path` under the (already real) public
    dir, else None.

    One `stat` when nothing is there (the common try_files miss); the realpath containment
    check runs only for hits. `inside` remembers which file (device, inode) a path led to when
    it was last found inside, so a repeat costs that one `stat`: a symlink changed to lead
    elsewhere reaches another inode and is checked afresh. The `stat` is handed on so that
    serving the file need not repeat it.
    """
    parts = _clean_parts(rel_path)
    if not parts:
        return None
    # Plain concatenation: no part is empty or absolute, so this is os.path.join (interpreted
    # Python, a tenth of this function's cost) for a root without a trailing separator.
    candidate = (root_real if root_real.endswith("/") else root_real + "/") + "/".join(parts)
    try:
        st = os.stat(candidate)
        if not stat.S_ISREG(st.st_mode):
            return None
        identity = (st.st_dev, st.st_ino)
        if inside is None or inside.get(candidate) != identity:
            if not _within(os.path.realpath(candidate), root_real):
                return None
            if inside is not None:
                if len(inside) >= INSIDE_LIMIT:
                    inside.clear()
                inside[candidate] = identity
    except (OSError, ValueError):
        return None
    return candidate, st


def dir_with_index(root_real: str, rel_path: str) -> bool:
    """Is `rel_path` a directory (inside the public dir) that contains `index.html`?"""
    parts = _clean_parts(rel_path)
    if not parts:
        return False
    return find_file(root_real, "/".join([*parts, "index.html"])) is not None


# --- the response head ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileResponse:
    status: int
    headers: Pairs
    path: str
    offset: int
    length: int  # bytes to send
    body_allowed: bool


def accepted_codings(accept_encoding: str) -> frozenset[str]:
    """Codings with q > 0 (RFC 9110 §12.5.3); `*` stands for any coding not listed."""
    if not accept_encoding:
        return frozenset()
    accepted: set[str] = set()
    refused: set[str] = set()
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        coding = name.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        (accepted if q > 0 else refused).add(coding)
    if "*" in accepted:
        accepted.update(c for c, _ in _SIBLINGS if c not in refused)
    if "x-gzip" in accepted:
        accepted.add("gzip")
    return frozenset(accepted)


def make_etag(st: os.stat_result, coding: str = "") -> str:
    tag = f"{st.st_size:x}-{st.st_mtime_ns:x}"
    return f'"{tag}-{coding}"' if coding else f'"{tag}"'


def _etag_matches(if_none_match: str, etag: str) -> bool:
    value = if_none_match.strip()
    if value == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(item.strip().removeprefix("W/") == opaque for item in value.split(","))


def _not_modified_since(if_modified_since: str, mtime: float) -> bool:
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return int(mtime) <= since.timestamp()


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """(start, end inclusive), None to ignore the header, False when unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    if not first:
        if not last.isdigit():
            return None
        suffix = int(last)
        if suffix == 0:
            return False
        return max(0, size - suffix), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        return False
    return start, min(end, size - 1)


def prepare_file(decision: ServeFile, req: RequestInfo) -> FileResponse:
    """Status, headers and byte range for serving `decision.file`; raises OSError if gone."""
    path = decision.file
    st = decision.stat if decision.stat is not None else os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(str(path))
    kind = content_type(path)
    vary: Pairs = ()
    coding = ""
    if kind.startswith(_COMPRESSIBLE_PREFIXES):
        accepted = accepted_codings(req.accept_encoding)
        for name, suffix in _SIBLINGS:
            try:
                sibling_st = os.stat(f"{path}{suffix}")
            except (OSError, ValueError):
                continue
            if not stat.S_ISREG(sibling_st.st_mode):
                continue
            vary = (("Vary", "Accept-Encoding"),)
            if not coding and name in accepted:
                coding, path, st = name, f"{path}{suffix}", sibling_st
    etag = make_etag(st, coding)
    validators: Pairs = (("Last-Modified", formatdate(st.st_mtime, usegmt=True)),
                         ("ETag", etag), *decision.headers, *vary)
    head_only = req.method == "HEAD"
    if req.method in ("GET", "HEAD"):
        if req.if_none_match:
            fresh = _etag_matches(req.if_none_match, etag)
        else:
            fresh = bool(req.if_modified_since) and _not_modified_since(req.if_modified_since,
                                                                          st.st_mtime)
        if fresh:
            return FileResponse(304, validators, path, 0, 0, False)
    size = st.st_size
    encoding: Pairs = (("Content-Encoding", coding),) if coding else ()
    common = (("Content-Type", kind), *validators, ("Accept-Ranges", "bytes"), *encoding)
    wanted = parse_range(req.range, size) if req.range and size and req.method in (
        "GET", "HEAD") else None
    if wanted is False:
        headers = (*common, ("Content-Range", f"bytes */{size}"), ("Content-Length", "0"))
        return FileResponse(416, headers, path, 0, 0, False)
    if isinstance(wanted, tuple):
        start, end = wanted
        length = end - start + 1
        headers = (*common, ("Content-Range", f"bytes {start}-{end}/{size}"),
                   ("Content-Length", str(length)))
        return FileResponse(206, headers, path, start, 0 if head_only else length,
                            not head_only)
    headers = (*common, ("Content-Length", str(size)))
    return FileResponse(200, headers, path, 0, 0 if head_only else size, not head_only)
