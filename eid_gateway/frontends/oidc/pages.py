"""The citizen-facing error page for requests that must not be redirected (unknown client / URI).

Nothing from the request is echoed (no reflected content); the text is fixed per reason, in German
and English.
"""

from __future__ import annotations

import html

from aiohttp import web

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

_TITLE = {"de": "Anmeldung nicht möglich", "en": "Sign-in not possible"}
_HINT = {
    "de": "Bitte kehren Sie zur Seite des Dienstes zurück und wenden Sie sich an dessen Betreiber, "
    "falls der Fehler bleibt.",
    "en": "Please return to the service's page and contact its operator if the problem persists.",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def pick_language(ui_locales: tuple[str, ...], negotiated: str) -> str:
    """The first supported (de/en) of the request's ``ui_locales``, else the gateway's negotiated one."""
    for tag in ui_locales:
        primary = tag.split("-")[0].lower()
        if primary in ("de", "en"):
            return primary
    return negotiated


def error_page(reason: str, language: str) -> web.Response:
    """HTTP 400 with a readable explanation; never a redirect."""
    de, en = PAGE_REASONS.get(reason, PAGE_REASONS["bad_request"])
    text = de if language == "de" else en
    body = (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{html.escape(_TITLE[language])}</title>"
        '<link rel="stylesheet" href="/static/style.css"></head><body><main>'
        f"<h1>{html.escape(_TITLE[language])}</h1><p>{html.escape(text)}</p>"
        f"<p>{html.escape(_HINT[language])}</p>"
        f"<p><small>Fehlercode / error code: {html.escape(reason)}</small></p></main></body></html>"
    )
    return web.Response(status=400, text=body, content_type="text/html", headers=SECURITY_HEADERS)
