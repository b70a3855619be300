"""Small static files answered from memory stay exactly what the disk holds."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Reader, connect, request, run_navigator, write_config


def test_cached_file_follows_every_change_and_keeps_framing(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    page = public / "page.txt"
    page.write_bytes(b"first version")
    cfg = write_config(tmp_path, f"""
server:
  listen: "127.0.0.1:0"
  static:
    public_dir: {public}
    cache_control:
      overrides:
        - {{path: /page.txt, max_age: 60s}}
""")
    with run_navigator(cfg) as nav, connect(nav.port) as sock:
        reader = Reader(sock)
        get = b"GET /page.txt HTTP/1.1\r\nHost: t\r\n\r\n"
        bodies = []
        for content in (b"first version", b"first version", b"second, longer version", b"3"):
            if page.read_bytes() != content:
                page.write_bytes(content)
            sock.sendall(get)
            resp = reader.response()
            assert resp.status == 200
            assert resp.header("Content-Length") == str(len(content))
            assert resp.header("Cache-Control") == "public, max-age=60"
            assert resp.header("Connection") is None
            bodies.append(resp.body)
        assert bodies == [b"first version", b"first version", b"second, longer version", b"3"]
        closing = request(nav.port, "GET", "/page.txt")  # Connection: close, from the cache
        assert (closing.status, closing.body, closing.header("Connection")) == (200, b"3", "close")
        ranged = request(nav.port, "GET", "/page.txt", headers={"Range": "bytes=0-0"})
        assert (ranged.status, ranged.body) == (206, b"3")
        page.unlink()
        assert request(nav.port, "GET", "/page.txt").status == 404
