"""Prometheus metrics: a tiny registry and navigator's series, plus the status table.

Room: ops. Counters/gauges/histograms are plain dicts keyed by the tuple of label values;
`inc()`/`observe()` are a dict lookup and an add (histograms scan precomputed bounds), so
the protocol can call them once per request. `render()` builds the text exposition format
0.0.4 only when scraped. No runtime dependency (prometheus_client is used by tests only).

Invariants:
- every metric has a fixed tuple of label names; callers pass values in that order;
- values are only changed from the event-loop thread (no locks: a scrape and an update
  never interleave on one thread);
- render order is declaration order, samples in first-seen order;
- gauges with a callback are evaluated at render time only.

Must not touch: sockets, processes, the clock (durations are measured by callers),
`os.environ`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeVar

LabelValues = tuple[str, ...]
GaugeSource = Callable[[], Iterable[tuple[LabelValues, float]]]

REQUEST_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
COLD_START_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
)
# supervisor.TenantState values, so every tenant shows one series per state
TENANT_STATES: tuple[str, ...] = ("stopped", "starting", "ready", "draining", "stopping",
                                  "backoff")
STATUS_CLASSES: Final[tuple[str, ...]] = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape_label(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError

    def _check(self, values: LabelValues) -> None:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")


class Counter(_Metric):
    """Monotonic counter; `inc("tenant-a", "2xx")` passes label values in declared order."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        values = self._values
        current = values.get(labels)
        if current is None:
            self._check(labels)
            current = 0.0
        values[labels] = current + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def cells(self) -> dict[LabelValues, float]:
        """The values by label tuple, for a caller that adds to fixed keys per event and
        builds each key once (see RequestSeries). It must add only, keys of the declared
        length."""
        return self._values

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, key)} {format_value(value)}"
                for key, value in self._values.items()]


class Gauge(_Metric):
    """A value that goes up and down, or is read from a callback at render time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 source: GaugeSource | None = None) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {} if labelnames else {(): 0.0}
        self._source = source

    def set(self, value: float, *labels: str) -> None:
        if labels not in self._values:
            self._check(labels)
        self._values[labels] = float(value)

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.set(self._values.get(labels, 0.0) + amount, *labels)

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.set(self._values.get(labels, 0.0) - amount, *labels)

    def set_source(self, source: GaugeSource | None) -> None:
        """Read `(label values, value)` pairs from `source` at render time instead."""
        self._source = source

    def set_function(self, read: Callable[[], float]) -> None:
        """An unlabelled gauge read from `read()` at render time (a length, a phase)."""
        self.set_source(lambda: (((), float(read())),))

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def samples(self) -> list[str]:
        if self._source is None:
            items: Iterable[tuple[LabelValues, float]] = self._values.items()
        else:
            items = list(self._source())
            for key, _ in items:
                self._check(key)
        return [f"{self.name}{_labels(self.labelnames, key)} {format_value(value)}"
                for key, value in items]


class SourcedCounter(Gauge):
    """A counter whose values are kept by their owner (a log writer counts its own dropped
    lines) and read at render time: `set_source` as for a gauge, exposed as a counter."""

    kind = "counter"


def _bucket(bounds: tuple[float, ...], value: float) -> int:
    """bisect_left(bounds, value) as a compiled loop: request durations fall in the first
    few buckets, and C bisect compares through PyObject_RichCompare at each step."""
    for index, bound in enumerate(bounds):
        if value <= bound:
            return index
    return len(bounds)


class Histogram(_Metric):
    """Cumulative buckets on fixed upper bounds; `observe(0.2, "tenant-a")`."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = REQUEST_BUCKETS) -> None:
        super().__init__(name, help_text, labelnames)
        if "le" in self.labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        bounds = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))
        self.bounds = bounds
        self._les = (*(format_value(b) if b != int(b) else f"{b:.1f}" for b in bounds), "+Inf")
        # per label set: [count per bucket (last = +Inf)..., sum]; count = sum of buckets
        self._series: dict[LabelValues, list[float]] = {}

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.get(labels)
        if series is None:
            self._check(labels)
            series = self._series[labels] = [0.0] * (len(self.bounds) + 2)
        series[_bucket(self.bounds, value)] += 1
        series[-1] += value

    def series(self, *labels: str) -> list[float]:
        """The bucket counts and sum of one label set (created empty on first use), for a
        caller that observes into it directly (see RequestSeries)."""
        series = self._series.get(labels)
        if series is None:
            self._check(labels)
            series = self._series[labels] = [0.0] * (len(self.bounds) + 2)
        return series

    def count(self, *labels: str) -> int:
        series = self._series.get(labels)
        return int(sum(series[:-1])) if series else 0

    def samples(self) -> list[str]:
        lines: list[str] = []
        for key, series in self._series.items():
            cumulative = 0.0
            for le, hits in zip(self._les, series[:-1], strict=True):
                cumulative += hits
                labels = _labels(self.labelnames, key, f'le="{le}"')
                lines.append(f"{self.name}_bucket{labels} {format_value(cumulative)}")
            plain = _labels(self.labelnames, key)
            lines.append(f"{self.name}_sum{plain} {format_value(series[-1])}")
            lines.append(f"{self.name}_count{plain} {format_value(cumulative)}")
        return lines


class RequestSeries:
    """One tenant's request counter cells and duration histogram, found once per request by
    the tenant's name: the label tuples are built when the tenant is first seen, not per
    request (a tuple per call and two hashes of it were most of `request_done`)."""

    __slots__ = ("_bounds", "_counts", "_durations", "_keys")

    def __init__(self, requests: Counter, durations: Histogram, tenant: str) -> None:
        requests._check((tenant, ""))
        self._counts = requests.cells()
        # LabelValues (variable length), not tuple[str, str]: compiled, a fixed-length tuple
        # is an unboxed struct and each use as a dict key would build a new tuple object.
        self._keys: tuple[LabelValues, ...] = tuple((tenant, klass) for klass in STATUS_CLASSES)
        self._durations = durations.series(tenant)
        self._bounds = durations.bounds

    def add(self, status: int, duration: float) -> None:
        key = self._keys[status // 100 if 0 <= status < 600 else 0]
        counts = self._counts
        counts[key] = counts.get(key, 0.0) + 1.0
        durations = self._durations
        durations[_bucket(self._bounds, duration)] += 1
        durations[-1] += duration


_M = TypeVar("_M", bound=_Metric)


class Registry:
    """Metrics in declaration order; `render()` is the scrape body."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def register(self, metric: _M) -> _M:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"duplicate metric {metric.name}")
        self._metrics.append(metric)
        return metric

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in self._metrics:
            lines.extend(metric.header())
            lines.extend(metric.samples())
        return ("\n".join(lines) + "\n").encode()


# Per-tenant process pool series (issue 17), fed from `Supervisor.status()` row keys.
POOL_GAUGES = (
    ("processes", "navigator_tenant_processes", "Processes the tenant runs now."),
    ("busy", "navigator_tenant_busy_processes", "Ready processes with requests in flight."),
    ("idle", "navigator_tenant_idle_processes", "Ready processes with nothing in flight."),
    ("queue", "navigator_tenant_queue_length", "Requests waiting for a process slot."),
)
POOL_COUNTERS = (
    ("queued_total", "navigator_tenant_queued_total", "Requests that had to wait for a slot."),
    ("queue_wait_total", "navigator_tenant_queue_wait_seconds_total",
     "Seconds requests waited for a slot, summed (divide by queued_total for the mean)."),
    ("refused", "navigator_tenant_queue_full_total",
     "Requests answered 503 at once because the tenant's queue was full."),
    ("timed_out", "navigator_tenant_queue_timeouts_total",
     "Requests answered 503 after waiting queue_timeout for a slot."),
    ("recycled", "navigator_tenant_recycles_total",
     "Processes replaced (max_requests, memory_soft_limit, rolling restart, reload)."),
)


def _column_rows(current: Callable[[], list[Mapping[str, object]]],
                 key: str) -> Callable[[], Iterable[tuple[LabelValues, float]]]:
    """One numeric column of the tenant rows as a gauge source (a closure of its own: mypyc
    cannot compile a generator nested two functions deep)."""

    def rows() -> Iterable[tuple[LabelValues, float]]:
        for row in current():
            value = row.get(key)
            if isinstance(value, int | float):
                yield (str(row["name"]),), float(value)
    return rows


class Metrics:
    """Navigator's series. The protocol calls `request_done`; the supervisor the tenant
    lifecycle methods; `server` sets the gauges (or gives sources) and serves `render()`."""

    def __init__(self, tenant_states: Callable[[], Mapping[str, str]] | None = None) -> None:
        self.registry = registry = Registry()
        self.requests = registry.register(Counter(
            "navigator_requests_total", "Requests answered, by tenant and status class.",
            ("tenant", "status_class")))
        self.request_duration = registry.register(Histogram(
            "navigator_request_duration_seconds", "Time from request head to last byte sent.",
            ("tenant",), REQUEST_BUCKETS))
        self._request_series: dict[str, RequestSeries] = {}  # by tenant name
        self.tenant_starts = registry.register(Counter(
            "navigator_tenant_starts_total", "Tenant processes started.", ("tenant",)))
        self.tenant_stops = registry.register(Counter(
            "navigator_tenant_stops_total", "Tenant processes stopped, by reason.",
            ("tenant", "reason")))
        self.tenant_crashes = registry.register(Counter(
            "navigator_tenant_crashes_total", "Tenant processes that exited unexpectedly.",
            ("tenant",)))
        self.cold_start = registry.register(Histogram(
            "navigator_cold_start_seconds",
            "Time from the request that started a tenant to its readiness probe answering.",
            ("tenant",), COLD_START_BUCKETS))
        self.tenant_state = registry.register(Gauge(
            "navigator_tenant_state", "1 for the state each tenant is in, 0 for the others.",
            ("tenant", "state")))
        self.open_connections = registry.register(Gauge(
            "navigator_open_connections", "Client connections currently open."))
        self.open_websockets = registry.register(Gauge(
            "navigator_open_websockets", "WebSocket tunnels currently open."))
        self.machine_idle = registry.register(Gauge(
            "navigator_machine_idle",
            "1 while the machine idle sequence runs or the machine is suspended."))
        self.machine_starts = registry.register(Counter(
            "navigator_machine_starts_total", "Start calls for another machine before a "
            "replay (stamps.machine_start), by machine and Machines API result.",
            ("machine", "result")))
        self.config_reloads = registry.register(Counter(
            "navigator_config_reloads_total", "Configuration reloads, by result.", ("result",)))
        self.tenant_info = registry.register(Gauge(
            "navigator_tenant_info", "1 per tenant, with its path and the pid and port of its "
            "process (empty while none runs).",
            ("tenant", "path", "pid", "port")))
        self.tenant_started_at = registry.register(Gauge(
            "navigator_tenant_started_timestamp_seconds",
            "Unix time the running tenant process was spawned.", ("tenant",)))
        self.tenant_last_request = registry.register(Gauge(
            "navigator_tenant_last_request_timestamp_seconds",
            "Unix time the tenant last finished a request.", ("tenant",)))
        self.tenant_in_flight = registry.register(Gauge(
            "navigator_tenant_in_flight_requests", "Requests the tenant is answering now.",
            ("tenant",)))
        self.pool_gauges = {key: registry.register(Gauge(name, text, ("tenant",)))
                            for key, name, text in POOL_GAUGES}
        self.pool_counters = {key: registry.register(SourcedCounter(name, text, ("tenant",)))
                              for key, name, text in POOL_COUNTERS}
        self.log_lines_dropped = registry.register(SourcedCounter(
            "navigator_log_lines_dropped_total",
            "Log lines dropped because their destination could not take them (a stalled "
            "stdout pipe, a full disk, Vector down), by destination.", ("destination",)))
        if tenant_states is not None:
            self.set_tenant_states(tenant_states)

    def set_tenant_rows(self, source: Callable[[], Iterable[Mapping[str, object]]]) -> None:
        """Feed every per-tenant gauge from `source()` (rows as `Supervisor.status()` gives:
        name, path, state, pid, port, started_at, last_request, in_flight, retired) at
        each scrape. Retired definitions (draining after a reload) are left out."""

        def current() -> list[Mapping[str, object]]:
            return [row for row in source() if not row.get("retired")]

        def info() -> Iterable[tuple[LabelValues, float]]:
            # every tenant, stopped ones too: `navigator status` shows their path from here
            for row in current():
                pid = row.get("pid")
                yield (str(row["name"]), str(row.get("path", "")),
                       "" if pid is None else str(pid), str(row.get("port") or "")), 1.0

        self.set_tenant_states(lambda: {str(row["name"]): str(row["state"])
                                        for row in current()})
        self.tenant_info.set_source(info)
        self.tenant_started_at.set_source(_column_rows(current, "started_at"))
        self.tenant_last_request.set_source(_column_rows(current, "last_request"))
        self.tenant_in_flight.set_source(_column_rows(current, "in_flight"))
        for key, gauge in (*self.pool_gauges.items(), *self.pool_counters.items()):
            gauge.set_source(_column_rows(current, key))

    def set_tenant_states(self, source: Callable[[], Mapping[str, str]]) -> None:
        """`source()` maps tenant name -> state, read at every scrape."""

        def rows() -> Iterable[tuple[LabelValues, float]]:
            for tenant, current in source().items():
                states = TENANT_STATES if current in TENANT_STATES else (*TENANT_STATES, current)
                for state in states:
                    yield (tenant, state), 1.0 if state == current else 0.0

        self.tenant_state.set_source(rows)

    def request_done(self, tenant: str, status: int, duration: float) -> None:
        """Once per finished request; `tenant` is "" for non-tenant traffic."""
        series = self._request_series.get(tenant)
        if series is None:
            series = self._request_series[tenant] = RequestSeries(
                self.requests, self.request_duration, tenant)
        series.add(status, duration)

    # The supervisor's TenantEvents: once per process event, never per request.
    def tenant_started(self, tenant: str) -> None:
        """A tenant process was spawned."""
        self.tenant_starts.inc(tenant)

    def tenant_ready(self, tenant: str, cold_start: float) -> None:
        """It answered its readiness probe `cold_start` seconds after the first request."""
        self.cold_start.observe(cold_start, tenant)

    def tenant_stopped(self, tenant: str, reason: str) -> None:
        """An exit navigator asked for; `reason`: idle, reload, shutdown, evicted,
        not_ready, other. Unexpected exits are crashes, counted apart."""
        self.tenant_stops.inc(tenant, reason)

    def tenant_crashed(self, tenant: str) -> None:
        """An exit nobody asked for (killed, crashed, exited during startup)."""
        self.tenant_crashes.inc(tenant)

    def config_reloaded(self, ok: bool) -> None:
        self.config_reloads.inc("success" if ok else "failure")

    def render(self) -> bytes:
        return self.registry.render()


# ---------------------------------------------------------------------------- reading back

_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)\Z')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
_ESCAPED = re.compile(r"\\.")
_UNESCAPE = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


def _unescape(found: re.Match[str]) -> str:
    return _UNESCAPE.get(found.group(), found.group()[1])


def parse_samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for each sample line of the text format that `render()`
    writes; `navigator status` reads the server's own scrape with it (no client library)."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = _SAMPLE.match(line)
        if found is None:
            continue
        name, labels, value = found.groups()
        pairs = {key: _ESCAPED.sub(_unescape, raw)
                 for key, raw in _LABEL.findall(labels or "")}
        yield name, pairs, float(value)


# ---------------------------------------------------------------------------- status table

STATUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant", "TENANT"), ("path", "PATH"), ("state", "STATE"), ("pid", "PID"), ("port", "PORT"),
    ("uptime", "UPTIME"), ("memory", "MEMORY"), ("last_request", "LAST REQUEST"),
    ("processes", "PROCS"), ("busy", "BUSY"), ("queue", "QUEUE"), ("refusals", "503S"),
    ("recycled", "RECYCLED"),
)


def format_duration(seconds: float) -> str:
    """Compact age: `45s`, `3m05s`, `2h07m`, `4d03h`."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_bytes(size: float) -> str:
    """`512B`, `12.3KiB`, `140.0MiB`, `1.2GiB`."""
    if size < 1024:
        return f"{int(size)}B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GiB"


def _cell(key: str, value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if key == "uptime":
            return format_duration(value)
        if key == "last_request":
            return f"{format_duration(value)} ago"
        if key == "memory":
            return format_bytes(value)
        return format_value(value)
    return str(value)


def format_status_table(status_rows: list[dict[str, object]]) -> str:
    """Aligned table for `navigator status`.

    Row keys: `tenant`, `state`, `pid`, `port`, `uptime` (seconds), `memory` (bytes RSS),
    `last_request` (seconds since the last request). Missing/None values show `-`; strings
    are printed as given (already formatted)."""
    table = [[title for _, title in STATUS_COLUMNS]]
    table.extend([_cell(key, row.get(key)) for key, _ in STATUS_COLUMNS] for row in status_rows)
    widths = [max(len(line[i]) for line in table) for i in range(len(STATUS_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                      strict=True)).rstrip()
                     for line in table) + "\n"
