"""Abuse limits: sign-in starts per client address and per service, a cap on the sign-ins one address
may have pending, and limits on failed TC Token and refresh requests; all counted in the shared Store,
so they hold across every gateway node.

Why only misses on the TC Token and refresh endpoints: a valid reference moves its flow exactly once
(compare-and-set in the store), so valid requests are already bounded by the start limits, and each one
would cost a store round trip to count. What needs limiting there is guessing: references that name no
flow (and, for the TC Token, references already used). A refresh of a known flow from the wrong browser
or a second time is not counted: it needs a valid reference, and counting it would let AusweisApp's own
redirects, or reloads behind a shared address, lock honest citizens out. Once an address is over a
limit, this node refuses it without asking the store until the window ends (another node learns it on
that address's next miss).

Client addresses never reach the store or the logs in clear: counter keys hold a keyed hash.
X-Forwarded-For is believed only from the configured reverse proxies.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from typing import Final

from aiohttp import web

from eid_gateway.config import LimitsConfig
from eid_gateway.metrics import GatewayMetrics
from eid_gateway.store.base import Counter, Store, window_remaining
from eid_gateway.web.clients import Network, client_address, networks
from eid_gateway.web.render import render_page

log = logging.getLogger("eid_gateway.ratelimit")
_BLOCKED_MAX: Final = 100_000


@dataclass(frozen=True)
class Limited:
    """A refusal: which limit, and when the client may try again (seconds)."""

    kind: str
    retry_after: int


def too_many_requests(request: web.Request, limited: Limited, lang: str | None = None) -> web.Response:
    """HTTP 429 with Retry-After and a page that says what happened and when to try again."""
    minutes = max(1, math.ceil(limited.retry_after / 60))
    response = render_page(
        request,
        "message.html",
        status=429,
        title_key="rate_limited_title",
        text_key="rate_limited_text",
        values={"minutes": minutes},
        error_id=None,
        **({"lang": lang} if lang else {}),
    )
    response.headers["Retry-After"] = str(limited.retry_after)
    return response


@dataclass(eq=False)
class RateLimiter:
    """The ``[limits]``, counted in the shared store: each check answers a :class:`Limited` or ``None``."""

    store: Store
    limits: LimitsConfig
    #: Keys the hash that stands for a client address in the counters.
    key: bytes
    flow_ttl: float
    metrics: GatewayMetrics | None = None
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    #: The addresses this node refuses without asking the store, until their window ends.
    _blocked: OrderedDict[tuple[str, str], float] = field(init=False, default_factory=OrderedDict)

    @cached_property
    def trusted(self) -> list[Network]:
        return networks(self.limits.trusted_proxies)

    def _id(self, request: web.Request) -> str:
        address = client_address(request, self.trusted)
        return hmac.new(self.key, address.encode("utf-8"), hashlib.sha256).hexdigest()[:24]

    def _refuse(self, kind: str, retry_after: float) -> Limited:
        if self.metrics is not None:
            self.metrics.limited.labels(kind).inc()
        log.info("rate limit hit kind=%s retry_after=%d", kind, math.ceil(retry_after))
        return Limited(kind, max(1, math.ceil(retry_after)))

    async def check_start(self, request: web.Request, service_id: str) -> Limited | None:
        """Count a sign-in start (one store round trip for all three counters); refuse when over."""
        if not self.limits.enabled:
            return None
        lim, who = self.limits, self._id(request)
        window = float(lim.window_seconds)
        counters = [
            Counter("rl_start_ip", who, window),
            Counter("rl_start_service", service_id, window),
            Counter("rl_pending_ip", who, self.flow_ttl),
        ]
        ip_n, service_n, pending_n = await self.store.hit(counters)
        now = self.clock()
        if pending_n > lim.pending_per_ip:
            return self._refuse("pending_ip", window_remaining(now, self.flow_ttl))
        if ip_n > lim.starts_per_ip:
            return self._refuse("start_ip", window_remaining(now, window))
        if service_n > lim.starts_per_service:
            return self._refuse("start_service", window_remaining(now, window))
        return None

    def blocked(self, request: web.Request, kind: str) -> Limited | None:
        """Refuse without a store round trip while this address is known to be over ``kind``'s limit."""
        if not self.limits.enabled:
            return None
        until = self._blocked.get((kind, self._id(request)))
        if until is None:
            return None
        remaining = until - self.clock()
        if remaining <= 0:
            self._blocked.pop((kind, self._id(request)), None)
            return None
        return self._refuse(kind, remaining)

    async def count_miss(self, request: web.Request, kind: str) -> Limited | None:
        """Count a TC Token / refresh request that moved no flow; over the limit, block the address."""
        if not self.limits.enabled:
            return None
        limit = self.limits.tctoken_per_ip if kind == "tctoken" else self.limits.refresh_per_ip
        window = float(self.limits.window_seconds)
        who = self._id(request)
        [n] = await self.store.hit([Counter(f"rl_{kind}_ip", who, window)])
        if n <= limit:
            return None
        now = self.clock()
        self._blocked[(kind, who)] = now + window_remaining(now, window)
        if len(self._blocked) > _BLOCKED_MAX:
            self._blocked.popitem(last=False)
        return self._refuse(kind, window_remaining(now, window))
