"""The staff login page of the kiosk dashboard (German and English, in the gateway's layout) and logout.

A sign-in runs through :meth:`eid_gateway.kiosks.auth.StaffAuth.sign_in`, so the login form and HTTP
basic share the lockout rules of :mod:`eid_gateway.kiosks.lockout`. CSRF: the login form carries a
token that must equal the one in its HttpOnly, SameSite=Strict cookie (a cross-site page can neither
read nor send it); the logout form carries the session's own token. Every answer is a page staff can
read: 401 for a wrong password, 403 for a stale form, 429 (with Retry-After) while locked.
"""

from __future__ import annotations

import hmac
import logging
import math
from typing import Final

from aiohttp import web

from eid_gateway.kiosks.auth import StaffLocked
from eid_gateway.kiosks.keys import STAFF
from eid_gateway.kiosks.staff import LOGIN_COOKIE, new_token, well_formed
from eid_gateway.kiosks.texts import LOGIN, t
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.render import render_page

log = logging.getLogger("eid_gateway.kiosks")

_MAX_FORM_BYTES: Final = 4096
_LOGIN_TOKEN_SECONDS: Final = 3600


def _dashboard_url(request: web.Request, lang: str) -> str:
    return str(request.app.router["kiosk-dashboard"].url_for()) + f"?lang={lang}"


def _login_url(request: web.Request) -> str:
    return str(request.app.router["kiosk-login"].url_for())


def _page(
    request: web.Request,
    *,
    status: int = 200,
    message: str | None = None,
    kind: str = "error",
    name: str = "",
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The login form with a fresh CSRF token in the form and in its cookie."""
    lang = negotiate_language(request)
    token = new_token()
    response = render_page(
        request,
        "kiosk_login.html",
        status=status,
        lang=lang,
        k={key: t(LOGIN, key, lang) for key in LOGIN},
        message=message,
        message_kind=kind,
        name=name,
        action=_login_url(request) + f"?lang={lang}",
        csrf_token=token,
    )
    response.headers.update(headers or {})
    request.app[STAFF].sessions.set_cookie(response, LOGIN_COOKIE, token, _LOGIN_TOKEN_SECONDS)
    return response


async def login_page(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    if await staff.sessions.get(request) is not None:
        raise web.HTTPSeeOther(_dashboard_url(request, negotiate_language(request)))
    signed_out = request.query.get("signed_out") == "1"
    lang = negotiate_language(request)
    return _page(request, message=t(LOGIN, "signed_out", lang) if signed_out else None, kind="status")


def csrf_ok(sent: str | None, expected: str | None) -> bool:
    return well_formed(sent) and well_formed(expected) and hmac.compare_digest(str(sent), str(expected))


async def login_post(request: web.Request) -> web.Response:
    lang = negotiate_language(request)
    try:
        form = await read_form(request, max_bytes=_MAX_FORM_BYTES)
    except FormError as exc:
        return _page(request, status=exc.status, message=t(LOGIN, "stale", lang))
    if not csrf_ok(form.get("csrf_token"), request.cookies.get(LOGIN_COOKIE)):
        return _page(request, status=403, message=t(LOGIN, "stale", lang))
    name, password = form.get("name", ""), form.get("password", "")
    if not name or not password or len(name) > 200 or len(password) > 1024:
        return _page(request, status=401, message=t(LOGIN, "wrong", lang), name=name[:200])
    staff = request.app[STAFF]
    try:
        role = await staff.sign_in(request, name, password)
    except StaffLocked as exc:
        minutes = max(1, math.ceil(exc.locked.retry_after / 60))
        return _page(
            request,
            status=429,
            message=t(LOGIN, "locked", lang, minutes=minutes),
            name=name,
            headers={"Retry-After": str(exc.locked.retry_after)},
        )
    if role is None:
        return _page(request, status=401, message=t(LOGIN, "wrong", lang), name=name)
    response = _see_other(_dashboard_url(request, lang))
    await staff.sessions.start(response, name, role)
    response.del_cookie(LOGIN_COOKIE, path="/kiosks/")
    log.info("staff signed in to the kiosk dashboard role=%s", role)  # no name: personal data stays out
    return response


async def logout(request: web.Request) -> web.Response:
    staff = request.app[STAFF]
    lang = negotiate_language(request)
    session = await staff.sessions.get(request)
    try:
        form = await read_form(request, max_bytes=_MAX_FORM_BYTES)
    except FormError:
        form = None
    if session is not None and (form is None or not csrf_ok(form.get("csrf_token"), session.csrf)):
        return _page(request, status=403, message=t(LOGIN, "stale", lang))
    response = _see_other(_login_url(request) + f"?lang={lang}&signed_out=1")
    await staff.sessions.end(request, response)
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
