"""Roles on the dashboard: ``view`` may only look (board, history), ``admin`` may act.

What a Bürgerbüro's admin needs to do without calling IT: take a decommissioned or stolen kiosk off the
board (which also voids its credential, see :mod:`eid_gateway.kiosks.board`), and export a kiosk's
history (for a fault report to IT or the reader's vendor). Both are POST with the session's CSRF
token; a ``view`` account gets a readable 403 page (German/English). Each action is written to the
log ``eid_gateway.kiosks.audit`` with the action, the kiosk, the role and a keyed hash of the staff
name (the gateway's audit key): who did it can be checked by someone holding the key, the log itself
holds no names.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from eid_gateway.audit import keyed_hash
from eid_gateway.kiosks import history_view
from eid_gateway.kiosks.auth import unauthorized
from eid_gateway.kiosks.dashboard import ENV, View, url_of
from eid_gateway.kiosks.keys import BOARD, REGISTRY, STAFF
from eid_gateway.kiosks.login import csrf_ok
from eid_gateway.kiosks.settings import KioskEntry
from eid_gateway.kiosks.staff import StaffSession
from eid_gateway.kiosks.texts import ADMIN, HISTORY, LOGIN, t
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import negotiate_language

audit = logging.getLogger("eid_gateway.kiosks.audit")

_MAX_FORM_BYTES: Final = 4096
FORMATS: Final = ("csv", "json")


def _view(request: web.Request) -> View:
    return View(negotiate_language(request), request.app[REGISTRY].settings.time_zone)


def message_page(request: web.Request, status: int, title: str, text: str) -> web.Response:
    """A short page staff can read (the dashboard's look), for refusals of the admin actions."""
    view = _view(request)
    html = ENV.get_template("kiosk_message.html").render(
        lang=view.lang,
        title=title,
        text=text,
        back=t(HISTORY, "back", view.lang),
        back_url=url_of(request, "kiosk-dashboard") + f"?lang={view.lang}",
        css_url=url_of(request, "kiosk-static", name="dashboard.css"),
    )
    return web.Response(status=status, text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def _signed_in(request: web.Request) -> StaffSession | web.Response:
    """The staff session; a browser without one goes to the login page, a machine gets 401."""
    staff = await request.app[STAFF].current(request)
    if staff is not None:
        return staff
    if "Authorization" in request.headers:
        raise unauthorized()
    lang = negotiate_language(request)
    return web.Response(
        status=303,
        headers={"Location": url_of(request, "kiosk-login") + f"?lang={lang}", "Cache-Control": "no-store"},
    )


@dataclass(frozen=True)
class _AdminAction:
    """An admin's checked POST on one kiosk: who, the posted form (without the CSRF token), which kiosk."""

    staff: StaffSession
    form: dict[str, str]
    kiosk_id: str
    entry: KioskEntry


async def _admin_action(request: web.Request) -> _AdminAction | web.Response:
    """An admin's session, the posted form (CSRF checked) and the kiosk on the board; else the page that
    says why not (the kiosk is looked up last: an unknown one is a 404 only for an admin's valid form)."""
    staff = await _signed_in(request)
    if isinstance(staff, web.Response):
        return staff
    lang = negotiate_language(request)
    if staff.role != "admin":
        audit.warning(
            "kiosk admin action refused action=%s role=%s staff=%s",
            request.match_info.route.name,
            staff.role,
            _who(request, staff),
        )
        return message_page(request, 403, t(ADMIN, "forbidden_title", lang), t(ADMIN, "forbidden", lang))
    try:
        form = await read_form(request, max_bytes=_MAX_FORM_BYTES)
    except FormError as exc:
        return message_page(request, exc.status, t(ADMIN, "forbidden_title", lang), t(ADMIN, "stale", lang))
    if not csrf_ok(form.get("csrf_token"), staff.csrf):
        return message_page(request, 403, t(ADMIN, "forbidden_title", lang), t(ADMIN, "stale", lang))
    kiosk_id = request.match_info["kiosk_id"]
    entry = request.app[BOARD].entry(kiosk_id)
    if entry is None:
        return _unknown(request)
    return _AdminAction(staff, {k: form[k] for k in form if k != "csrf_token"}, kiosk_id, entry)


def _who(request: web.Request, staff: StaffSession) -> str:
    lockout = request.app[STAFF].lockout
    return keyed_hash(lockout.key, "kiosk_staff", staff.name)[:16] if lockout is not None else "-"


def _unknown(request: web.Request) -> web.Response:
    lang = negotiate_language(request)
    return message_page(request, 404, t(HISTORY, "unknown_kiosk", lang), t(HISTORY, "unknown_kiosk", lang))


async def history_page(request: web.Request) -> web.Response:
    """Every staff role: the kiosk's last changes; admins also get the export and remove forms."""
    staff = await _signed_in(request)
    if isinstance(staff, web.Response):
        return staff
    kiosk_id = request.match_info["kiosk_id"]
    entry = request.app[BOARD].entry(kiosk_id)
    if entry is None:
        return _unknown(request)
    view = _view(request)
    events = await history_view.history_events(request, kiosk_id, history_view.SHOWN)
    forms: dict[str, object] = {"admin": None}
    if staff.role == "admin" and staff.csrf:
        forms["admin"] = {
            "csrf": staff.csrf,
            "export_url": url_of(request, "kiosk-history-export", kiosk_id=kiosk_id) + f"?lang={view.lang}",
            "remove_url": url_of(request, "kiosk-remove", kiosk_id=kiosk_id) + f"?lang={view.lang}",
            "manage": t(ADMIN, "manage", view.lang),
            "remove": t(ADMIN, "remove", view.lang),
            "remove_hint": t(ADMIN, "remove_hint", view.lang),
        }
    signed_in = t(LOGIN, "signed_in_as", view.lang, name=staff.name, role=t(LOGIN, f"role_{staff.role}", view.lang))
    forms["signed_in"] = signed_in
    return history_view.render_history(request, view, kiosk_id, entry.name, events, forms)


async def history_export(request: web.Request) -> web.Response:
    """Admin: the history as CSV or JSON (``format``), as a download."""
    action = await _admin_action(request)
    if isinstance(action, web.Response):
        return action
    staff, kiosk_id = action.staff, action.kiosk_id
    fmt = action.form.get("format", "csv")
    if fmt not in FORMATS:
        lang = negotiate_language(request)
        return message_page(request, 400, t(ADMIN, "forbidden_title", lang), t(ADMIN, "stale", lang))
    events = await history_view.history_events(request, kiosk_id, history_view.EXPORTED)
    audit.info(
        "kiosk admin action=export_history kiosk=%s format=%s events=%d role=%s staff=%s",
        kiosk_id,
        fmt,
        len(events),
        staff.role,
        _who(request, staff),
    )
    zone = request.app[REGISTRY].settings.time_zone
    return history_view.export_response(kiosk_id, action.entry.name, fmt, events, _view(request), zone)


async def remove_kiosk(request: web.Request) -> web.Response:
    """Admin: take a kiosk off the board on every node and void its credential."""
    action = await _admin_action(request)
    if isinstance(action, web.Response):
        return action
    staff, kiosk_id = action.staff, action.kiosk_id
    await request.app[BOARD].remove(action.entry, time.time())
    audit.info(
        "kiosk admin action=remove_from_board kiosk=%s role=%s staff=%s", kiosk_id, staff.role, _who(request, staff)
    )
    lang = negotiate_language(request)
    location = url_of(request, "kiosk-dashboard") + f"?lang={lang}&removed={kiosk_id}"
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
