"""The htpasswd file through the real server: edits take effect without a reload (issue 22
item 2). The reference re-read the file only after some login failed, so a removed user kept
getting 200 from the credential cache until an unrelated bad login happened."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import Navigator, request, run_navigator, wait_until

DEADLINE = 10.0  # the server re-reads within about a second; generous for a loaded machine


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def entry(user: str, password: str) -> str:
    return f"{user}:{{SHA}}{base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()}"


@dataclass
class Site:
    nav: Navigator
    htpasswd: Path

    def status(self, user: str, password: str) -> int:
        return request(self.nav.port, "GET", "/page.txt", headers=basic(user, password)).status

    def becomes(self, user: str, password: str, status: int) -> None:
        wait_until(lambda: self.status(user, password) == status, DEADLINE, interval=0.05,
                   message=f"{user} to get {status}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    public = tmp_path / "public"
    public.mkdir()
    (public / "page.txt").write_text("members only")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(entry("alice", "wonder") + "\n" + entry("bob", "builder") + "\n")
    config = tmp_path / "navigator.yml"
    config.write_text(f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  static:
    public_dir: {public}
auth:
  enabled: true
  htpasswd: {htpasswd}
""")
    with run_navigator(config) as nav:
        yield Site(nav, htpasswd)


def test_removed_user_is_refused_without_a_reload(site: Site) -> None:
    assert site.status("alice", "wonder") == 200  # now in the credential cache
    site.htpasswd.write_text(entry("bob", "builder") + "\n")
    site.becomes("alice", "wonder", 401)
    assert site.status("bob", "builder") == 200


def test_changed_password_old_refused_new_accepted(site: Site) -> None:
    assert site.status("bob", "builder") == 200
    site.htpasswd.write_text(entry("alice", "wonder") + "\n" + entry("bob", "rebuilt") + "\n")
    site.becomes("bob", "builder", 401)
    assert site.status("bob", "rebuilt") == 200
    assert site.status("alice", "wonder") == 200


def test_file_replaced_by_rename(site: Site) -> None:
    assert site.status("alice", "wonder") == 200
    fresh = site.htpasswd.with_name("htpasswd.new")
    fresh.write_text(entry("carol", "sings") + "\n")
    os.replace(fresh, site.htpasswd)
    site.becomes("alice", "wonder", 401)
    assert site.status("carol", "sings") == 200


def test_missing_or_broken_file_keeps_the_last_good_users(site: Site) -> None:
    assert site.status("alice", "wonder") == 200
    site.htpasswd.unlink()
    site.nav.wait_for_output(r"htpasswd file .* cannot be read .*keeping the previous 2 users",
                             DEADLINE)
    assert site.status("alice", "wonder") == 200
    assert site.status("bob", "builder") == 200
    site.htpasswd.write_text("garbage without any colon\n")
    site.nav.wait_for_output(r"htpasswd file .* has no user:hash line", DEADLINE)
    assert site.status("alice", "wonder") == 200
    site.htpasswd.write_text(entry("bob", "builder") + "\n")  # fixed: adopted again
    site.becomes("alice", "wonder", 401)
    assert site.status("bob", "builder") == 200
    assert "garbage" not in site.nav.output()
