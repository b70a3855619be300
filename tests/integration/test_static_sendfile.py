"""Large static files go out with sendfile, interleaved with buffered writes when the client
is slow; the bytes must arrive complete and in order, and the connection stay usable."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

from tests.helpers import Reader, request, run_navigator, write_config

SIZE = 8 * 1024 * 1024 + 12345


def test_big_file_to_a_slow_reader_then_the_next_request(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    data = os.urandom(SIZE)
    (public / "big.bin").write_bytes(data)
    (public / "small.txt").write_bytes(b"small and last")
    cfg = write_config(tmp_path, f"""
server:
  listen: "127.0.0.1:0"
  static:
    public_dir: {public}
""")
    with run_navigator(cfg) as nav:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # keep the server waiting
        sock.settimeout(30)
        sock.connect(("127.0.0.1", nav.port))
        with sock:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            reader = Reader(sock)
            head = reader.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert b"Content-Length: %d" % SIZE in head
            digest = hashlib.sha256()
            got = 0
            pending = reader.buffer
            reader.buffer = b""
            while got < SIZE:
                if not pending:
                    pending = sock.recv(4096)  # small reads: the socket fills up often
                    assert pending, "closed early"
                take = pending[:SIZE - got]
                digest.update(take)
                got += len(take)
                pending = pending[len(take):]
            assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
            reader.buffer = pending
            sock.sendall(b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            resp = reader.response()
            assert (resp.status, resp.body) == (200, b"small and last")
        ranged = request(nav.port, "GET", "/big.bin",
                         headers={"Range": "bytes=1000000-5000000"})
        assert ranged.status == 206
        assert ranged.body == data[1_000_000:5_000_001]
        head_only = request(nav.port, "HEAD", "/big.bin")
        assert (head_only.status, head_only.body) == (200, b"")
        assert head_only.header("Content-Length") == str(SIZE)
