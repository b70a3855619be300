"""Unit tests for navigator.web.static: safe resolution and file response heads."""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from navigator.web.decision import RequestInfo, ServeFile
from navigator.web.static import (
    accepted_codings,
    content_type,
    dir_with_index,
    find_file,
    parse_range,
    prepare_file,
    resolve_under,
)

BODY = b"0123456789" * 10  # 100 bytes
MTIME = 1_700_000_000


@pytest.fixture
def root(tmp_path: Path) -> Path:
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "css" / "app.css").write_bytes(BODY)
    os.utime(public / "css" / "app.css", (MTIME, MTIME))
    (public / "img.png").write_bytes(b"\x89PNG")
    (public / "dir").mkdir()
    (public / "dir" / "index.html").write_text("hi")
    (public / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("secret")
    return public


def req(method: str = "GET", **kwargs: Any) -> RequestInfo:
    return RequestInfo(method=method, path="/", query="", host="h", peer_ip="1.2.3.4", **kwargs)


def headers_of(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(pairs)


# --- resolution ------------------------------------------------------------------------------
@pytest.mark.parametrize(("rel", "ok"), [
    ("css/app.css", True),
    ("/css/app.css", True),
    ("./css//app.css", True),
    ("../secret.txt", False),
    ("css/../../secret.txt", False),
    ("css/../app.css", False),  # any `..` segment is refused, even one that stays inside
    ("css\\..\\..\\secret.txt", False),
    ("css/app.css\x00.png", False),
    ("%2e%2e/secret.txt", True),  # already decoded by routing: a literal name, stays inside
])
def test_resolve_under(rel: str, ok: bool, root: Path) -> None:
    result = resolve_under(root, rel)
    if ok:
        assert result is not None
        assert str(result).startswith(os.path.realpath(root))
    else:
        assert result is None


def test_resolve_under_refuses_symlink_escape(root: Path) -> None:
    os.symlink(root.parent / "secret.txt", root / "link.txt")
    os.symlink(root.parent, root / "up")
    assert resolve_under(root, "link.txt") is None
    assert resolve_under(root, "up/secret.txt") is None


def test_symlink_inside_public_is_fine(root: Path) -> None:
    os.symlink(root / "css" / "app.css", root / "alias.css")
    assert find_file(str(root), "alias.css") == root / "alias.css"


@pytest.mark.parametrize(("rel", "found"), [
    ("css/app.css", True),
    ("css", False),  # a directory
    ("missing.css", False),
    ("", False),
    ("../secret.txt", False),
    ("css/app.css/x", False),
])
def test_find_file(rel: str, found: bool, root: Path) -> None:
    assert (find_file(os.path.realpath(root), rel) is not None) is found


def test_find_file_refuses_symlink_escape(root: Path) -> None:
    os.symlink(root.parent / "secret.txt", root / "leak.txt")
    assert find_file(os.path.realpath(root), "leak.txt") is None


def test_find_file_memo_rechecks_a_symlink_turned_outward(root: Path) -> None:
    real = os.path.realpath(root)
    inside: dict[str, tuple[int, int]] = {}
    os.symlink(root / "css" / "app.css", root / "swap.css")
    assert find_file(real, "swap.css", inside) is not None
    assert find_file(real, "swap.css", inside) is not None  # from the memo
    os.unlink(root / "swap.css")
    os.symlink(root.parent / "secret.txt", root / "swap.css")
    assert find_file(real, "swap.css", inside) is None  # another inode: checked afresh


def test_dir_with_index(root: Path) -> None:
    real = os.path.realpath(root)
    assert dir_with_index(real, "/dir")
    assert not dir_with_index(real, "/css")
    assert not dir_with_index(real, "/")


# --- content types ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kind"), [
    ("a.css", "text/css; charset=utf-8"),
    ("a.html", "text/html; charset=utf-8"),
    ("a.js", "text/javascript; charset=utf-8"),
    ("a.json", "application/json; charset=utf-8"),
    ("a.svg", "image/svg+xml; charset=utf-8"),
    ("a.png", "image/png"),
    ("a.woff", "font/woff"),
    ("a.woff2", "font/woff2"),
    ("a.ttf", "font/ttf"),
    ("a.eot", "application/vnd.ms-fontobject"),
    ("a.wasm", "application/wasm"),
    ("A.PNG", "image/png"),
    ("noext", "application/octet-stream"),
    ("a.unknownext", "application/octet-stream"),
])
def test_content_type(name: str, kind: str) -> None:
    assert content_type(name) == kind


# --- full responses --------------------------------------------------------------------------
def serve(root: Path, rel: str, **kwargs: Any) -> Any:
    return prepare_file(ServeFile(str(root / rel), kwargs.pop("extra", ())), req(**kwargs))


def test_full_response(root: Path) -> None:
    response = serve(root, "css/app.css", extra=(("Cache-Control", "public, max-age=60"),))
    assert (response.status, response.offset, response.length, response.body_allowed) == (
        200, 0, 100, True)
    headers = headers_of(response.headers)
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["Content-Length"] == "100"
    assert headers["Last-Modified"] == formatdate(MTIME, usegmt=True)
    assert headers["ETag"].startswith('"64-')
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert "Vary" not in headers


def test_head_has_length_but_no_body(root: Path) -> None:
    response = serve(root, "css/app.css", method="HEAD")
    assert response.status == 200
    assert headers_of(response.headers)["Content-Length"] == "100"
    assert (response.length, response.body_allowed) == (0, False)


def test_etag_304(root: Path) -> None:
    etag = headers_of(serve(root, "css/app.css").headers)["ETag"]
    for value in (etag, f'"x", {etag}', f"W/{etag}", "*"):
        response = serve(root, "css/app.css", if_none_match=value)
        assert (response.status, response.length, response.body_allowed) == (304, 0, False)
        assert headers_of(response.headers)["ETag"] == etag
        assert "Content-Length" not in headers_of(response.headers)
    assert serve(root, "css/app.css", if_none_match='"other"').status == 200


@pytest.mark.parametrize(("since", "status"), [
    (formatdate(MTIME, usegmt=True), 304),
    (formatdate(MTIME + 60, usegmt=True), 304),
    (formatdate(MTIME - 60, usegmt=True), 200),
    ("not a date", 200),
])
def test_if_modified_since(since: str, status: int, root: Path) -> None:
    assert serve(root, "css/app.css", if_modified_since=since).status == status


def test_if_none_match_beats_if_modified_since(root: Path) -> None:
    response = serve(root, "css/app.css", if_none_match='"nope"',
                     if_modified_since=formatdate(MTIME, usegmt=True))
    assert response.status == 200


def test_conditionals_only_for_get_and_head(root: Path) -> None:
    assert serve(root, "css/app.css", method="POST", if_none_match="*").status == 200


@pytest.mark.parametrize(("header", "status", "offset", "length", "content_range"), [
    ("bytes=0-9", 206, 0, 10, "bytes 0-9/100"),
    ("bytes=90-", 206, 90, 10, "bytes 90-99/100"),
    ("bytes=-5", 206, 95, 5, "bytes 95-99/100"),
    ("bytes=-500", 206, 0, 100, "bytes 0-99/100"),
    ("bytes=50-5000", 206, 50, 50, "bytes 50-99/100"),
    ("bytes=100-", 416, 0, 0, "bytes */100"),
    ("bytes=-0", 416, 0, 0, "bytes */100"),
    ("bytes=0-1,5-6", 200, 0, 100, None),
    ("bytes=9-1", 200, 0, 100, None),
    ("items=0-1", 200, 0, 100, None),
    ("bytes=abc", 200, 0, 100, None),
])
def test_ranges(header: str, status: int, offset: int, length: int,
                content_range: str | None, root: Path) -> None:
    response = serve(root, "css/app.css", range=header)
    assert (response.status, response.offset, response.length) == (status, offset, length)
    headers = headers_of(response.headers)
    assert headers.get("Content-Range") == content_range
    assert headers["Content-Length"] == str(length)


def test_range_on_empty_file_is_ignored(root: Path) -> None:
    response = serve(root, "empty.txt", range="bytes=0-")
    assert (response.status, response.length) == (200, 0)


@pytest.mark.parametrize(("accept", "expected"), [
    ("", frozenset()),
    ("gzip", frozenset({"gzip"})),
    ("gzip, deflate, br", frozenset({"gzip", "deflate", "br"})),
    ("br;q=0, gzip;q=0.5", frozenset({"gzip"})),
    ("*", frozenset({"*", "br", "gzip"})),
    ("*;q=1, br;q=0", frozenset({"*", "gzip"})),
    ("x-gzip", frozenset({"x-gzip", "gzip"})),
    ("gzip;q=bogus", frozenset()),
])
def test_accepted_codings(accept: str, expected: frozenset[str]) -> None:
    assert accepted_codings(accept) == expected


def test_precompressed_siblings(root: Path) -> None:
    (root / "css" / "app.css.gz").write_bytes(b"gz" * 5)
    (root / "css" / "app.css.br").write_bytes(b"b" * 7)
    plain = serve(root, "css/app.css")
    assert plain.path == str(root / "css" / "app.css")
    assert headers_of(plain.headers)["Vary"] == "Accept-Encoding"
    assert "Content-Encoding" not in headers_of(plain.headers)

    gz = serve(root, "css/app.css", accept_encoding="gzip")
    headers = headers_of(gz.headers)
    assert gz.path == str(root / "css" / "app.css.gz")
    assert (headers["Content-Encoding"], headers["Content-Length"]) == ("gzip", "10")
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["ETag"].endswith('-gzip"')

    br = serve(root, "css/app.css", accept_encoding="gzip, br")
    assert br.path == str(root / "css" / "app.css.br")
    assert headers_of(br.headers)["Content-Encoding"] == "br"


def test_no_sibling_lookup_for_images(root: Path) -> None:
    (root / "img.png.gz").write_bytes(b"x")
    response = serve(root, "img.png", accept_encoding="gzip")
    assert response.path == str(root / "img.png")
    assert "Vary" not in headers_of(response.headers)


def test_missing_file_raises(root: Path) -> None:
    with pytest.raises(OSError, match="No such file"):
        serve(root, "gone.css")
    with pytest.raises(OSError, match="dir"):
        serve(root, "dir")


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-0", (0, 0)),
    ("bytes = 1-2", (1, 2)),
    ("bytes=5-", (5, 9)),
    ("bytes=10-", False),
    ("bytes=", None),
    ("bytes=-", None),
])
def test_parse_range(header: str, expected: object) -> None:
    assert parse_range(header, 10) == expected
