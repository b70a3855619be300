"""Hard memory limits for tenant processes: cgroup v1 and v2.

Room: supervisor I/O helper (files under /sys/fs/cgroup), with its decisions pure: which
hierarchy holds the memory controller and where navigator's groups go (`find_layout`, from
the texts of /proc/self/mountinfo and /proc/self/cgroup), and reading the counters
(`flat_value`). `MemoryCgroup.create` makes one group per spawned process; the child joins
it between fork and exec (`join_function`), so not one page is allocated outside it.

Layout (the reference's `navigator/<name>`, made safe to share a host):
- v2 (unified hierarchy with the `memory` controller): `<mount>/navigator/<name>.<id>` with
  `memory.max` (and `memory.swap.max` 0 where present), `+memory` enabled in the
  `cgroup.subtree_control` of the mount root and of `navigator`. Counters: `memory.events`
  `oom_kill`, `memory.current`, `memory.peak`;
- v1 (a `memory` hierarchy): `<mount>/<navigator's own group>/navigator/<name>.<id>` with
  `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where present, so the limit
  cannot be dodged by swapping). Nested under navigator's own group, so a container's limit
  still applies above ours. Counters: `memory.oom_control` `oom_kill`,
  `memory.usage_in_bytes`, `memory.max_usage_in_bytes`;
- a hybrid host (v1 controllers plus an empty unified mount) uses v1: only the hierarchy
  that has the memory controller can limit memory.

Invariants:
- `<id>` is random per group: two navigators on one host, or a tenant's old and new process
  during a reload, never share a group (removing one kills that group's members only);
- removing a group kills what is left in it, then removes the directory; already gone is
  not an error;
- anything unavailable raises OSError from `create`; the caller logs once and runs the
  tenant without a limit.

Must not touch: tenant state, routing, configuration objects.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GROUP = "navigator"
_UNSAFE = re.compile(r'[/\\:*?"<>|]')


@dataclass(frozen=True, slots=True)
class Files:
    """The file names one cgroup version uses for a memory limit and its counters."""

    limit: str
    swap_limit: str  # "" = none
    swap_value: str  # what to write there: "0" (v2) or the limit again (v1, mem+swap)
    events: str
    oom_key: str
    current: str
    peak: str


V1 = Files("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "limit",
           "memory.oom_control", "oom_kill", "memory.usage_in_bytes",
           "memory.max_usage_in_bytes")
V2 = Files("memory.max", "memory.swap.max", "0", "memory.events", "oom_kill",
           "memory.current", "memory.peak")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where navigator's memory groups live: `parent` is the `navigator` directory;
    `enable` lists (v2 only) the directories whose subtree_control needs `+memory`."""

    version: int
    parent: Path
    enable: tuple[Path, ...] = ()

    @property
    def files(self) -> Files:
        return V2 if self.version == 2 else V1


def cgroup_name(name: str) -> str:
    """Reference 10.9: `/ \\ : * ? " < > |` → `_`; empty → `app`."""
    return _UNSAFE.sub("_", name) or "app"


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def find_layout(mountinfo: str, own_cgroups: str,
                v2_controllers: Callable[[Path], str]) -> Layout | None:
    """The hierarchy that can limit memory, or None.

    `mountinfo` is /proc/self/mountinfo, `own_cgroups` /proc/self/cgroup;
    `v2_controllers(mount)` returns the text of `<mount>/cgroup.controllers` ("" when
    unreadable). A unified hierarchy with `memory` wins; else the v1 `memory` hierarchy."""
    v1_mount: tuple[Path, str] | None = None
    v2_mount: Path | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) < 3:
            continue
        fstype, options = after[0], after[2].split(",")
        mount, root = Path(_unescape(fields[4])), _unescape(fields[3])
        if fstype == "cgroup2" and v2_mount is None:
            v2_mount = mount
        elif fstype == "cgroup" and "memory" in options and v1_mount is None:
            v1_mount = (mount, root)
    if v2_mount is not None and "memory" in v2_controllers(v2_mount).split():
        parent = v2_mount / GROUP
        return Layout(2, parent, (v2_mount, parent))
    if v1_mount is not None:
        mount, root = v1_mount
        own = own_group(own_cgroups, "memory")
        if own is None:
            return None
        inside = own[len(root):] if root != "/" and own.startswith(root) else own
        return Layout(1, mount.joinpath(*(p for p in inside.split("/") if p)) / GROUP)
    return None


def own_group(own_cgroups: str, controller: str) -> str | None:
    """The path of our group in the v1 hierarchy holding `controller` (from
    /proc/self/cgroup lines `id:controllers:path`); None when there is none."""
    for line in own_cgroups.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return parts[2]
    return None


def flat_value(text: str, key: str = "") -> int:
    """A counter from a cgroup file: the whole file as an integer (no `key`) or the value of
    `key` in a flat keyed file (`oom_kill 3`); 0 when absent or unreadable ("max" too)."""
    if not key:
        value = text.strip()
        return int(value) if value.isdigit() else 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def write_limit(group: Path, files: Files, limit: int) -> None:
    """The hard limit, and the swap limit where the kernel offers one (a v1 mem+swap limit
    must be written after the memory limit: it may never be below it)."""
    (group / files.limit).write_text(str(limit))
    swap = group / files.swap_limit
    if files.swap_limit and swap.exists():
        swap.write_text(str(limit) if files.swap_value == "limit" else files.swap_value)


def detect() -> Layout | None:
    """This machine's layout (reads /proc/self)."""
    def controllers(mount: Path) -> str:
        return _read(mount / "cgroup.controllers")

    return find_layout(_read(Path("/proc/self/mountinfo")), _read(Path("/proc/self/cgroup")),
                       controllers)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class MemoryCgroup:
    """One group with a hard memory limit; OOM kills counted from its creation."""

    __slots__ = ("files", "oom_kills_at_start", "path")

    def __init__(self, path: Path, files: Files) -> None:
        self.path = path
        self.files = files
        self.oom_kills_at_start = self.oom_kills()

    @classmethod
    def create(cls, name: str, limit: int, layout: Layout | None = None) -> MemoryCgroup:
        """Raises OSError when no hierarchy with the memory controller can be written."""
        layout = layout or detect()
        if layout is None:
            raise OSError("no cgroup hierarchy with the memory controller")
        layout.parent.mkdir(exist_ok=True)
        for level in layout.enable:
            control = level / "cgroup.subtree_control"
            if "memory" not in control.read_text().split():
                control.write_text("+memory")
        group = layout.parent / f"{cgroup_name(name)}.{secrets.token_hex(4)}"
        group.mkdir()
        try:
            write_limit(group, layout.files, limit)
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            raise
        return cls(group, layout.files)

    def join_function(self) -> Callable[[], None]:
        procs_path = str(self.path / "cgroup.procs")

        def join() -> None:  # runs in the child between fork and exec
            with open(procs_path, "w") as handle:
                handle.write(str(os.getpid()))

        return join

    def oom_kills(self) -> int:
        return flat_value(_read(self.path / self.files.events), self.files.oom_key)

    def oom_killed(self) -> bool:
        return self.oom_kills() > self.oom_kills_at_start

    def usage(self) -> tuple[int, int]:
        """(current, peak) bytes; 0 when unknown."""
        return (flat_value(_read(self.path / self.files.current)),
                flat_value(_read(self.path / self.files.peak)))

    def remove(self) -> None:
        for pid_text in _read(self.path / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_text), signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.path.rmdir()
