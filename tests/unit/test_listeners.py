"""Finding the sockets that listen on a port: the /proc table search and the sock_diag dump
agree with the kernel's own inode of a socket this test opens."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from navigator.tenants.listeners import holds_any, listener_inodes, listening_inodes

TABLE = (
    b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    b"timeout inode\n"
    b"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
    b"        0 111 1 0000000000000000 100 0 0 10 0\n"
    b"   1: 0100007F:1F90 0100007F:D2F0 06 00000000:00000000 03:00000ADB 00000000     0"
    b"        0 0 3 0000000000000000\n"
    b"   2: 0100007F:D2F0 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0"
    b"        0 222 1 0000000000000000 20 4 30 10 -1\n"
    b"   3: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
    b"        0 333 1 0000000000000000 100 0 0 10 0"
)


def test_the_table_search_keeps_only_listeners_on_the_port() -> None:
    assert listening_inodes(TABLE, 0x1F90) == {111}  # not the TIME_WAIT, not the client
    assert listening_inodes(TABLE, 0x1F91) == {333}  # the last line has no newline
    assert listening_inodes(TABLE, 0xD2F0) == set()  # only a client's port
    assert listening_inodes(b"", 80) == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and sock_diag")
def test_a_listening_socket_is_found_by_its_inode() -> None:
    with socket.socket() as listener, socket.socket() as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client.connect(("127.0.0.1", port))  # an established line on the port too
        inode = os.fstat(listener.fileno()).st_ino
        assert listener_inodes(port) == {inode}
        with open("/proc/net/tcp", "rb") as table:
            assert listening_inodes(table.read(), port) == {inode}
        assert holds_any([os.getpid()], {inode}) is True
    assert listener_inodes(port) == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_process_without_the_socket_does_not_hold_it() -> None:
    assert holds_any([os.getpid()], {1}) is False
    assert holds_any([2**22 + 12345], {1}) is False  # no such process: skipped
