"""cgroups: finding the memory hierarchy (v1, v2, hybrid, container) from /proc texts kept
as fixture files, reading counters, and the files a group gets (in a plain directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.tenants.cgroups import (
    V1,
    V2,
    Files,
    Layout,
    MemoryCgroup,
    cgroup_name,
    find_layout,
    flat_value,
    own_group,
    write_limit,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cgroups"


def layout_of(case: str, controllers: str) -> Layout | None:
    folder = FIXTURES / case
    return find_layout((folder / "mountinfo").read_text(), (folder / "cgroup").read_text(),
                       lambda mount: controllers)


@pytest.mark.parametrize(("case", "controllers", "expected"), [
    # this machine: v1 controllers, an empty unified mount → v1, under our own group
    ("v1-hybrid", "hugetlb\n", Layout(1, Path(
        "/sys/fs/cgroup/memory/process_api/20fbebbad33afc73c04ae4a3601da79f/navigator"))),
    # the same mounts, had the unified hierarchy got the memory controller → v2
    ("v1-hybrid", "cpu memory pids\n", Layout(2, Path("/sys/fs/cgroup/unified/navigator"),
                                              (Path("/sys/fs/cgroup/unified"),
                                               Path("/sys/fs/cgroup/unified/navigator")))),
    # pure v2 (systemd host): the mount root, `+memory` enabled on the way down
    ("v2", "cpuset cpu io memory pids\n", Layout(2, Path("/sys/fs/cgroup/navigator"),
                                                 (Path("/sys/fs/cgroup"),
                                                  Path("/sys/fs/cgroup/navigator")))),
    ("v2", "", None),  # memory controller not delegated: no limit
    # Docker on v1: the mount's root is our own group already
    ("v1-container", "", Layout(1, Path("/sys/fs/cgroup/memory/navigator"))),
])
def test_find_layout(case: str, controllers: str, expected: Layout | None) -> None:
    assert layout_of(case, controllers) == expected


def test_no_cgroup_mounts() -> None:
    assert find_layout("22 1 0:20 / / rw - overlay overlay rw\n", "0::/\n", lambda m: "") \
        is None


def test_layout_files_per_version() -> None:
    assert Layout(1, Path("/x")).files is V1
    assert Layout(2, Path("/x")).files is V2


@pytest.mark.parametrize(("text", "controller", "expected"), [
    ("4:memory:/a/b\n1:cpu:/\n", "memory", "/a/b"),
    ("12:cpu,cpuacct:/d\n", "cpuacct", "/d"),
    ("0::/x\n", "memory", None),
    ("", "memory", None),
])
def test_own_group(text: str, controller: str, expected: str | None) -> None:
    assert own_group(text, controller) == expected


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("52428800\n", "", 52428800),
    ("max\n", "", 0),
    ("", "", 0),
    ("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill", 2),  # v1 oom_control
    ("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n", "oom_kill", 1),  # v2
    ("low 0\n", "oom_kill", 0),
])
def test_flat_value(text: str, key: str, expected: int) -> None:
    assert flat_value(text, key) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("t1", "t1"), ("a/b:c", "a_b_c"), ("", "app"),
])
def test_cgroup_name(name: str, expected: str) -> None:
    assert cgroup_name(name) == expected


@pytest.mark.parametrize("version", [1, 2])
def test_create_writes_the_limit_in_a_unique_group(tmp_path: Path, version: int) -> None:
    enable = (tmp_path,) if version == 2 else ()
    if version == 2:
        (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    layout = Layout(version, tmp_path / "navigator", enable)
    first = MemoryCgroup.create("a/b", 1 << 20, layout)
    assert first.path.parent == tmp_path / "navigator"
    assert first.path.name.startswith("a_b.")
    assert (first.path / layout.files.limit).read_text() == "1048576"
    assert not (first.path / layout.files.swap_limit).exists()  # only where offered
    second = MemoryCgroup.create("a/b", 1 << 20, layout)
    assert second.path != first.path  # a reload's new process never shares the old group
    if version == 2:
        assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory"
    events = layout.files.events
    (first.path / events).write_text("oom_kill_disable 0\noom_kill 0\n")
    reread = MemoryCgroup(first.path, layout.files)
    assert not reread.oom_killed()
    (first.path / events).write_text("oom_kill 1\n")
    assert reread.oom_killed()
    (first.path / layout.files.current).write_text("4096\n")
    (first.path / layout.files.peak).write_text("8192\n")
    assert reread.usage() == (4096, 8192)


@pytest.mark.parametrize(("files", "expected"), [
    (V1, "2048"),  # memory + swap = the limit: swapping cannot dodge it
    (V2, "0"),  # no swap at all
])
def test_swap_limit_where_the_kernel_offers_it(tmp_path: Path, files: Files,
                                               expected: str) -> None:
    (tmp_path / files.swap_limit).write_text("")
    write_limit(tmp_path, files, 2048)
    assert (tmp_path / files.limit).read_text() == "2048"
    assert (tmp_path / files.swap_limit).read_text() == expected
