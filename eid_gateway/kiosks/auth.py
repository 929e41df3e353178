"""Who may talk to the kiosk endpoints: kiosks by bearer token (+ optional client certificate pin),
staff by HTTP basic auth against a scrypt hash.

Both checks are constant-time in the secret. A successful staff check is remembered for a minute
(keyed by a hash of the header) so that the dashboard's page, event stream and a monitoring scraper do
not each pay a full scrypt run. Failed staff checks are counted per address and per account
(:mod:`eid_gateway.kiosks.lockout`); a locked address or account gets 429 before scrypt runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable

from aiohttp import web

from eid_gateway.kiosks.credentials import verify_kiosk_credential, verify_staff_password
from eid_gateway.kiosks.lockout import StaffLockout, too_many_failures
from eid_gateway.kiosks.settings import KioskEntry

STAFF_REALM = 'Basic realm="eid-gateway kiosk dashboard", charset="UTF-8"'


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token.strip()


def peer_cert_sha256(request: web.Request) -> str | None:
    transport = request.transport
    ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_obj is None:
        return None
    der = ssl_obj.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest() if der else None


def kiosk_authorized(request: web.Request, entry: KioskEntry | None) -> bool:
    """Bearer token against the kiosk's hash; the certificate pin too when one is configured."""
    token = bearer_token(request) or ""
    ok = verify_kiosk_credential(token, entry.credential_hash if entry is not None else None)
    if ok and entry is not None and entry.client_cert_sha256 is not None:
        got = peer_cert_sha256(request) or ""
        ok = hmac.compare_digest(got.encode(), entry.client_cert_sha256.encode())
    return ok and bool(token)


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value or len(value) > 1024:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and the plain ValueError of non-ASCII input
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


class StaffAuth:
    def __init__(
        self,
        user: str,
        password_hash: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        remember_seconds: float = 60.0,
        lockout: StaffLockout | None = None,
    ) -> None:
        self.user = user
        self.password_hash = password_hash
        self.clock = clock
        self.remember = remember_seconds
        #: Failure backoff shared over the store (the gateway always sets it; None: no backoff).
        self.lockout = lockout
        self._ok: dict[bytes, float] = {}
        # scrypt is slow and memory-hard on purpose; a flood of wrong passwords must not take every
        # thread and all memory, so at most two checks run at once (the rest wait their turn)
        self._slots = asyncio.Semaphore(2)

    async def check(self, request: web.Request) -> bool:
        """True for the staff credential; raises HTTP 429 while the address or account is locked."""
        header = request.headers.get("Authorization", "")
        parsed = parse_basic(header)
        if parsed is None:
            return False
        key = hashlib.sha256(header.encode("utf-8")).digest()
        now = self.clock()
        expiry = self._ok.get(key)
        if expiry is not None and expiry > now:
            return True
        user, password = parsed
        await self._refuse_if_locked(request, user)  # no waiting for a slot while locked
        async with self._slots:
            # again in the slot: a lock set while this request waited holds for it too; and a failure
            # is counted before the slot is free, so the next one in line already sees its lock
            await self._refuse_if_locked(request, user)
            pw_ok = await asyncio.to_thread(verify_staff_password, password, self.password_hash)
            ok = pw_ok and hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8"))
            locked = None if ok or self.lockout is None else await self.lockout.failed(request, user)
        if locked is not None:
            raise too_many_failures(locked)
        if ok:
            if len(self._ok) > 1000:
                self._ok = {k: v for k, v in self._ok.items() if v > now}
            self._ok[key] = now + self.remember
        return ok

    async def _refuse_if_locked(self, request: web.Request, user: str) -> None:
        if self.lockout is not None:
            locked = await self.lockout.locked(request, user)
            if locked is not None:
                raise too_many_failures(locked)

    async def require(self, request: web.Request) -> None:
        if not await self.check(request):
            raise web.HTTPUnauthorized(
                text="staff credentials required\n",
                headers={"WWW-Authenticate": STAFF_REALM, "Cache-Control": "no-store"},
            )
