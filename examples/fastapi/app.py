"""A minimal FastAPI tenant for navigator: notes in a per-tenant sqlite file, a form protected
by a CSRF token, a JSON API and a WebSocket.

The app knows nothing of its prefix: navigator.yml sets `strip_prefix: true`, so uvicorn
receives `/notes` for `/fastapi/alpha/notes`, and `UVICORN_ROOT_PATH` (uvicorn's
`--root-path`) tells it where it is mounted: links and redirects are built with `url_for`,
which puts the prefix back. Environment (set per tenant in navigator.yml):

    UVICORN_ROOT_PATH  the tenant's prefix, e.g. /fastapi/alpha (read by uvicorn)
    DATABASE           the sqlite file, created on first use
    TENANT_NAME        shown on the page
"""

from __future__ import annotations

import html
import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse

DATABASE = Path(os.environ.get("DATABASE", "notes.sqlite3"))
TENANT = os.environ.get("TENANT_NAME", "notes")
CSRF_COOKIE = "csrftoken"


def connect() -> sqlite3.Connection:
    DATABASE.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(DATABASE)
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return db


def notes() -> list[str]:
    with connect() as db:
        return [row[0] for row in db.execute("SELECT body FROM notes ORDER BY id")]


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/up")
def up() -> PlainTextResponse:
    """The readiness probe (navigator asks the tenant's port directly, without the prefix)."""
    return PlainTextResponse("ok")


@app.get("/")
def index(request: Request) -> HTMLResponse:
    # Double-submit CSRF token: a random value in a cookie scoped to this tenant's prefix,
    # repeated in the form; a cross-site form cannot read the cookie to repeat it.
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes())
    page = f"""<!doctype html>
<html><head><title>{html.escape(TENANT)}</title>
<link rel="stylesheet" href="/fastapi-assets/app.css"></head>
<body><h1>Notes of {html.escape(TENANT)}</h1>
<form method="post" action="{request.url_for('add_note').path}">
<input type="hidden" name="csrf_token" value="{token}">
<input type="text" name="body" required><button>Add</button></form>
<ul id="notes">{items}</ul></body></html>"""
    response = HTMLResponse(page)
    # Path=/ here; navigator's `scope_cookies` rewrites it to the tenant's prefix, so no
    # other tenant on the host receives it.
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax")
    return response


@app.post("/notes", response_model=None)
async def add_note(request: Request) -> RedirectResponse | PlainTextResponse:
    form = parse_qs((await request.body()).decode(), max_num_fields=10)
    token = form.get("csrf_token", [""])[0]
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(token, cookie):
        return PlainTextResponse("CSRF token missing or wrong", status_code=403)
    body = form.get("body", [""])[0].strip()
    if body:
        with connect() as db:
            db.execute("INSERT INTO notes (body) VALUES (?)", (body[:500],))
    return RedirectResponse(request.url_for("index"), status_code=303)  # with the prefix


@app.get("/api/notes")
def api_notes() -> JSONResponse:
    return JSONResponse({"tenant": TENANT, "notes": notes()})


@app.websocket("/ws")
async def socket(websocket: WebSocket) -> None:
    """Greets with the tenant and its note count, then echoes each text message."""
    await websocket.accept()
    await websocket.send_json({"tenant": TENANT, "notes": len(notes())})
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"tenant": TENANT, "echo": text})
    except WebSocketDisconnect:
        pass

