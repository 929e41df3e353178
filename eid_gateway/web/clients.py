"""Who is asking: the client's address behind trusted reverse proxies, and the operators-only rule.

One place decides it for the rate limiter, ``/metrics`` and ``/readyz``: the TCP peer is believed only
when it is not a trusted proxy; a proxy's ``X-Forwarded-For`` is read from the right (the hop the proxy
itself added) to the first address that is not a proxy. Anything else in that header is client-written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def networks(cidrs: Iterable[str]) -> list[Network]:
    """CIDR strings (validated by the config) as networks."""
    return [ipaddress.ip_network(n, strict=False) for n in cidrs]


def client_ip(request: web.Request, trusted: Sequence[Network]) -> Address | None:
    """The client's address, or ``None`` when it cannot be told: the peer is no IP address, or a trusted
    proxy passed on a hop that is not one (a proxy that forwards client-written headers unchecked)."""
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return None
    if not any(peer in net for net in trusted):
        return peer
    forwarded = request.headers.get("X-Forwarded-For", "")
    if not forwarded.strip():
        return peer
    for hop in reversed(forwarded.split(",")):
        try:
            ip = ipaddress.ip_address(hop.strip())
        except ValueError:
            return None
        if not any(ip in net for net in trusted):
            return ip
    return peer  # every hop a proxy: the request began on a proxy's machine


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The client's address as text (rate-limit keys): the TCP peer, or, when that is a trusted proxy,
    the last address in X-Forwarded-For that is not itself a trusted proxy. When that cannot be told,
    the peer's (the proxy's) address: such clients share one limit rather than escape it."""
    ip = client_ip(request, trusted)
    return str(ip) if ip is not None else (request.remote or "")


class OperatorRule:
    """Operator data (``/metrics``, ``/readyz`` details) only for clients from ``allow`` (``[metrics]
    allow``), judged by the forwarded client address: behind a proxy on the same machine the TCP peer
    is always the proxy, so checking the peer would let anyone through."""

    def __init__(self, allow: Iterable[str], trusted_proxies: Iterable[str]) -> None:
        self.allow = networks(allow)
        self.trusted = networks(trusted_proxies)

    def permits(self, request: web.Request) -> bool:
        ip = client_ip(request, self.trusted)
        return ip is not None and any(ip in net for net in self.allow)
