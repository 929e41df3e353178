"""Listening ports: whether one can be bound now.

Standard library only, so a single-process ``serve``, ``simulator`` or ``demo-service`` checks its port
without importing gunicorn (:mod:`eid_gateway.workers`).
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
