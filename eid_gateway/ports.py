"""Listening ports: whether one can be bound now, and a free loopback port for a child server.

Standard library only, so a single-process ``serve``, ``simulator`` or ``demo-service`` checks its port
without importing gunicorn (:mod:`eid_gateway.workers`), and the throwaway servers the product starts
(``redis-server`` for tests and benchmarks, the smoke test's gateway) share one way to find a port.
The tests have their own in ``tests/helpers/ports.py``.
"""

from __future__ import annotations

import errno
import socket


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now, or ``None``.

    Binding with SO_REUSEPORT succeeds even where another server with that option (say, a second gateway
    started by mistake) already listens, and the kernel would then split the traffic between the two.
    So before the workers bind, the arbiter's process binds once without it, as a lone server would.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    for family, kind, proto, _, address in addresses:
        shown = f"[{address[0]!s}]" if family == socket.AF_INET6 else f"{address[0]!s}"
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is fine
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                return f"{shown} port {port}: {reason}"
    return None


def free_port() -> int:
    """A loopback port that was free a moment ago, for a server started next that binds it itself."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
