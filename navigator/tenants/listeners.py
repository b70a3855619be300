"""Which sockets listen on a TCP port, cheaply on a busy machine.

Room: tenants, process inspection (Linux). The readiness check asks whether the program
answering on a tenant's port is the tenant; that needs the listening socket's inode. The
usual ways read the whole TCP table: psutil parses /proc/net/tcp{,6} once per process asked
about, and the kernel writes one line per socket, TIME_WAIT included. A server that just
closed tens of thousands of connections has that many lines (measured: 14,000 lines, 25 ms
to read /proc/net/tcp, 49 ms for psutil on one process; a tenant's cold start was 110-130 ms
slower after a `Connection: close` benchmark). A sock_diag netlink dump asking for LISTEN
sockets only makes the kernel walk its listening table and nothing else.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Final

_NETLINK_SOCK_DIAG: Final = 4
_SOCK_DIAG_BY_FAMILY: Final = 20
_NLM_F_REQUEST: Final = 0x1
_NLM_F_DUMP: Final = 0x300
_NLMSG_ERROR: Final = 2
_NLMSG_DONE: Final = 3
_TCP_LISTEN: Final = 10
_HEADER: Final = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
# inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid (48 bytes)
_REQUEST: Final = struct.Struct("=BBBBI48s")
_SPORT: Final = struct.Struct("!H")  # inet_diag_msg: sockid starts at 4, sport first
_INODE: Final = struct.Struct("=I")  # inet_diag_msg: at 4 + 48 + 16 (expires..uid)
_INODE_AT: Final = 68


def listener_inodes(port: int) -> set[int] | None:
    """Inodes of the TCP sockets listening on `port`, IPv4 and IPv6; None when neither
    sock_diag nor /proc can tell (not Linux)."""
    try:
        return _diag_listeners(port)
    except OSError:
        pass
    inodes: set[int] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, "rb") as handle:
                text = handle.read()
        except OSError:
            continue
        readable = True
        inodes |= listening_inodes(text, port)
    return inodes if readable else None


def _diag_listeners(port: int) -> set[int]:
    """The sock_diag dump of LISTEN sockets, filtered to `port` here."""
    found: set[int] = set()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2.0)
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN,
                                 bytes(48))
            nl.send(_HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY,
                                 _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0) + body)
            found |= _read_dump(nl, port)
    return found


def _read_dump(nl: socket.socket, port: int) -> set[int]:
    found: set[int] = set()
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
            if kind == _NLMSG_DONE:
                return found
            if kind == _NLMSG_ERROR:
                raise OSError("sock_diag refused the dump")
            message = offset + _HEADER.size
            if (length >= _HEADER.size + _INODE_AT + 4
                    and _SPORT.unpack_from(data, message + 4)[0] == port):
                found.add(_INODE.unpack_from(data, message + _INODE_AT)[0])
            if length < _HEADER.size:
                raise OSError("malformed sock_diag message")
            offset += (length + 3) & ~3
        if not data:
            return found


def listening_inodes(table: bytes, port: int) -> set[int]:
    """The inodes of the LISTEN lines for local `port` in a /proc/net/tcp or tcp6 table.
    Pure: only lines holding the port are split, found with a substring search."""
    needle = b":%04X " % port
    found: set[int] = set()
    start = table.find(needle)
    while start >= 0:
        line_start = table.rfind(b"\n", 0, start) + 1
        line_end = table.find(b"\n", start)
        if line_end < 0:
            line_end = len(table)
        fields = table[line_start:line_end].split()
        # sl, local_address, rem_address, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
        if len(fields) > 9 and fields[1].endswith(needle[:-1]) and fields[3] == b"0A":
            found.add(int(fields[9]))
        start = table.find(needle, line_end)
    return found


def holds_any(pids: list[int], inodes: set[int]) -> bool | None:
    """Whether one of `pids` has one of the socket `inodes` open; None when a process's
    descriptors cannot be read (another user's: the caller decides)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:  # exited meanwhile
            continue
        except PermissionError:
            return None
        for name in names:
            try:
                if os.readlink(f"{folder}/{name}") in wanted:
                    return True
            except OSError:  # closed meanwhile
                continue
    return False
