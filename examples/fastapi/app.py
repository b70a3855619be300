"""A minimal FastAPI tenant for navigator: notes in a per-tenant sqlite file, a form protected
by a CSRF token, a JSON API and a WebSocket.

navigator forwards the full path (/fastapi/alpha/notes), so every route is registered under the
tenant's prefix, read from MOUNT_PATH. Do not use `uvicorn --root-path` for this: uvicorn
prepends the root path to what it receives, which already carries the prefix, and the routes
stop matching. Environment (set per tenant in navigator.yml):

    MOUNT_PATH   the tenant's prefix, e.g. /fastapi/alpha/
    DATABASE     the sqlite file, created on first use
    TENANT_NAME  shown on the page
"""

from __future__ import annotations

import html
import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse

PREFIX = "/" + os.environ.get("MOUNT_PATH", "/").strip("/")  # "/fastapi/alpha" (or "/")
BASE = PREFIX.rstrip("/")                                   # "" when mounted at the root
DATABASE = Path(os.environ.get("DATABASE", "notes.sqlite3"))
TENANT = os.environ.get("TENANT_NAME", PREFIX)
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
router = APIRouter(prefix=BASE)


@app.get("/up")
def probe() -> PlainTextResponse:
    """navigator's readiness probe asks GET /up without the prefix: answer it here too."""
    return PlainTextResponse("ok")


@router.get("/up")
def up() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/")
def index(request: Request) -> HTMLResponse:
    # Double-submit CSRF token: a random value in a cookie scoped to this tenant's prefix,
    # repeated in the form; a cross-site form cannot read the cookie to repeat it.
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes())
    page = f"""<!doctype html>
<html><head><title>{html.escape(TENANT)}</title>
<link rel="stylesheet" href="/fastapi-assets/app.css"></head>
<body><h1>Notes of {html.escape(TENANT)}</h1>
<form method="post" action="{BASE}/notes">
<input type="hidden" name="csrf_token" value="{token}">
<input type="text" name="body" required><button>Add</button></form>
<ul id="notes">{items}</ul></body></html>"""
    response = HTMLResponse(page)
    # Path scoped to the tenant: with Path=/ every tenant on the host would receive it.
    response.set_cookie(CSRF_COOKIE, token, path=f"{BASE}/", httponly=True, samesite="lax")
    return response


@router.post("/notes", response_model=None)
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
    return RedirectResponse(f"{BASE}/", status_code=303)


@router.get("/api/notes")
def api_notes() -> JSONResponse:
    return JSONResponse({"tenant": TENANT, "notes": notes()})


@router.websocket("/ws")
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


app.include_router(router)
