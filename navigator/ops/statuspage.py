"""The HTML status page (`server.status_page`), like HAProxy's stats page.

Room: ops. `render_status_page` is PURE: rows and events in, bytes out, every value
escaped (tenant names, paths and stop reasons come from the config and the processes, and
must never become markup). Its rows come from the same place as `navigator status`'s:
the server's own metrics text read back with `ops.status.rows_from_metrics`, so the page
and the command cannot disagree. `RecentEvents` keeps the last process events (starts,
ready, stops with their reason, crashes) that counters alone cannot show.

Invariants:
- the page is bounded: at most `RecentEvents.size` events, one row per tenant;
- no clock is read here: `now` is passed in (the handler reads it once).

Must not touch: routing, auth (routing answers 401 before this is reached).
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from navigator.ops.metrics import parse_samples
from navigator.ops.status import rows_from_metrics
from navigator.tenants.tenantstate import TenantEvents

RECENT_EVENTS = 50
CONTENT_TYPE = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # unix time
    tenant: str
    what: str  # started, ready, stopped, crashed
    detail: str = ""  # stop reason, cold-start time


class RecentEvents:
    """A TenantEvents that remembers the last events and passes each one on (to metrics)."""

    def __init__(self, inner: TenantEvents, clock: Callable[[], float],
                 size: int = RECENT_EVENTS) -> None:
        self._inner = inner
        self._clock = clock  # the wall clock (time.time); injected, so tests need no sleep
        self.events: deque[Event] = deque(maxlen=size)

    def _add(self, tenant: str, what: str, detail: str = "") -> None:
        self.events.append(Event(self._clock(), tenant, what, detail))

    def tenant_started(self, tenant: str) -> None:
        self._add(tenant, "started")
        self._inner.tenant_started(tenant)

    def tenant_ready(self, tenant: str, cold_start: float) -> None:
        self._add(tenant, "ready", f"after {cold_start * 1000:.0f} ms")
        self._inner.tenant_ready(tenant, cold_start)

    def tenant_stopped(self, tenant: str, reason: str) -> None:
        self._add(tenant, "stopped", reason)
        self._inner.tenant_stopped(tenant, reason)

    def tenant_crashed(self, tenant: str) -> None:
        self._add(tenant, "crashed")
        self._inner.tenant_crashed(tenant)


def page_rows(metrics_text: str, now: float) -> list[dict[str, object]]:
    """PURE. The page's rows: `navigator status`'s, from the same metrics text."""
    return rows_from_metrics(parse_samples(metrics_text), now)


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        value = int(value) if value.is_integer() else round(value, 3)
    return html.escape(str(value))


_COLUMNS: Sequence[tuple[str, str]] = (
    ("tenant", "tenant"), ("path", "path"), ("state", "state"), ("pid", "pid"),
    ("port", "port"), ("uptime", "uptime"), ("processes", "processes"), ("busy", "busy"),
    ("queue", "queue"), ("refusals", "503s"), ("recycled", "recycled"),
    ("in_flight", "in flight"), ("requests", "requests"), ("starts", "starts"),
    ("crashes", "crashes"),
    ("last_request", "last request"),
)
_STYLE = ("body{font:13px sans-serif;margin:1em}table{border-collapse:collapse}"
          "th,td{border:1px solid #999;padding:2px 6px;text-align:left}"
          "th{background:#ddd}tr.ready td{background:#cfc}tr.starting td{background:#ffc}"
          "tr.backoff td{background:#fcc}tr.crashed td{background:#fcc}")


def render_status_page(server: Mapping[str, object], rows: Iterable[Mapping[str, object]],
                       events: Iterable[Event], now: float) -> bytes:
    """PURE. The whole page. `server`: a few facts for the heading (pid, version...);
    `rows`: `page_rows`; `events`: oldest first (shown newest first)."""
    facts = " · ".join(f"{html.escape(str(k))} {_cell(v)}" for k, v in server.items())
    out = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
           "<title>navigator status</title>", f"<style>{_STYLE}</style></head><body>",
           f"<h1>navigator</h1><p>{facts}</p>", "<h2>Tenants</h2><table><tr>"]
    out += [f"<th>{title}</th>" for _, title in _COLUMNS]
    out.append("</tr>")
    count = 0
    for row in rows:
        count += 1
        state = str(row.get("state") or "")
        out.append(f"<tr class=\"{html.escape(state)}\">")
        for key, _ in _COLUMNS:
            value = row.get(key)
            text = _duration(value) if key in ("uptime", "last_request") else _cell(value)
            out.append(f"<td>{text}</td>")
        out.append("</tr>")
    if not count:
        out.append(f"<tr><td colspan=\"{len(_COLUMNS)}\">no tenant has been started</td></tr>")
    out.append("</table><h2>Recent process events</h2><table>"
               "<tr><th>when</th><th>tenant</th><th>event</th><th>detail</th></tr>")
    recent = list(events)
    for event in reversed(recent):
        out.append(f"<tr class=\"{html.escape(event.what)}\"><td>"
                   f"{_duration(now - event.at)} ago</td><td>{_cell(event.tenant)}</td>"
                   f"<td>{_cell(event.what)}</td><td>{_cell(event.detail)}</td></tr>")
    if not recent:
        out.append("<tr><td colspan=\"4\">none yet</td></tr>")
    out.append("</table></body></html>\n")
    return "".join(out).encode()
