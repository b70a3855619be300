"""The HTML status page: rendering (escaped, bounded), recent events, its config and its
place in routing (behind auth, even on a public path)."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import bcrypt
import pytest

from navigator.config import runtime as rt
from navigator.config.loader import ConfigError, load_config
from navigator.ops.metrics import Metrics
from navigator.ops.statuspage import Event, RecentEvents, page_rows, render_status_page
from navigator.tenants.tenantstate import NoEvents
from navigator.web.decision import RequestInfo, Respond, ServeStatusPage
from navigator.web.routing import route
from navigator.web.snapshot import build_snapshot


def test_page_shows_rows_and_events_escaped() -> None:
    rows = [{"tenant": "<script>x</script>", "path": "/a&b/", "state": "ready", "pid": 42,
             "port": "4001", "uptime": 3725.0, "in_flight": 1, "requests": 7, "starts": 2,
             "crashes": 0, "last_request": 5.0}]
    events = [Event(900.0, "a", "started"), Event(990.0, "a", "stopped", "idle<br>")]
    page = render_status_page({"pid": 1, "config": "/etc/<n>.yml"}, rows, events, 1000.0)
    text = page.decode()
    assert "<script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    assert "/a&amp;b/" in text
    assert "/etc/&lt;n&gt;.yml" in text
    assert "idle&lt;br&gt;" in text
    assert '<tr class="ready"><td>&lt;script&gt;' in text
    for cell in ("<td>42</td>", "<td>4001</td>", "<td>1h02m</td>", "<td>7</td>",
                 "<td>2</td>", "<td>0</td>", "<td>5s</td>"):
        assert cell in text
    assert text.index("10s ago") < text.index("1m40s ago")  # newest first


def test_empty_page_says_so() -> None:
    text = render_status_page({}, [], [], 0.0).decode()
    assert "no tenant has been started" in text
    assert "none yet" in text


def test_recent_events_are_bounded_and_passed_on() -> None:
    metrics = Metrics()
    clock = iter(float(n) for n in range(100))
    recent = RecentEvents(metrics, lambda: next(clock), size=3)
    recent.tenant_started("a")
    recent.tenant_ready("a", 0.25)
    recent.tenant_stopped("a", "idle")
    recent.tenant_crashed("b")
    assert [(e.at, e.tenant, e.what, e.detail) for e in recent.events] == [
        (1.0, "a", "ready", "after 250 ms"), (2.0, "a", "stopped", "idle"),
        (3.0, "b", "crashed", "")]
    rows = page_rows(metrics.render().decode(), 10.0)  # the metrics saw every event
    assert {r["tenant"]: (r.get("starts"), r.get("crashes")) for r in rows} == {
        "a": (1, None), "b": (None, 1)}
    RecentEvents(NoEvents(), lambda: 0.0).tenant_started("x")  # any TenantEvents inside


def load(tmp_path: Path, text: str) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, {}, cwd=tmp_path)


@pytest.mark.parametrize(("server", "message"), [
    ("status_page: {path: /status}", "status page needs auth"),
    ("status_page: {path: status, without_auth: true}", "starting with '/'"),
])
def test_status_page_config_errors(tmp_path: Path, server: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, f"server:\n  {server}\n")
    assert "server.status_page.path" in str(info.value)


def protected(tmp_path: Path) -> rt.Config:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("admin:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    return load(tmp_path, f"""
        server:
          status_page: {{path: /navigator/status}}
        auth:
          enabled: true
          htpasswd: {htpasswd}
          public_paths: [/navigator/]
    """)


def req(path: str, authorization: str | None = None, method: str = "GET") -> RequestInfo:
    return RequestInfo(method=method, path=path, query="", host="h", peer_ip="203.0.113.1",
                       authorization=authorization)


def test_status_page_is_behind_auth_even_on_a_public_path(tmp_path: Path) -> None:
    snapshot = build_snapshot(protected(tmp_path))
    anonymous = route(snapshot, req("/navigator/status"))
    assert isinstance(anonymous, Respond)
    assert anonymous.status == 401
    login = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert route(snapshot, req("/navigator/status", login)) == ServeStatusPage()
    assert route(snapshot, req("/navigator/status", login, "HEAD")) == ServeStatusPage()
    assert route(snapshot, req("/navigator/status", login, "POST")) != ServeStatusPage()


def test_status_page_without_auth_when_allowed(tmp_path: Path) -> None:
    config = load(tmp_path, "server:\n  status_page: {path: /s, without_auth: true}\n")
    assert route(build_snapshot(config), req("/s")) == ServeStatusPage()
