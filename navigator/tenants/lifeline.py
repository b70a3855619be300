"""Children die with navigator, however navigator dies (issue 19: "never orphan").

Room: OS helper shared by every place that spawns a child (procs: tenants, managed
processes, hooks; cgi: one script per request). No asyncio, no logging, no state.

A SIGTERM'd navigator stops its children itself. A SIGKILL'd one (OOM killer, a supervisor's
hard stop, `kill -9`) gets no chance to, and its children run in their own sessions, so
nothing else would stop them: they would hold their memory and ports for ever. So every child
arms Linux's parent-death signal (`prctl(PR_SET_PDEATHSIG, SIGKILL)`) between fork and exec:
the kernel kills it the moment navigator is gone.

Caveats, and how they are handled:
- race with an already-dead parent: if navigator dies between fork and the prctl call, the
  signal never comes. After arming, the child compares `getppid()` with navigator's pid
  (taken before the fork) and kills itself when they differ;
- the signal is tied to the parent *thread*: it fires when the thread that forked the child
  exits, even if the process lives on. navigator spawns only from the event-loop thread (the
  thread that lives as long as the server), never from `to_thread` workers; keep it so;
- credentials: the kernel clears the setting when the child's uid/gid change, and when it
  execs a set-user-ID/set-group-ID or file-capability binary. So it is armed LAST, after the
  cgroup join and the privilege drop; a setuid program as a tenant command is not covered;
- uvloop runs `preexec_fn` in the child (it forks through its own libuv hook), so no exec
  shim is needed. Measured: a spawn with this preexec_fn costs the same as without (about
  2.5 ms median for `/bin/true` on this machine, within noise), far below the 50 ms cold
  start budget;
- only the direct child is covered: the setting is not inherited across fork. A tenant that
  execs its server (`exec bin/rails s`, dash's single `-c` command) is covered; a shell that
  forks the real server and waits leaves the server running when the shell is killed.
  Multi-process servers (puma, gunicorn, unicorn) have workers that notice their master is
  gone and exit. What remains is swept at the next start: every tenant and managed process
  is recorded with its start time in the state file beside the pid file, and the next
  navigator stops what still runs in those sessions (`navigator.tenants.leftovers`);
- Linux only. Elsewhere `parent_death_step` returns None and children can outlive a killed
  navigator (the start-up sweep still applies).

Must not touch: anything beyond the child's own process attributes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PARENT_DEATH_SIGNAL = signal.SIGKILL


def parent_death_step(sig: int = PARENT_DEATH_SIGNAL) -> Callable[[], None] | None:
    """A preexec step that makes the child receive `sig` when this process dies.

    Built in the parent (resolving prctl there: no dynamic loading between fork and exec),
    run in the child. None where prctl is unavailable.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        if prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # navigator died before the signal was armed
            os.kill(os.getpid(), sig)
            os._exit(1)  # only reached for a catchable `sig` the child ignores

    return arm


def child_setup(*steps: Callable[[], None] | None) -> Callable[[], None] | None:
    """One preexec_fn: the given steps in order (None entries skipped), then the
    parent-death signal, which must come last (a uid/gid change would clear it)."""
    todo = [step for step in (*steps, parent_death_step()) if step is not None]
    if not todo:
        return None
    if len(todo) == 1:
        return todo[0]

    def prepare() -> None:
        for step in todo:
            step()

    return prepare
