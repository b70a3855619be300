"""A tiny authoritative DNS responder on loopback UDP, for `.internal` names in tests.

It answers A and AAAA questions from a fixed table (name → addresses), NOERROR with no
answer when the name exists without that record type (so the resolver falls back from AAAA
to A), NXDOMAIN for unknown names, and counts the questions it saw (and, in `events`, when
each was asked and whether it was answered). `publish` / `withdraw` change the table while it
runs, as Fly's DNS does when a machine starts or stops. Runs in its own thread with a plain
blocking socket: no event loop shared with the code under test.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while True:
        length = packet[offset]
        offset += 1
        if length == 0:
            return ".".join(labels).lower(), offset
        labels.append(packet[offset:offset + length].decode("ascii"))
        offset += length


def answer(packet: bytes, table: Mapping[str, Sequence[str]], ttl: int = 5) -> bytes:
    """The response to one query packet (a single question, as stub resolvers send)."""
    ident, flags = struct.unpack("!HH", packet[:4])
    name, end = _read_name(packet, 12)
    qtype, qclass = struct.unpack("!HH", packet[end:end + 4])
    question = packet[12:end + 4]
    records = []
    rcode = 0
    if name not in table:
        rcode = 3  # NXDOMAIN
    elif qclass == CLASS_IN:
        for text in table[name]:
            address = ipaddress.ip_address(text)
            want = TYPE_AAAA if address.version == 6 else TYPE_A
            if want == qtype:
                data = address.packed
                records.append(struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, ttl, len(data))
                               + data)
    reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode  # QR AA RD RA
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, len(records), 0, 0)
    return header + question + b"".join(records)


class DnsResponder:
    """Serves `table` on 127.0.0.1:<ephemeral>; `address` is "127.0.0.1:port"."""

    def __init__(self, table: Mapping[str, Sequence[str]], ttl: int = 5) -> None:
        self.table = {name.lower().rstrip("."): list(addrs) for name, addrs in table.items()}
        self.ttl = ttl
        self.questions: Counter[tuple[str, int]] = Counter()
        self.events: list[tuple[float, str, int, bool]] = []  # monotonic, name, type, found
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def asked(self, name: str, qtype: int) -> int:
        with self._lock:
            return self.questions[(name, qtype)]

    def publish(self, name: str, addresses: Sequence[str]) -> None:
        with self._lock:
            self.table = {**self.table, name.lower(): list(addresses)}

    def withdraw(self, name: str) -> None:
        with self._lock:
            self.table = {k: v for k, v in self.table.items() if k != name.lower()}

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                name, end = _read_name(packet, 12)
                qtype = struct.unpack("!H", packet[end:end + 2])[0]
                with self._lock:
                    table = self.table
                reply = answer(packet, table, self.ttl)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue
            with self._lock:
                self.questions[(name, qtype)] += 1
                self.events.append((time.monotonic(), name, qtype, name in table))
            self._sock.sendto(reply, peer)

    def start(self) -> DnsResponder:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@contextmanager
def dns_responder(table: Mapping[str, Sequence[str]], ttl: int = 5) -> Iterator[DnsResponder]:
    server = DnsResponder(table, ttl).start()
    try:
        yield server
    finally:
        server.close()
