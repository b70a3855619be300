"""examples/rails through the real navigator, as a browser uses it: three Rails 6.1 tenants
from one directory (each its own PIDFILE by navigator's default, database, secret and session
cookie path), the form with Rails' authenticity token, the stylesheet from navigator's static
files, Action Cable under the tenant's prefix with the allowed origin (and a foreign origin
refused), and nothing of tenant alpha (notes, cookies, a session) valid at beta.

Needs Ruby with Rails 6.1, sqlite3 and puma: Debian's `ruby-rails ruby-sqlite3 puma bundler`
(.ci/run installs them). Without them this skips, or fails under NAVIGATOR_REQUIRE_FRAMEWORKS.
"""

from __future__ import annotations

import http.cookiejar
import json
from pathlib import Path

import pytest

from tests.helpers import run_navigator
from tests.integration.frameworks import (
    EXAMPLES,
    Browser,
    WebSocket,
    example_config,
    hidden_field,
    prepared_rails_app,
)

pytestmark = pytest.mark.timeout(300)
ORIGIN = "http://rails.example.test"
NOTES_CHANNEL = json.dumps({"channel": "NotesChannel"})


def cable_messages(ws: WebSocket, count: int) -> list[dict[str, object]]:
    """The next `count` Action Cable messages, pings left out."""
    found: list[dict[str, object]] = []
    for _ in range(200):
        message = ws.receive_json()
        if message.get("type") != "ping":
            found.append(message)
        if len(found) == count:
            return found
    raise AssertionError(f"only pings after {found}")


def test_rails_tenants_through_navigator(tmp_path: Path) -> None:
    app = prepared_rails_app(tmp_path)
    config = example_config("rails", tmp_path)
    env = {"RAILS_DATA": str(tmp_path / "data"), "RAILS_ALLOWED_ORIGINS": ORIGIN}
    with run_navigator(config, env=env, cwd=app) as nav:
        browser = Browser(nav.port)

        page = browser.get("/rails/alpha/")
        assert page.status == 200, (page.status, nav.output()[-3000:])
        assert "Notes of alpha" in page.body
        assert '<meta name="action-cable-url" content="/rails/alpha/cable" />' in page.body
        assert browser.cookie_paths() == {"_notes_session": "/rails/alpha/"}
        token = hidden_field(page.body, "authenticity_token")

        # Action Cable: the allowed origin subscribes and is greeted with this tenant's data.
        refused = browser.websocket("/rails/alpha/cable", origin="http://evil.example.test",
                                    protocols="actioncable-v1-json")
        assert refused.status != 101, refused.head
        refused.close()
        ws = browser.websocket("/rails/alpha/cable", origin=ORIGIN,
                               protocols="actioncable-v1-json")
        try:
            assert ws.status == 101, ws.head
            assert cable_messages(ws, 1) == [{"type": "welcome"}]
            ws.send_text(json.dumps({"command": "subscribe", "identifier": NOTES_CHANNEL}))
            greeting = cable_messages(ws, 2)
            assert {"identifier": NOTES_CHANNEL, "type": "confirm_subscription"} in greeting
            assert {"identifier": NOTES_CHANNEL,
                    "message": {"tenant": "alpha", "notes": 0}} in greeting

            # Rails' CSRF protection: a POST without the token is refused (422).
            forged = browser.post_form("/rails/alpha/notes", {"note[body]": "forged"})
            assert forged.status == 422, forged.status
            sent = browser.post_form("/rails/alpha/notes", {"authenticity_token": token,
                                                            "note[body]": "alpha's secret"})
            assert sent.status == 303, (sent.status, nav.output()[-3000:])
            assert sent.header("Location") == f"{browser.base}/rails/alpha/"
            # ... and the new note arrives over the cable.
            assert cable_messages(ws, 1) == [{"identifier": NOTES_CHANNEL, "message": {
                "tenant": "alpha", "note": "alpha's secret"}}]
        finally:
            ws.close()

        listed = browser.get("/rails/alpha/")
        assert "<li>alpha&#39;s secret</li>" in listed.body
        assert "You added 1 note in this session." in listed.body
        css = browser.get("/rails-assets/app.css")
        assert css.status == 200
        assert css.body == (EXAMPLES / "rails/public/rails-assets/app.css").read_text()

        # A second tenant from the same directory starts (its own PIDFILE) and shares nothing.
        alpha_session = browser.cookies_for("/rails/alpha/")["_notes_session"]
        assert browser.cookies_for("/rails/beta/") == {}
        beta = browser.get("/rails/beta/")
        assert beta.status == 200, (beta.status, nav.output()[-3000:])
        assert "Notes of beta" in beta.body
        assert "alpha" not in beta.body
        assert "You added 0 notes" in beta.body
        # Even handed alpha's session cookie, beta cannot read it (its own SECRET_KEY_BASE),
        # so it starts a session of its own.
        other = Browser(nav.port)
        other.jar.set_cookie(_cookie("_notes_session", alpha_session, "/rails/beta/"))
        assert other.cookies_for("/rails/beta/") == {"_notes_session": alpha_session}
        replayed = other.get("/rails/beta/")
        assert "You added 0 notes" in replayed.body
        assert other.cookies_for("/rails/beta/")["_notes_session"] != alpha_session
        nav.wait_for_output(r"tenant rails/beta ready on port")
        assert "A server is already running" not in nav.output()
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == \
            ["alpha.sqlite3", "beta.sqlite3"]
        # The pid files are navigator's default, one per tenant (navigator.yml sets none).
        assert sorted(p.name for p in (app / "tmp/pids").iterdir()) == \
            ["rails-alpha.pid", "rails-beta.pid"]


def _cookie(name: str, value: str, path: str) -> http.cookiejar.Cookie:
    """A cookie as a browser would hold it for 127.0.0.1 and `path`."""
    return http.cookiejar.Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, path, True, False, None,
        False, None, None, {})
