"""Ports for the servers the tests start (maintd, PostgreSQL clusters, pebble, Alertmanager, ...).

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from the ephemeral range, the
same range every outgoing connection's local port comes from: between closing the probe socket
and the server's bind, a connection to PostgreSQL or Redis from any process can take it (CI saw
maintd exit with "address already in use"). So ports come from below that range, where nothing
is handed out unasked, each xdist worker from its own slice, each checked free by a bind.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

FIRST = 10_000
SLICES = 16  # up to this many xdist workers get disjoint slices


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _candidates() -> itertools.cycle[int]:
    end = _ephemeral_start()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    size = (end - FIRST) // SLICES
    first = FIRST + (int(worker) if worker.isdigit() else 0) % SLICES * size
    ports = list(range(first, first + size))
    start = random.randrange(len(ports)) if ports else 0
    return itertools.cycle(ports[start:] + ports[:start])


_PORTS = _candidates() if _ephemeral_start() - FIRST >= SLICES * 100 else None


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now, outside the kernel's ephemeral range."""
    if _PORTS is None:  # an ephemeral range reaching down here: the kernel's choice then
        return _bound_port(0)
    for _ in range(1000):
        port = next(_PORTS)
        try:
            return _bound_port(port)
        except OSError:
            continue
    raise RuntimeError(f"no free port in this worker's slice above {FIRST}")


def _bound_port(port: int) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])
