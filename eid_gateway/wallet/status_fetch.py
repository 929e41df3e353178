"""Fetching Token Status Lists for the verifier (the one wallet module with I/O besides ``web``).

A timeout on every fetch, a size limit on the answer, and a small cache per URI that honours the list's
``ttl`` and ``exp`` (:func:`~eid_gateway.wallet.statuslist.cache_lifetime`) capped by the configured
``cache_seconds``. Every failure is :class:`StatusUnavailable`: the sign-in is refused, never accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from eid_gateway.wallet.errors import StatusUnavailable
from eid_gateway.wallet.statuslist import MAX_TOKEN, cache_lifetime

MAX_STATUS_LIST = MAX_TOKEN
MAX_CACHED = 64
ACCEPT = "application/statuslist+jwt"


@dataclass(eq=False, repr=False, kw_only=True)  # a client, not a value
class StatusListFetcher:
    """GET a status list token by URI, with cache. One per gateway process; close it at shutdown."""

    timeout: float = 5.0
    cache_seconds: int = 300
    max_bytes: int = MAX_STATUS_LIST
    clock: Callable[[], float] = time.time
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _cached(self, uri: str) -> str | None:
        entry = self._cache.get(uri)
        if entry is None:
            return None
        token, until = entry
        if self.clock() >= until:
            del self._cache[uri]
            return None
        return token

    def _remember(self, uri: str, token: str) -> None:
        now = self.clock()
        lifetime = cache_lifetime(token, now=int(now), default=self.cache_seconds)
        if lifetime <= 0:
            return
        if len(self._cache) >= MAX_CACHED:
            self._cache = {u: e for u, e in self._cache.items() if e[1] > now}
            while len(self._cache) >= MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
        self._cache[uri] = (token, now + lifetime)

    async def fetch(self, uri: str) -> str:
        """The status list token at ``uri`` (http/https only), from the cache when still fresh."""
        if urlsplit(uri).scheme not in ("http", "https"):
            raise StatusUnavailable("the status list URI is not http(s)")
        cached = self._cached(uri)
        if cached is not None:
            return cached
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(
                uri,
                headers={"Accept": ACCEPT},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    raise StatusUnavailable(f"the status list answered HTTP {response.status}")
                body = await response.content.read(self.max_bytes + 1)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise StatusUnavailable(f"the status list could not be fetched ({type(exc).__name__})") from None
        if len(body) > self.max_bytes:
            raise StatusUnavailable("the status list is too large")
        try:
            token = body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise StatusUnavailable("the status list is not a compact JWT") from None
        self._remember(uri, token)
        return token
