"""`make dist`: the self-contained navigator runs where no Python is installed.

The artefact (dist/navigator/) is started in a mount namespace in which every Python on this
machine is hidden: the interpreter in use and its installation (sys.base_prefix), the
virtualenvs (sys.prefix, .venv, build/), Debian's /usr/lib/python3*, /usr/local/lib/python3*,
/usr/bin/python* and libpython*.so are covered by empty mounts; the environment is empty but
for PATH=/usr/bin:/bin. It must serve a static file, start a tenant (a Perl script: perl-base
is part of every Debian system, unlike Python) and proxy to it, and /proc/<pid>/maps must show
that the only libpython mapped is the artefact's own.

`make dist` takes ~15-30 s, so this runs when NAVIGATOR_TEST_DIST=1 (.ci/run sets it: CI
builds and tests the artefact every time) or when the artefact is already up to date;
otherwise it skips and says how to run it. Hiding by mount namespace needs root and
CAP_SYS_ADMIN; where `unshare --mount` is refused (an unprivileged container) the test falls
back to the environment alone (PATH=/nonexistent, no PYTHONHOME/PYTHONPATH) and still checks
/proc/<pid>/maps.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO, request, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ARTEFACT = REPO / "dist" / "navigator" / "navigator"
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")

TENANT = r"""#!/usr/bin/perl
# A tenant without Python: answers every request with its prefix and the path it got.
use strict; use warnings; use IO::Socket::INET;
my $server = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{PORT},
                                   Listen => 16, ReuseAddr => 1) or die "listen: $!";
$SIG{TERM} = sub { exit 0 };
while (my $client = $server->accept) {
    my $line = <$client> // next;
    while (my $header = <$client>) { last if $header =~ /^\r?\n$/ }
    my (undef, $path) = split / /, $line;
    my $body = "perl tenant $ENV{TENANT} got $path";
    print $client "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($body) . "\r\nConnection: close\r\n\r\n$body";
    close $client;
}
"""


def build_or_skip() -> None:
    if os.environ.get("NAVIGATOR_TEST_DIST", "") not in ("", "0"):
        done = subprocess.run(["make", "-s", "dist"], cwd=REPO, capture_output=True,
                              text=True, timeout=540, check=False)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return
    fresh = subprocess.run(["make", "-q", "dist/navigator/navigator"], cwd=REPO,
                           capture_output=True, timeout=60, check=False).returncode == 0
    if not (ARTEFACT.exists() and fresh):
        pytest.skip("no up-to-date dist/navigator: run `make dist` first, or set "
                    "NAVIGATOR_TEST_DIST=1 to build it here (.ci/run does)")


def python_paths() -> list[str]:
    """Every place a Python interpreter or its library could be found on this machine."""
    candidates = {sys.base_prefix, sys.prefix, str(REPO / ".venv"), str(REPO / "build"),
                  os.path.expanduser("~/.pyenv"), os.path.expanduser("~/.local")}
    for pattern in ("/usr/lib/python3*", "/usr/local/lib/python3*", "/usr/bin/python*",
                    "/usr/local/bin/python*", "/usr/lib/*/libpython*", "/usr/lib/libpython*",
                    "/usr/local/lib/libpython*"):
        candidates.update(glob.glob(pattern))
    # The system prefix itself (/usr) must stay: it holds sh, perl and glibc. A path inside
    # another one is hidden with it (and could not be mounted on once its parent is covered).
    # Symbolic links are followed: hiding the target hides every link to it.
    real = {os.path.realpath(p) for p in candidates if os.path.exists(p)}
    found = sorted(p for p in real if p not in ("/usr", "/"))
    return [p for p in found if not any(p.startswith(q.rstrip("/") + "/") for q in found)]


def hiding_script(paths: list[str], argv: list[str]) -> str:
    """sh run inside `unshare --mount`: cover every path, prove python is gone, exec argv."""
    lines = ["set -e", "mount --make-rprivate /"]
    for path in paths:
        if os.path.isdir(path):
            lines.append(f"mount -t tmpfs -o ro,size=4k hidden '{path}'")
        else:
            lines.append(f"mount --bind /dev/null '{path}'")
    lines += ["for p in python python3 python3.11; do",
              "  if command -v $p >/dev/null 2>&1 && $p -c '' 2>/dev/null; then",
              "    echo \"python still runs: $p\"; exit 97; fi; done",
              "echo 'python hidden'",
              "exec " + " ".join(f"'{arg}'" for arg in argv)]
    return "\n".join(lines)


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=30,
                           check=False)
    return probe.returncode == 0


def test_dist_runs_with_every_python_hidden(tmp_path: Path) -> None:
    build_or_skip()
    public = tmp_path / "public"
    public.mkdir()
    (public / "hello.txt").write_text("static from the artefact\n")
    tenant = tmp_path / "tenant.pl"
    tenant.write_text(TENANT)
    tenant.chmod(0o755)
    config = tmp_path / "navigator.yml"
    config.write_text(f"""\
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
  static:
    public_dir: {public}
applications:
  pools:
    start_port: 23500
  health_check: /up
  framework:
    command: {tenant}
  env:
    TENANT: "${{who}}"
  tenants:
    - path: /perl/
      var: {{who: one}}
""")
    argv = [str(ARTEFACT), "--config", str(config)]
    namespace = can_unshare()
    if namespace:
        hidden = python_paths()
        assert any("python" in p for p in hidden), hidden
        argv = ["unshare", "--mount", "sh", "-c", hiding_script(hidden, argv)]
        env = {"PATH": "/usr/bin:/bin"}
    else:
        env = {"PATH": "/nonexistent"}
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        lines.extend(line.rstrip("\n") for line in process.stdout)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        def port() -> int | None:
            if process.poll() is not None:
                raise AssertionError("the artefact exited:\n" + "\n".join(lines))
            found = [m for m in map(LISTENING.search, list(lines)) if m]
            return int(found[0].group(1)) if found else None

        listening = wait_until(port, 30, message="the artefact to listen")
        assert isinstance(listening, int)
        assert "python hidden" in lines or not namespace

        static = request(listening, "GET", "/hello.txt")
        assert (static.status, static.body) == (200, b"static from the artefact\n")
        proxied = request(listening, "GET", "/perl/some/path?x=1")
        assert proxied.status == 200, "\n".join(lines)
        assert proxied.body == b"perl tenant one got /perl/some/path?x=1"

        # The process is the artefact, with the artefact's own libpython and nothing else.
        pid = int((tmp_path / "navigator.pid").read_text())
        assert os.readlink(f"/proc/{pid}/exe") == str(ARTEFACT)
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        mapped = {line.split()[-1] for line in maps if ".so" in line.split()[-1]}
        libpython = [path for path in mapped if "libpython" in path]
        assert len(libpython) == 1, libpython
        assert libpython[0].startswith(f"{ARTEFACT.parent}/_internal/"), libpython
        # Every extension module (uvloop, httptools, msgspec...) comes from the artefact too.
        stray = [path for path in mapped if ("python" in path or "site-packages" in path)
                 and not path.startswith(f"{ARTEFACT.parent}/")]
        assert stray == []
    finally:
        if process.poll() is None:
            process.terminate()
        assert process.wait(30) == 0, "\n".join(lines)
        reader.join(5)
        if process.stdout is not None:
            process.stdout.close()
