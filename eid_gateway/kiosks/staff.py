"""Staff sessions of the kiosk dashboard: server-side in the gateway's Store, a random cookie in the browser.

Why server-side: signing out ends the session on every node at once (the Store is shared), and the
TTL ends it even when the browser keeps the cookie. The Store holds only a SHA-256 of the session
id, so a copy of the SQLite file or Redis does not sign anyone in. The cookie is HttpOnly,
SameSite=Strict (no cross-site request carries it) and Secure whenever the public origin is https.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from eid_gateway.kiosks.settings import Role
from eid_gateway.store.base import Store

SESSION_COOKIE: Final = "eid_kiosk_staff"
#: The login form's CSRF token (double submit: this cookie and the form field must match).
LOGIN_COOKIE: Final = "eid_kiosk_login"
COOKIE_PATH: Final = "/kiosks/"
_NAMESPACE: Final = "kiosk_staff_session"
_MAX_ID: Final = 100


@dataclass(frozen=True)
class StaffSession:
    """Who is signed in, with which role, and the token the logout form must return."""

    name: str
    role: Role
    csrf: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed(token: str | None) -> bool:
    return token is not None and 20 <= len(token) <= _MAX_ID and token.isascii()


class StaffSessions:
    def __init__(self, store: Store, ttl_seconds: float, *, secure: bool) -> None:
        self.store = store
        self.ttl = ttl_seconds
        self.secure = secure

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode("ascii")).hexdigest()

    def set_cookie(self, response: web.StreamResponse, name: str, value: str, max_age: float) -> None:
        response.set_cookie(
            name,
            value,
            path=COOKIE_PATH,
            max_age=int(max_age),
            httponly=True,
            secure=self.secure,
            samesite="Strict",
        )

    async def start(self, response: web.StreamResponse, name: str, role: Role) -> StaffSession:
        """A new session (a fresh id: no fixation through a cookie set before sign-in)."""
        session_id = new_token()
        session = StaffSession(name=name, role=role, csrf=new_token())
        value = json.dumps({"name": session.name, "role": session.role, "csrf": session.csrf})
        await self.store.put_value(_NAMESPACE, self._key(session_id), value, self.ttl)
        self.set_cookie(response, SESSION_COOKIE, session_id, self.ttl)
        return session

    async def get(self, request: web.Request) -> StaffSession | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not well_formed(session_id):
            return None
        assert session_id is not None
        raw = await self.store.get_value(_NAMESPACE, self._key(session_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return StaffSession(name=data["name"], role=data["role"], csrf=data["csrf"])

    async def end(self, request: web.Request, response: web.StreamResponse) -> None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if well_formed(session_id):
            assert session_id is not None
            await self.store.take_value(_NAMESPACE, self._key(session_id))
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="Strict")
