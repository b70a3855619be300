"""A tiny todo-list web app: the tenant of navigator's bundled demo (one process per list).

Standard library only (http.server + sqlite3), so it runs with any Python 3.11+.
Environment:
  PORT          port to listen on (default 8000); HOST (default 127.0.0.1)
  DATABASE_URL  `sqlite:///abs/path.db`, `sqlite3:rel/path.db` or a plain path (default
                $TMPDIR/todo.db); the directory is created. Navigator gives each tenant one.
  MOUNT_PATH    URL prefix the app is mounted at, e.g. /sam/list1/ (optional: without it
                the prefix is inferred from the path each request arrives with)
  TENANT_NAME   name shown in the page (default: the mount path)
Routes, relative to the mount: GET / (page), POST items, POST items/<id>/toggle,
POST items/<id>/delete (all 303 back), GET api/items (JSON), GET up (200 "ok").
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import sqlite3
import tempfile
import threading
import time
from contextlib import closing
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from urllib.parse import parse_qs, urlsplit

ROUTES = (  # tried in order: the longest suffixes first, so "/x/api/items" is not "items"
    ("api", re.compile(r"^(?P<base>.*/)api/items$")),
    ("item", re.compile(r"^(?P<base>.*/)items/(?P<id>\d+)/(?P<action>toggle|delete)$")),
    ("items", re.compile(r"^(?P<base>.*/)items$")),
    ("up", re.compile(r"^(?P<base>.*/)up$")),
    ("index", re.compile(r"^(?P<base>.*/)$")),
)
MAX_BODY = 64 * 1024

STYLE = """:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--line:#d8dee4;
--accent:#0a66c2;--bg:#ffffff}@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--accent:#6cb6ff;--bg:#0d1117}}
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;
color:var(--fg);background:var(--bg)}h1{font-size:1.6rem;margin-bottom:.2rem}
.sub{color:var(--muted);margin-top:0}form.add{display:flex;gap:.5rem;margin:1rem 0}
form.add input{flex:1;padding:.45rem;font:inherit}button{font:inherit;padding:.35rem .8rem;
cursor:pointer}ul{list-style:none;padding:0}li{display:flex;align-items:center;gap:.5rem;
padding:.35rem 0;border-bottom:1px solid var(--line)}li span{flex:1}
li.done span{text-decoration:line-through;color:var(--muted)}li form{margin:0}
li button{border:0;background:none;color:inherit;padding:.2rem .4rem}
.empty{color:var(--muted);text-align:center;padding:1.5rem 0;border:1px dashed var(--line);
border-radius:8px}a{color:var(--accent)}"""
EMPTY_STATE = "Nothing to do yet. Add the first item above."


def database_path(url: str) -> str:
    """`sqlite:///tmp/a.db` and `sqlite:////tmp/a.db` -> /tmp/a.db; `sqlite3:db/a.db` -> db/a.db."""
    path = re.sub(r"^sqlite3?:", "", url)
    if path.startswith("//"):  # URL form with an empty host: what follows is absolute
        path = "/" + path.lstrip("/")
    return path


def normalize_mount(value: str) -> str:
    value = "/" + value.strip("/")
    return value if value == "/" else value + "/"


class TodoStore:
    """One sqlite file; a connection per call keeps threads independent."""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._run("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
                  " done INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL)")

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> tuple[list[sqlite3.Row], int]:
        """Run one statement in its own transaction; return (rows, rows changed)."""
        with closing(sqlite3.connect(self.path, timeout=5)) as db, db:
            db.row_factory = sqlite3.Row
            cursor = db.execute(sql, args)
            return cursor.fetchall(), cursor.rowcount

    def items(self) -> list[dict[str, object]]:
        rows, _ = self._run("SELECT id, title, done, created_at FROM items ORDER BY id")
        return [dict(row) | {"done": bool(row["done"])} for row in rows]

    def add(self, title: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._run("INSERT INTO items (title, created_at) VALUES (?, ?)", (title, stamp))

    def toggle(self, item_id: int) -> bool:
        return self._run("UPDATE items SET done = 1 - done WHERE id = ?", (item_id,))[1] > 0

    def delete(self, item_id: int) -> bool:
        return self._run("DELETE FROM items WHERE id = ?", (item_id,))[1] > 0


def render_page(tenant: str, base: str, items: list[dict[str, object]]) -> bytes:
    rows = []
    for item in items:
        action = f"{base}items/{item['id']}"
        mark = "&#9745;" if item["done"] else "&#9744;"
        rows.append(
            f'<li class="{"done" if item["done"] else ""}">'
            f'<form method="post" action="{action}/toggle"><button title="toggle">{mark}</button>'
            f'</form><span>{html.escape(str(item["title"]))}</span>'
            f'<form method="post" action="{action}/delete"><button title="delete">&#10005;</button>'
            "</form></li>")
    left = sum(1 for item in items if not item["done"])
    summary = f"{left} of {len(items)} left" if items else "No items yet"
    listing = f'<ul>{"".join(rows)}</ul>' if items else f'<p class="empty">{EMPTY_STATE}</p>'
    home = '<p><a href="/">&larr; all lists</a></p>' if base != "/" else ""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(tenant)} &middot; todo</title><style>{STYLE}</style></head><body>
<h1>{html.escape(tenant)}</h1>
<p class="sub">{summary} &middot; served by pid {os.getpid()}</p>
<form class="add" method="post" action="{base}items">
<input name="title" placeholder="What needs doing?" maxlength="200" required autofocus>
<button>Add</button></form>{listing}{home}</body></html>"""
    return page.encode()


def response_bytes(status: int, body: bytes, content_type: str, *, location: str = "",
                   date: str = "", head_only: bool = False, close: bool = False) -> bytes:
    """One HTTP/1.1 response as one bytes object, so the handler writes it with one send.

    http.server's send_response/end_headers write the head, then the body goes in a second
    send. On a kept-alive connection the second small segment waits (Nagle) for the ACK of the
    first, which the peer delays by up to 40 ms: every request after a connection's first
    took ~44 ms, through navigator's pooled connections too (issue 14).
    """
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Cache-Control: no-store"]
    if date:
        lines.append(f"Date: {date}")
    if location:
        lines.append(f"Location: {location}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


class TodoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: TodoStore, mount: str | None,
                 tenant: str) -> None:
        super().__init__(address, TodoHandler)
        self.store, self.mount, self.tenant = store, mount, tenant


class TodoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a proxy can pool connections
    disable_nagle_algorithm = True  # TCP_NODELAY as well: a large page's last segment goes at once
    server: TodoServer
    started = 0.0

    def parse_request(self) -> bool:
        self.started = time.perf_counter()
        return super().parse_request()

    def do_GET(self) -> None:
        self.dispatch()

    do_HEAD = do_POST = do_GET

    def resolve(self, path: str) -> tuple[str, str, re.Match[str]] | None:
        """(route, mount base, match). Paths outside MOUNT_PATH (probes) infer their base."""
        mount = self.server.mount
        if mount is not None and path.startswith(mount):
            rest = path[len(mount) - 1:]
            hits = ((name, m) for name, pattern in ROUTES if (m := pattern.match(rest)))
            return next(((name, mount, m) for name, m in hits if m["base"] == "/"), None)
        return next(((name, m["base"], m) for name, pattern in ROUTES
                     if (m := pattern.match(path))), None)

    def dispatch(self) -> None:
        found = self.resolve(urlsplit(self.path).path)
        if found is None:
            return self.send(404, b"not found\n")
        route, base, match = found
        store = self.server.store
        method = "GET" if self.command == "HEAD" else self.command
        if (method, route) == ("GET", "index"):
            page = render_page(self.server.tenant or base, base, store.items())
            return self.send(200, page, "text/html; charset=utf-8")
        if (method, route) == ("GET", "api"):
            data = {"tenant": self.server.tenant or base, "items": store.items()}
            return self.send(200, json.dumps(data).encode() + b"\n", "application/json")
        if (method, route) == ("GET", "up"):
            return self.send(200, b"ok", "text/plain")
        if method != "POST" or route not in ("items", "item"):
            return self.send(405, b"method not allowed\n")
        body = self.read_body()
        if body is None:
            return self.send(413, b"request body too large\n")
        if route == "items":
            title = self.form_title(body)
            if title:
                store.add(title)
        elif not (store.toggle if match["action"] == "toggle" else store.delete)(int(match["id"])):
            return self.send(404, b"no such item\n")
        return self.send(303, b"", location=base)

    def read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None when over MAX_BODY."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > MAX_BODY:
                    self.close_connection = True
                    return None
            while self.rfile.readline().strip():  # trailers, then the final blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def form_title(self, body: bytes) -> str:
        if self.headers.get("Content-Type", "").startswith("application/json"):
            try:
                title = json.loads(body or b"{}").get("title", "")
            except (ValueError, AttributeError):  # not JSON, or not an object
                return ""
        else:
            title = parse_qs(body.decode(errors="replace")).get("title", [""])[0]
        return str(title).strip()[:200]

    def send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
             location: str = "") -> None:
        """Write the whole response with one send (see `response_bytes`)."""
        self.log_request(status)
        data = response_bytes(status, body, content_type, location=location,
                              date=self.date_time_string(), head_only=self.command == "HEAD",
                              close=self.close_connection)
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        elapsed = (time.perf_counter() - self.started) * 1000
        print(f"{self.command} {self.path} {code} {elapsed:.1f}ms", flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    url = os.environ.get("DATABASE_URL") or os.path.join(tempfile.gettempdir(), "todo.db")
    store = TodoStore(database_path(url))
    mount = normalize_mount(os.environ["MOUNT_PATH"]) if os.environ.get("MOUNT_PATH") else None
    server = TodoServer((host, port), store, mount, os.environ.get("TENANT_NAME", ""))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only flag it: shutdown() must not run inside the serving thread

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
    print(f"todo listening on http://{host}:{port}{mount or '/'} db={store.path}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    print("todo stopped", flush=True)


if __name__ == "__main__":
    main()
