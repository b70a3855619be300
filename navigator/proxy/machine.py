"""Proxying to another machine by its `.internal` name (a fly-replay the platform could not
carry, deployment stamps).

Room: I/O glue. `proxy.resolver` owns name lookups and reaching a machine; this module holds
the client's request (body bounded) while the machine is looked up and connected, then hands
the connection to the `ProxyExchange`. Unresolvable or unreachable gives the maintenance page.
With `stamps.machine_start`, a machine that does not resolve is started first and waited for
(`proxy.wake.until_running`, shared with the replays waiting for it).
"""

from __future__ import annotations

import logging

from navigator.http.client import Client, HoldingHandler, respond
from navigator.http.exchange import Exchange
from navigator.proxy.relay import ProxyExchange
from navigator.proxy.resolver import InternalResolver, Unreachable, reach
from navigator.proxy.wake import maintenance_retry, until_running
from navigator.web.decision import ProxyExternal

log = logging.getLogger("navigator.extras")


def start_machine_proxy(client: Client, ex: Exchange, decision: ProxyExternal,
                        proxy: ProxyExchange) -> None:
    """Proxy to another machine by name; unresolvable or unreachable → maintenance page.

    With the name cached and an idle connection pooled this runs without a task. A new
    connection is opened here rather than by `ProxyExchange`, whose connect failure is a 502,
    and handed to it with `start_on`.
    """
    state = client.state
    target = decision.target
    resolver = state.machines.for_servers(ex.snapshot.config.stamp.dns_servers)
    addresses = resolver.cached(target.host)
    if addresses is not None:
        key = (addresses[0], target.port, False)
        conn = state.pool.acquire(key)
        if conn is not None:
            proxy.start_on(key, conn)
            return
    holder = HoldingHandler(client, ex)
    ex.handler = holder
    state.spawn(_reach_then_proxy(client, ex, decision, proxy, holder, resolver))


async def _reach_then_proxy(client: Client, ex: Exchange, decision: ProxyExternal,
                            proxy: ProxyExchange, holder: HoldingHandler,
                            resolver: InternalResolver) -> None:
    state = client.state
    snapshot = ex.snapshot
    target = decision.target
    destination = decision.destination
    if destination is not None and not await until_running(
            state.machines, resolver, destination, snapshot.config.stamp.machine_start,
            state.metrics):
        log.warning("machine %s not running for %s %s (fly-request-id %s)",
                    destination.machine, ex.method.decode("latin-1"), decision.path,
                    ex.kept.get(b"fly-request-id", b"-").decode("latin-1"))
        if not client.closed and ex.handler is holder:
            ex.handler = None
            ex.error = f"machine {destination.machine} not running"
            respond(client, ex, maintenance_retry(snapshot.maintenance,
                                                  snapshot.config.stamp.machine_start))
        return
    if client.closed or ex.handler is not holder:
        return
    try:
        conn, key = await reach(state.pool, resolver, target.host, target.port,
                                retries=decision.idempotent_retries,
                                budget=snapshot.config.limits.upstream_connect_timeout)
    except Unreachable as exc:
        log.warning("machine for %s %s unreachable (fly-request-id %s): %s",
                    ex.method.decode("latin-1"), decision.path,
                    ex.kept.get(b"fly-request-id", b"-").decode("latin-1"), exc)
        if not client.closed and ex.handler is holder:
            ex.handler = None
            ex.error = str(exc)
            respond(client, ex, snapshot.maintenance)
        return
    if client.closed or ex.handler is not holder:
        conn.close()
        return
    proxy.start_on(key, conn)
