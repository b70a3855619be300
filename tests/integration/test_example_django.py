"""examples/django through the real navigator, as a browser uses it: gunicorn strips the
SCRIPT_NAME navigator puts in the tenant env (`script_name`), Django's CSRF middleware guards
the form, navigator scopes the session and CSRF cookies (Django's Path=/) to the tenant's
prefix (`scope_cookies`), the stylesheet (STATIC_URL) is one of
navigator's static files, the before_start hook migrated each tenant's own sqlite file, and
nothing of tenant alpha (notes, cookies, session) reaches beta."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import run_navigator
from tests.integration.frameworks import (
    EXAMPLES,
    Browser,
    example_config,
    example_venv,
    hidden_field,
)

pytestmark = pytest.mark.timeout(300)
APP = EXAMPLES / "django"


@pytest.mark.parametrize("file", ["navigator.yml", "concise.yml"])
def test_django_tenants_through_navigator(tmp_path: Path, file: str) -> None:
    """The same browser walk for the reference-format config and the concise one, which
    leaves the command, prefix handling, cookie scoping and probe to the django preset."""
    venv_bin = example_venv("django")
    config = example_config("django", tmp_path, file)
    env = {"PATH": f"{venv_bin}:{os.environ['PATH']}", "DJANGO_DATA": str(tmp_path / "data")}
    with run_navigator(config, env=env, cwd=APP) as nav:
        browser = Browser(nav.port)

        page = browser.get("/django/alpha/")
        assert page.status == 200, (page.status, nav.output()[-3000:])
        assert "Notes of alpha" in page.body
        assert 'action="/django/alpha/notes"' in page.body  # reverse() puts SCRIPT_NAME back
        assert browser.cookie_paths() == {"csrftoken": "/django/alpha"}  # Path=/ rewritten
        token = hidden_field(page.body, "csrfmiddlewaretoken")

        # Django's CSRF check: without the token 403, with it the note is stored.
        assert browser.post_form("/django/alpha/notes", {"body": "forged"}).status == 403
        sent = browser.post_form("/django/alpha/notes",
                                 {"csrfmiddlewaretoken": token, "body": "alpha's secret"})
        assert (sent.status, sent.header("Location")) == (302, "/django/alpha/")
        assert browser.cookie_paths() == {"csrftoken": "/django/alpha",
                                          "sessionid": "/django/alpha"}
        alpha_session = browser.cookies_for("/django/alpha/")["sessionid"]
        listed = browser.get("/django/alpha/")
        assert "<li>alpha&#x27;s secret</li>" in listed.body
        assert "You added 1 note in this session." in listed.body
        assert "forged" not in listed.body

        css = browser.get("/django-assets/app.css")
        assert 'href="/django-assets/app.css"' in listed.body
        assert css.status == 200
        assert css.body == (APP / "public/django-assets/app.css").read_text()

        # Isolation: beta gets none of alpha's cookies, its own database, its own session.
        assert browser.cookies_for("/django/beta/") == {}
        beta = browser.get("/django/beta/")
        assert beta.status == 200
        assert "Notes of beta" in beta.body
        assert "alpha" not in beta.body
        assert "You added 0 notes" in beta.body
        assert browser.get("/django/beta/api/notes").body == '{"tenant": "beta", "notes": []}'
        # alpha's CSRF token does not pass beta's check (beta's own cookie, beta's own key).
        beta_token = hidden_field(beta.body, "csrfmiddlewaretoken")
        assert beta_token != token
        assert browser.post_form("/django/beta/notes",
                                 {"csrfmiddlewaretoken": token, "body": "x"}).status == 403
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == \
            ["alpha.sqlite3", "beta.sqlite3"]
        # beta's own session (a note added there) leaves alpha's session as it was.
        posted = browser.post_form("/django/beta/notes",
                                   {"csrfmiddlewaretoken": beta_token, "body": "at beta"})
        assert posted.status == 302
        assert browser.cookies_for("/django/alpha/")["sessionid"] == alpha_session
        assert "You added 1 note in this session." in browser.get("/django/alpha/").body

        # The readiness probe asked under the prefix (the tenant's health_check), so gunicorn
        # never logged the 500 an unprefixed /up gets from it.
        nav.wait_for_output(r"tenant django/beta ready on port")
        assert "does not start with SCRIPT_NAME" not in nav.output()


def test_django_default_cookie_path_leaks_between_tenants(tmp_path: Path) -> None:
    """Why the example sets `scope_cookies`: the same example with the option off (the
    reference's behaviour, Set-Cookie passed through unchanged) and Django's default Path=/.
    Alpha's cookies reach beta, beta accepts alpha's CSRF token, and beta's session cookie
    replaces alpha's: alpha's session is gone. (The test above shows the option fixes it.)"""
    venv_bin = example_venv("django")
    config = example_config("django", tmp_path)
    text = config.read_text()
    assert "  scope_cookies: true\n" in text
    config.write_text(text.replace("  scope_cookies: true\n", "  scope_cookies: false\n"))
    env = {"PATH": f"{venv_bin}:{os.environ['PATH']}", "DJANGO_DATA": str(tmp_path / "data")}
    with run_navigator(config, env=env, cwd=APP) as nav:
        browser = Browser(nav.port)
        alpha = browser.get("/django/alpha/")
        assert alpha.status == 200, nav.output()[-3000:]
        assert browser.cookie_paths() == {"csrftoken": "/"}
        token = hidden_field(alpha.body, "csrfmiddlewaretoken")
        added = browser.post_form("/django/alpha/notes",
                                  {"csrfmiddlewaretoken": token, "body": "at alpha"})
        assert added.status == 302
        alpha_session = browser.cookies_for("/django/alpha/")["sessionid"]
        assert "You added 1 note" in browser.get("/django/alpha/").body

        # Everything alpha set is sent to beta, and alpha's CSRF token passes beta's check.
        assert browser.cookies_for("/django/beta/") == browser.cookies_for("/django/alpha/")
        beta = browser.get("/django/beta/")
        assert "You added 0 notes" in beta.body  # alpha's session id means nothing to beta
        posted = browser.post_form("/django/beta/notes",
                                   {"csrfmiddlewaretoken": token, "body": "at beta"})
        assert posted.status == 302

        # Beta's new session cookie (same name, same Path=/) replaced alpha's.
        assert browser.cookies_for("/django/alpha/")["sessionid"] != alpha_session
        assert "You added 0 notes" in browser.get("/django/alpha/").body
