"""examples/fastapi through the real navigator, as a browser uses it: uvicorn runs with its
root path and navigator strips the prefix (`strip_prefix`), the page sets a CSRF cookie that
navigator scopes to the tenant (`scope_cookies`), the form POST with the token adds a note
(303 back to the list, an absolute URL with the prefix), without it gets 403, the stylesheet
comes from navigator's static files, the WebSocket greets with the tenant's own data, and
tenant alpha's notes and cookies never reach beta."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import request, run_navigator
from tests.integration.frameworks import (
    EXAMPLES,
    Browser,
    example_config,
    example_venv,
    hidden_field,
)

pytestmark = pytest.mark.timeout(300)
APP = EXAMPLES / "fastapi"


@pytest.mark.parametrize("file", ["navigator.yml", "concise.yml"])
def test_fastapi_tenants_through_navigator(tmp_path: Path, file: str) -> None:
    """The same browser walk for the reference-format config and the concise one, which
    leaves the command, prefix handling, cookie scoping and probe to the fastapi preset."""
    venv_bin = example_venv("fastapi")
    config = example_config("fastapi", tmp_path, file)
    env = {"PATH": f"{venv_bin}:{os.environ['PATH']}", "FASTAPI_DATA": str(tmp_path / "data")}
    with run_navigator(config, env=env, cwd=APP) as nav:
        browser = Browser(nav.port)

        page = browser.get("/fastapi/alpha/")
        assert page.status == 200, (page.status, page.body, nav.output()[-3000:])
        assert "Notes of alpha" in page.body
        assert browser.cookie_paths() == {"csrftoken": "/fastapi/alpha"}  # Path=/ rewritten
        assert 'action="/fastapi/alpha/notes"' in page.body  # url_for with the root path
        token = hidden_field(page.body, "csrf_token")

        # A forged POST (no token) is refused; the real form is accepted and redirects.
        assert browser.post_form("/fastapi/alpha/notes", {"body": "forged"}).status == 403
        sent = browser.post_form("/fastapi/alpha/notes",
                                 {"csrf_token": token, "body": "alpha's secret"})
        # The app's redirect is absolute and carries the prefix it knows from its root path.
        assert sent.status == 303
        assert sent.header("Location") == f"http://127.0.0.1:{nav.port}/fastapi/alpha/"
        listed = browser.get("/fastapi/alpha/")
        assert "<li>alpha&#x27;s secret</li>" in listed.body
        assert "forged" not in listed.body

        # The asset the page links to is a static file: navigator answers it.
        assert 'href="/fastapi-assets/app.css"' in listed.body
        css = browser.get("/fastapi-assets/app.css")
        assert css.status == 200
        assert "font:" in css.body
        assert (APP / "public/fastapi-assets/app.css").read_text() == css.body

        # WebSocket through navigator to uvicorn, with the tenant's own data.
        ws = browser.websocket("/fastapi/alpha/ws")
        try:
            assert ws.status == 101, ws.head
            assert ws.receive_json() == {"tenant": "alpha", "notes": 1}
            ws.send_text("hello")
            assert ws.receive_json() == {"tenant": "alpha", "echo": "hello"}
        finally:
            ws.close()

        # Isolation: beta has its own database and does not get alpha's cookie.
        assert browser.cookies_for("/fastapi/beta/") == {}
        beta = browser.get("/fastapi/beta/")
        assert beta.status == 200
        assert "Notes of beta" in beta.body
        assert "alpha" not in beta.body
        assert browser.get("/fastapi/beta/api/notes").body == '{"tenant":"beta","notes":[]}'
        # alpha's token is worthless at beta: beta's form checks beta's cookie.
        assert browser.post_form("/fastapi/beta/notes",
                                 {"csrf_token": token, "body": "x"}).status == 403
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == \
            ["alpha.sqlite3", "beta.sqlite3"]

        # The prefix-less readiness path is only the probe's: navigator routes no tenant there.
        assert request(nav.port, "GET", "/up").status == 404
