"""Replay only to a machine that runs: check its `.internal` name, start it if need be.

Room: I/O glue for the `ReplayWhenUp` decision (`stamps.machine_start`). Fly's private DNS
answers `<machine>.vm.<app>.internal` only while that machine runs, so a cached positive
answer means "replay now" at the cost of a dict lookup. On a miss the request is held (body
bounded, as while a tenant starts) while `MachineStarts` brings the machine up: start it
through the Machines API over the local socket, then wait until DNS names it and it accepts
a connection on navigator's port. Then the replay answer goes out; if that takes longer than
`stamps.machine_start.timeout`, a forced target (`instance`) gets the maintenance page with
`Retry-After`, a preferred one (`prefer_instance`) is replayed anyway (Fly falls back to
another machine).

Invariants:
- the hot path (name cached) creates no task and sends no packet;
- a replay is never retried here: a replayed request carries `X-Navigator-Retry` and routing
  never makes it a `ReplayWhenUp` again (`web.rules`), so a start cannot loop;
- concurrent requests share one bring-up (one start call) per machine (`machinestart`);
  `until_running` is also what `proxy.machine` awaits before proxying a request too large
  to replay to a machine that is not running.

Must not touch: routing (the decision arrives made), the tenants room.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING

from navigator.config.runtime import MachineStart
from navigator.http.client import Client, HoldingHandler, respond
from navigator.http.exchange import Exchange
from navigator.proxy.flyapi import MachineApiError, machine_action
from navigator.proxy.resolver import InternalResolver, MachineResolver, Unreachable
from navigator.proxy.startledger import start_accepted
from navigator.web.decision import Destination, ReplayWhenUp, Respond

if TYPE_CHECKING:
    from navigator.ops.metrics import Metrics

log = logging.getLogger("navigator.wake")

PROBE_TIMEOUT = 1.0  # one connect attempt to a machine DNS already names


def start_checked_replay(client: Client, ex: Exchange, decision: ReplayWhenUp) -> None:
    """Replay now when the destination is known to run, else hold the request and wake it."""
    state = client.state
    resolver = state.machines.for_servers(ex.snapshot.config.stamp.dns_servers)
    if resolver.cached(decision.destination.dns_name) is not None:
        respond(client, ex, decision.answer)
        return
    holder = HoldingHandler(client, ex)
    ex.handler = holder
    state.spawn(_replay_when_up(client, ex, decision, holder, resolver))


async def _replay_when_up(client: Client, ex: Exchange, decision: ReplayWhenUp,
                          holder: HoldingHandler, resolver: InternalResolver) -> None:
    snapshot = ex.snapshot
    settings = snapshot.config.stamp.machine_start
    dest = decision.destination
    state = client.state
    up = await until_running(state.machines, resolver, dest, settings, state.metrics)
    if client.closed or ex.handler is not holder:
        return
    ex.handler = None
    if up or not dest.forced:
        respond(client, ex, decision.answer)
        return
    ex.error = f"machine {dest.machine} not running after {settings.timeout:.1f}s"
    log.warning("replay of %s %s: %s (fly-request-id %s)", ex.method.decode("latin-1"),
                ex.target.decode("latin-1", "replace"), ex.error,
                ex.kept.get(b"fly-request-id", b"-").decode("latin-1"))
    respond(client, ex, maintenance_retry(snapshot.maintenance, settings))


async def until_running(machines: MachineResolver, resolver: InternalResolver,
                        dest: Destination, settings: MachineStart,
                        metrics: Metrics | None) -> bool:
    """Wait (at most `settings.timeout`) for `dest` to run, starting it if need be; the
    bring-up is shared with every other request for that machine."""
    task = machines.starts.bring_up(
        (dest.app, dest.machine), lambda deadline: _runs(resolver, dest, deadline),
        lambda deadline: _start(settings, dest, deadline, metrics),
        timeout=settings.timeout, backoff=settings.backoff)
    try:
        return await asyncio.wait_for(asyncio.shield(task), settings.timeout)
    except TimeoutError:
        return False
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and (current is None or not current.cancelling()):
            return False  # the bring-up was ended (shutdown), not this request
        raise


def maintenance_retry(page: Respond, settings: MachineStart) -> Respond:
    """The maintenance page plus `Retry-After`: about when the next start call may be made."""
    seconds = max(1, math.ceil(settings.backoff))
    return Respond(page.status, (*page.headers, ("Retry-After", str(seconds))), page.body,
                   page.response_type)


async def _runs(resolver: InternalResolver, dest: Destination, deadline: float) -> bool:
    """DNS names the machine (it runs) and it accepts a connection (navigator listens)."""
    loop = asyncio.get_running_loop()
    remaining = deadline - loop.time()
    if remaining <= 0:
        return False
    resolver.forget_negative(dest.dns_name)  # a stopped machine's miss is cached briefly
    try:
        addresses = await asyncio.wait_for(resolver.resolve(dest.dns_name), remaining)
    except (Unreachable, TimeoutError):
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(addresses[0], dest.port),
                                           min(PROBE_TIMEOUT, max(0.001, deadline
                                                                  - loop.time())))
    except (OSError, TimeoutError):
        resolver.forget(dest.dns_name)  # named but not answering yet: ask again next time
        return False
    writer.close()
    return True


async def _start(settings: MachineStart, dest: Destination, deadline: float,
                 metrics: Metrics | None) -> bool:
    loop = asyncio.get_running_loop()
    log.info("machine %s of %s is not running: starting it", dest.machine, dest.app)
    try:
        status, body = await machine_action(
            settings.fly_api_socket, dest.app, dest.machine, "start",
            budget=max(0.001, min(deadline - loop.time(), 10.0)))
    except MachineApiError as exc:
        log.error("Machines API start of %s failed: %s", dest.machine, exc)
        if metrics is not None:
            metrics.machine_starts.inc(dest.machine, "error")
        return False
    accepted = start_accepted(status)
    if metrics is not None:
        metrics.machine_starts.inc(dest.machine, "accepted" if accepted else "refused")
    if accepted:
        log.info("Machines API start of %s accepted (%d)", dest.machine, status)
        return True
    log.error("Machines API start of %s answered %d: %s", dest.machine, status,
              body[:200].decode("utf-8", "replace"))
    return False
