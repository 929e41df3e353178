"""The citizen-facing error page for requests that must not be redirected (unknown client / URI).

Nothing from the request is echoed (no reflected content); the text is fixed per reason, in German
and English, in the layout of every citizen page (header, language switch).
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.render import render_page

PAGE_REASONS: dict[str, tuple[str, str]] = {
    "missing_client": (
        "Die Anfrage des Dienstes nennt keinen Client (client_id fehlt).",
        "The service's request names no client (client_id is missing).",
    ),
    "unknown_client": (
        "Der anfragende Dienst ist bei diesem Gateway nicht registriert.",
        "The requesting service is not registered with this gateway.",
    ),
    "missing_redirect_uri": (
        "Die Anfrage des Dienstes enthält keine Rücksprungadresse (redirect_uri).",
        "The service's request contains no return address (redirect_uri).",
    ),
    "unregistered_redirect_uri": (
        "Die Rücksprungadresse (redirect_uri) ist für diesen Dienst nicht registriert. "
        "Aus Sicherheitsgründen werden Sie nicht weitergeleitet.",
        "The return address (redirect_uri) is not registered for this service. "
        "For your security you are not being forwarded.",
    ),
    "bad_request": (
        "Die Anfrage konnte nicht gelesen werden.",
        "The request could not be read.",
    ),
}

#: Where the page's language switch leads: the same page for a fixed reason (GET, nothing echoed).
ERROR_PATH = "/oidc/error"

_TITLE = {"de": "Anmeldung nicht möglich", "en": "Sign-in not possible"}
_HINT = {
    "de": "Bitte kehren Sie zur Seite des Dienstes zurück und wenden Sie sich an dessen Betreiber, "
    "falls der Fehler bleibt.",
    "en": "Please return to the service's page and contact its operator if the problem persists.",
}
_CODE = {"de": "Fehlercode", "en": "Error code"}


def pick_language(ui_locales: tuple[str, ...], negotiated: str) -> str:
    """The first supported (de/en) of the request's ``ui_locales``, else the gateway's negotiated one."""
    for tag in ui_locales:
        primary = tag.split("-")[0].lower()
        if primary in ("de", "en"):
            return primary
    return negotiated


def error_page(request: web.Request, reason: str, language: str) -> web.Response:
    """HTTP 400 with a readable explanation in the gateway's layout; never a redirect.

    The language switch links to :data:`ERROR_PATH` with the reason: the request's own query (its
    redirect_uri) is never echoed, not even in a link.
    """
    de, en = PAGE_REASONS.get(reason, PAGE_REASONS["bad_request"])
    text = de if language == "de" else en
    code = reason if reason in PAGE_REASONS else "bad_request"
    return render_page(
        request,
        "failure.html",
        status=400,
        lang=language,
        failure_title=_TITLE[language],
        failure_text=f"{text} {_HINT[language]} ({_CODE[language]}: {code})",
        return_url=None,
        csrf_token="",
        other_lang_url=f"{ERROR_PATH}/{code}?" + urlencode({"lang": "en" if language == "de" else "de"}),
    )


async def error_reason_page(request: web.Request) -> web.Response:
    """GET /oidc/error/{reason}: the page of one fixed reason (the target of its language switch)."""
    reason = request.match_info["reason"]
    if reason not in PAGE_REASONS:
        raise web.HTTPNotFound()
    return error_page(request, reason, negotiate_language(request))
