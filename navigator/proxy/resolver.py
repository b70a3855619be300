"""Reaching another machine over Fly's private network: `.internal` names → a connection.

Room: I/O (DNS over aiodns, TCP connects through the upstream pool). Used only by the
deployment-stamp fallback proxy (a replay Fly cannot carry) and the DNS check before a replay
(`proxy.wake`), never by the tenant path or by plain reverse proxies, which keep connecting
straight to their configured address.

Invariants:
- AAAA first, then A: Fly's private network (6PN) is IPv6; the A answer keeps IPv4-only
  setups (and loopback tests) working;
- an answer is cached for its TTL (capped at MAX_TTL), a failure for NEGATIVE_TTL, so a dead
  name costs no DNS round trip per request and a restarted machine is found again quickly;
  the cache is ours (not only c-ares' query cache) so a hit needs no task and no hop through
  pycares' event thread;
- one lookup per name is in flight at a time; concurrent requests share it, and a request
  that gives up does not cancel it for the others;
- `reach` never outlives its budget: DNS, every connect attempt and the back-off between
  attempts all come out of one deadline; failure is `Unreachable`, never a hang;
- retries (exponential back-off, the next address of the answer each time, a fresh lookup
  after a failed connect) only as many as the caller grants: nothing has been sent to the
  target yet, but only idempotent requests are granted any (see `rules`); a name that does
  not resolve is not retried (c-ares has already retried the query itself).

Must not touch: client connections, routing, the environment (servers come from config).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import TYPE_CHECKING, Any

from navigator.proxy.machinestart import MachineStarts

if TYPE_CHECKING:
    import aiodns

    from navigator.proxy.upstream import PoolKey, UpstreamConnection, UpstreamPool

log = logging.getLogger("navigator.resolver")

MAX_TTL = 30.0  # seconds an answer is trusted at most, whatever its TTL says
MIN_TTL = 1.0
NEGATIVE_TTL = 1.0  # a failed lookup is not repeated for this long
MAX_NAMES = 4096  # cache bound; names come from config, so this is never reached in practice
QUERY_TIMEOUT = 1.0  # per DNS try (c-ares); the caller's budget bounds the whole lookup
QUERY_TRIES = 2
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 1.0
_TYPES = (("AAAA", 28), ("A", 1))


class Unreachable(Exception):
    """The target name does not resolve, or no address of it accepts a connection."""


def needs_lookup(host: str) -> bool:
    """False for IP literals and localhost: those never cost a DNS query."""
    if host == "localhost":
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def backoff_delays(retries: int, first: float = BACKOFF_FIRST,
                   cap: float = BACKOFF_CAP) -> tuple[float, ...]:
    """Pauses before each retry: first, 2x, 4x ... capped."""
    return tuple(min(cap, first * 2 ** attempt) for attempt in range(retries))


class InternalResolver:
    """aiodns with a small TTL cache; one per server state and set of DNS servers."""

    __slots__ = ("_cache", "_channel", "_inflight", "_loop", "servers")

    def __init__(self, loop: asyncio.AbstractEventLoop, servers: tuple[str, ...] = ()) -> None:
        self._loop = loop
        self.servers = servers  # "host:port" entries; empty = the system's resolv.conf
        self._channel: aiodns.DNSResolver | None = None  # made on the first lookup
        # name -> (expires at, addresses; empty = negative entry, reason)
        self._cache: dict[str, tuple[float, tuple[str, ...], str]] = {}
        self._inflight: dict[str, asyncio.Task[tuple[str, ...]]] = {}

    def cached(self, name: str) -> tuple[str, ...] | None:
        """The addresses of a live positive entry, without any I/O."""
        entry = self._cache.get(name)
        if entry is not None and entry[1] and entry[0] > self._loop.time():
            return entry[1]
        return None

    def forget(self, name: str) -> None:
        """Drop a name whose cached address refused a connection (the machine moved)."""
        self._cache.pop(name, None)

    def forget_negative(self, name: str) -> None:
        """Drop a cached miss: a machine being started is looked at again (`proxy.wake`)."""
        entry = self._cache.get(name)
        if entry is not None and not entry[1]:
            del self._cache[name]

    async def resolve(self, name: str) -> tuple[str, ...]:
        """Addresses for `name` (AAAA answers, else A answers); `Unreachable` otherwise."""
        entry = self._cache.get(name)
        if entry is not None and entry[0] > self._loop.time():
            if entry[1]:
                return entry[1]
            raise Unreachable(f"{name}: {entry[2]}")
        task = self._inflight.get(name)
        if task is None:
            task = self._loop.create_task(self._lookup(name))
            self._inflight[name] = task
            task.add_done_callback(lambda _: self._inflight.pop(name, None))
        return await asyncio.shield(task)

    async def _lookup(self, name: str) -> tuple[str, ...]:
        # aiodns/pycares (~0.8 MiB) are imported on the first lookup: a server that never
        # replays to another machine never loads them (issue 18, footprint).
        import aiodns
        import pycares

        channel = self._channel
        if channel is None:
            options: dict[str, Any] = {"timeout": QUERY_TIMEOUT, "tries": QUERY_TRIES,
                                       "flags": pycares.ARES_FLAG_NOSEARCH}
            if self.servers:
                options["nameservers"] = list(self.servers)
            channel = self._channel = aiodns.DNSResolver(loop=self._loop, **options)
        reason = "no address"
        for qtype, code in _TYPES:
            try:
                result = await channel.query_dns(name, qtype)
            except aiodns.error.DNSError as exc:
                reason = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
                if exc.args and exc.args[0] == aiodns.error.ARES_ENOTFOUND:
                    break  # NXDOMAIN: the name has no records of any type
                continue
            records = [r for r in result.answer if r.type == code]
            if records:
                ttl = min(MAX_TTL, max(MIN_TTL, min(float(r.ttl) for r in records)))
                addresses = tuple(str(r.data.addr) for r in records)  # type: ignore[union-attr]
                self._store(name, ttl, addresses, "")
                return addresses
        log.info("cannot resolve %s: %s", name, reason)
        self._store(name, NEGATIVE_TTL, (), reason)
        raise Unreachable(f"{name}: {reason}")

    def _store(self, name: str, ttl: float, addresses: tuple[str, ...], reason: str) -> None:
        cache = self._cache
        now = self._loop.time()
        if len(cache) >= MAX_NAMES:
            for key in [k for k, v in cache.items() if v[0] <= now]:
                del cache[key]
            if len(cache) >= MAX_NAMES:
                cache.clear()
        cache[name] = (now + ttl, addresses, reason)

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


class MachineResolver:
    """The server's view of other machines: the `.internal` resolver, made again when a
    reload changes the DNS servers, and the machines being started (`starts`).

    One per server (built by `server`, a typed field of `ServerState`); the first lookup
    creates the aiodns channel, so a server that never replays to another machine opens none.
    """

    __slots__ = ("_current", "_loop", "_retired", "starts")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._current: InternalResolver | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self.starts = MachineStarts(loop)  # survives reloads: a start under way goes on

    def for_servers(self, servers: tuple[str, ...]) -> InternalResolver:
        """The resolver asking `servers` (the current snapshot's `stamp.dns_servers`)."""
        current = self._current
        if current is None or current.servers != servers:
            if current is not None:  # the old one's lookups in flight end with it
                task = self._loop.create_task(current.close())
                self._retired.add(task)
                task.add_done_callback(self._retired.discard)
            current = self._current = InternalResolver(self._loop, servers)
        return current

    async def close(self) -> None:
        await self.starts.close()
        if self._current is not None:
            await self._current.close()
            self._current = None


async def reach(pool: UpstreamPool, resolver: InternalResolver, host: str, port: int, *,
                retries: int, budget: float) -> tuple[UpstreamConnection, PoolKey]:
    """A new connection to `host:port` (resolved by `resolver`), within `budget` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    delays = backoff_delays(retries)
    reason = "no time left"
    for attempt in range(retries + 1):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            addresses = await asyncio.wait_for(resolver.resolve(host), remaining)
            address = addresses[attempt % len(addresses)]
            key: PoolKey = (address, port, False)
            conn = await pool.connect(key, max(0.001, deadline - loop.time()))
        except Unreachable as exc:  # c-ares already retried; NXDOMAIN will not change soon
            reason = str(exc)
            break
        except TimeoutError:
            reason = f"no answer within {budget:.1f}s"
            resolver.forget(host)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            resolver.forget(host)
        else:
            return conn, key
        if attempt < retries:
            pause = min(delays[attempt], deadline - loop.time())
            if pause <= 0:
                break
            await asyncio.sleep(pause)
    raise Unreachable(f"{host}:{port}: {reason}")
