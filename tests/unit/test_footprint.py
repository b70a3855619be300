"""Footprint (issue 18): what a config does not use is not imported at start. A server that
never replays to another machine needs no DNS client (aiodns, pycares), and one without CGI
scripts or the cable hub's sockets needs neither handler; each costs resident memory in every
navigator process. Checked in a fresh interpreter, as the server starts."""

from __future__ import annotations

import subprocess
import sys

LAZY = ("aiodns", "pycares", "navigator.extras.cgi", "navigator.extras.cgi_handler",
        "navigator.extras.cable_handler")


def test_the_server_module_does_not_import_what_a_config_may_not_use() -> None:
    code = ("import sys, navigator.server, navigator.__main__; "
            f"print(' '.join(m for m in {LAZY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""
