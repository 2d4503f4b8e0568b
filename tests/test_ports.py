"""tests.ports: the ports handed to test servers lie below the kernel's ephemeral range (where no
outgoing connection can take them meanwhile), are free when handed out, and do not repeat soon."""

from __future__ import annotations

import socket

from tests.ports import _ephemeral_start, free_port


def test_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port < _ephemeral_start() for port in ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # raises if it was not free


def test_a_port_in_use_is_never_handed_out() -> None:
    taken = []
    try:
        for _ in range(20):
            sock = socket.socket()
            sock.bind(("127.0.0.1", free_port()))
            sock.listen()
            taken.append(sock)
        listening = {s.getsockname()[1] for s in taken}
        assert not listening & {free_port() for _ in range(3000)}
    finally:
        for sock in taken:
            sock.close()
