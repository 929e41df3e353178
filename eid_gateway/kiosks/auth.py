"""Who may talk to the kiosk endpoints: kiosks by bearer token (client certificates: at the proxy),
staff by a signed-in session (:mod:`eid_gateway.kiosks.staff`, the login page) or, for machines such
as a monitoring check of ``status.json``, HTTP basic auth against a staff account's scrypt hash; a
Prometheus scraper by its own bearer token (``metrics_token_hash``), never a staff password.

Every check is constant-time in the secret. A successful basic-auth check is remembered for a minute
(keyed by a hash of the header) so that repeated machine requests do not each pay a full scrypt run.
Failed staff checks (login form and basic auth alike) are counted per address and per account
(:mod:`eid_gateway.kiosks.lockout`); a locked address or account gets 429 before scrypt runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from eid_gateway.kiosks.credentials import verify_kiosk_credential, verify_staff_password
from eid_gateway.kiosks.lockout import Locked, StaffLockout, too_many_failures
from eid_gateway.kiosks.settings import KioskEntry, Role, StaffAccount
from eid_gateway.kiosks.staff import StaffSession, StaffSessions

#: Compared against for an unknown account name when no account is configured.
_DUMMY_STAFF_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


def _dummy_like(stored: str) -> str:
    """A hash no password matches, with the cost of ``stored``: an unknown name costs the same scrypt run
    as a known one, so the time of an answer does not tell which names exist."""
    n, r, p, salt, digest = stored.split("$")[1:]
    return "$".join(("scrypt", n, r, p, "A" * len(salt), "A" * len(digest)))


STAFF_REALM = 'Basic realm="eid-gateway kiosk dashboard", charset="UTF-8"'


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return None
    return token.strip()


def kiosk_authorized(request: web.Request, entry: KioskEntry | None) -> bool:
    """Bearer token against the kiosk's hash (constant time; an unknown kiosk costs the same).
    Client certificates are the reverse proxy's job (TLS ends there; docs/kiosks.md)."""
    token = bearer_token(request) or ""
    ok = verify_kiosk_credential(token, entry.credential_hash if entry is not None else None)
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


class StaffLocked(Exception):
    """A sign-in refused without a password check: the address or account is locked."""

    def __init__(self, locked: Locked) -> None:
        super().__init__(locked.scope)
        self.locked = locked


class StaffAuth:
    """Staff accounts, their sessions and the scrape token: the one place that says who is signed in."""

    def __init__(
        self,
        accounts: Sequence[StaffAccount],
        sessions: StaffSessions,
        *,
        metrics_token_hash: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        remember_seconds: float = 60.0,
        lockout: StaffLockout | None = None,
    ) -> None:
        self.use_accounts(accounts, metrics_token_hash)
        #: Called before every check: re-reads the accounts when the config file changed (reload.py).
        self.refresh: Callable[[], object] = lambda: None
        self.sessions = sessions
        self.clock = clock
        self.remember = remember_seconds
        #: Failure backoff shared over the store (the gateway always sets it; None: no backoff).
        self.lockout = lockout
        # scrypt is slow and memory-hard on purpose; a flood of wrong passwords must not take every
        # thread and all memory, so at most two checks run at once (the rest wait their turn)
        self._slots = asyncio.Semaphore(2)

    def use_accounts(self, accounts: Sequence[StaffAccount], metrics_token_hash: str | None) -> None:
        """The accounts and scrape token from now on (a reload; a removed account's sessions end at once,
        since every request looks its account up again)."""
        self.accounts = {a.name: a for a in accounts}
        costliest = max(accounts, key=lambda a: int(a.password_hash.split("$")[1]), default=None)
        self._dummy = _dummy_like(costliest.password_hash) if costliest is not None else _DUMMY_STAFF_HASH
        self.metrics_token_hash = metrics_token_hash
        # remembered basic-auth checks may belong to a removed or changed account: forget them
        self._ok: dict[bytes, tuple[float, StaffSession]] = {}

    async def sign_in(self, request: web.Request, user: str, password: str) -> Role | None:
        """The account's role when name and password match; None (and one failure counted) otherwise.
        Raises :class:`StaffLocked` while the address or account is locked, without running scrypt."""
        self.refresh()
        await self._refuse_if_locked(request, user)  # no waiting for a slot while locked
        async with self._slots:
            # again in the slot: a lock set while this request waited holds for it too; and a failure
            # is counted before the slot is free, so the next one in line already sees its lock
            await self._refuse_if_locked(request, user)
            account = self.accounts.get(user)
            stored = account.password_hash if account is not None else self._dummy
            ok = await asyncio.to_thread(verify_staff_password, password, stored) and account is not None
            locked = None if ok or self.lockout is None else await self.lockout.failed(request, user)
        if locked is not None:
            raise StaffLocked(locked)
        return account.role if ok and account is not None else None

    async def _refuse_if_locked(self, request: web.Request, user: str) -> None:
        if self.lockout is not None:
            locked = await self.lockout.locked(request, user)
            if locked is not None:
                raise StaffLocked(locked)

    async def basic(self, request: web.Request) -> StaffSession | None:
        """The staff account of an HTTP basic Authorization header (machines); raises HTTP 429 while locked."""
        header = request.headers.get("Authorization", "")
        parsed = parse_basic(header)
        if parsed is None:
            return None
        key = hashlib.sha256(header.encode("utf-8")).digest()
        now = self.clock()
        known = self._ok.get(key)
        if known is not None and known[0] > now:
            return known[1]
        user, password = parsed
        try:
            role = await self.sign_in(request, user, password)
        except StaffLocked as exc:
            raise too_many_failures(exc.locked) from None
        if role is None:
            return None
        if len(self._ok) > 1000:
            self._ok = {k: v for k, v in self._ok.items() if v[0] > now}
        session = StaffSession(name=user, role=role, csrf="")
        self._ok[key] = (now + self.remember, session)
        return session

    async def current(self, request: web.Request) -> StaffSession | None:
        """The signed-in staff member: the session cookie first, then HTTP basic (machines)."""
        self.refresh()
        session = await self.sessions.get(request)
        if session is None:
            return await self.basic(request)
        # the account as configured now: a removed account's sessions end with the reload that removes it
        account = self.accounts.get(session.name)
        if account is None:
            return None
        return session if account.role == session.role else StaffSession(session.name, account.role, session.csrf)

    async def check(self, request: web.Request) -> bool:
        return await self.current(request) is not None

    async def require(self, request: web.Request) -> StaffSession:
        session = await self.current(request)
        if session is None:
            raise unauthorized()
        return session

    def scraper(self, request: web.Request) -> bool:
        """True for the Prometheus scrape token (constant time; False when none is configured)."""
        self.refresh()
        token = bearer_token(request)
        if token is None or self.metrics_token_hash is None:
            return False
        return verify_kiosk_credential(token, self.metrics_token_hash)


def unauthorized() -> web.HTTPUnauthorized:
    """401 for a request without a valid staff sign-in (machines: the basic challenge)."""
    return web.HTTPUnauthorized(
        text="staff sign-in required (Anmeldung erforderlich)\n",
        headers={"WWW-Authenticate": STAFF_REALM, "Cache-Control": "no-store"},
    )
