"""`server.metrics.listen`: a separate listener that answers only the metrics path."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import Reader, connect, request, run_navigator, write_config


def test_internal_listener_answers_scrapes_only(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, """
server:
  listen: "127.0.0.1:0"
  metrics:
    listen: "127.0.0.1:0"
    path: /metrics
""")
    with run_navigator(cfg) as nav:
        found = nav.wait_for_output(r"navigator metrics on http://127\.0\.0\.1:(\d+)/metrics")
        port = int(found.group(1))
        request(nav.port, "GET", "/nothing-here")  # counted on the public side
        with connect(port) as sock:  # keep-alive: two scrapes on one connection
            reader = Reader(sock)
            for _ in range(2):
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n")
                scrape = reader.response()
                assert scrape.status == 200
                assert (scrape.header("Content-Type") or "").startswith("text/plain")
                assert re.search(rb'navigator_requests_total\{[^}]*status_class="4xx"[^}]*\} 1',
                                 scrape.body), scrape.body[:2000]
        assert request(port, "GET", "/other").status == 404
        assert request(port, "POST", "/metrics", body=b"x").status == 405
        head = request(port, "HEAD", "/metrics")
        assert (head.status, head.body) == (200, b"")
        assert request(port, "GET", "/metrics?x=1").status == 200
        garbage = connect(port)
        with garbage:
            garbage.sendall(b"NOT HTTP\r\n\r\n")
            assert Reader(garbage).response().status == 400
        # The public listener keeps answering the same path, to loopback peers only.
        assert request(nav.port, "GET", "/metrics").status == 200
