"""Citizen-facing texts in German (default) and English, and the choice between them.

The texts themselves are data: the catalog file ``eid_gateway/catalog/citizen.toml`` (every text in both
languages, checked when it is read); templates look texts up with ``t(key)``.
The language is chosen once and then kept: ``?lang=`` (the citizen's language switch, or a SAML service's
``lang`` parameter on the SSO URL), then the service's wish for this request (OIDC ``ui_locales``, passed
on by :func:`hint_language`), then the cookie an earlier choice left, then ``Accept-Language``, then
German. A choice is remembered in the cookie (:func:`remember_language`), so that the card page and
every error page follow it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Final

from aiohttp import web

from eid_gateway import catalog
from eid_gateway.core.port import FailureKind
from eid_gateway.identity import Attribute

LANGUAGES: Final = catalog.LANGUAGES
DEFAULT_LANGUAGE: Final = catalog.DEFAULT_LANGUAGE

#: The texts of the gateway's pages (key -> language -> text), from the catalog file ``citizen.toml``.
TEXTS: Final = catalog.table("citizen", "texts")


_FAILURES: Final = catalog.table("citizen", "failures")
#: (title, text) per language for each way the card step can fail.
FAILURE_TEXTS: Final = {kind: catalog.title_and_text(_FAILURES, kind.value) for kind in FailureKind}
_ATTRIBUTES: Final = catalog.table("citizen", "attributes")
#: Each attribute as the citizen reads it, per language.
ATTRIBUTE_LABELS: Final = {attribute: _ATTRIBUTES[attribute.value] for attribute in Attribute}


#: Remembers a language chosen explicitly (switch, ``ui_locales``, SAML ``lang``); not personal data.
LANGUAGE_COOKIE: Final = "eidgw-lang"
LANGUAGE_COOKIE_MAX_AGE: Final = 365 * 24 * 3600
_HINT: Final = web.RequestKey("language_hint", str)


def hint_language(request: web.Request, lang: str | None) -> None:
    """A frontend passes on the language the service asked for (OIDC ``ui_locales``); ignored unless de/en."""
    if lang is not None and lang in LANGUAGES:
        request[_HINT] = lang


def chosen_language(request: web.Request) -> str | None:
    """The language somebody chose (``?lang=``, the service's hint, the cookie), None when nobody did."""
    for candidate in (request.query.get("lang"), request.get(_HINT), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate in LANGUAGES:
            return str(candidate)
    return None


def remember_language(*, secure: bool) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: a language chosen by ``?lang=`` or a service's hint goes into the
    cookie, so that pages outside the flow (the card page, error pages) keep it."""

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        asked = request.query.get("lang")
        lang = asked if asked in LANGUAGES else request.get(_HINT)
        if lang in LANGUAGES and request.cookies.get(LANGUAGE_COOKIE) != lang:
            # a header, not response.set_cookie(): aiohttp turns cookies into headers before this hook runs
            cookie: SimpleCookie = SimpleCookie()
            cookie[LANGUAGE_COOKIE] = str(lang)
            morsel = cookie[LANGUAGE_COOKIE]
            morsel.update({"max-age": str(LANGUAGE_COOKIE_MAX_AGE), "path": "/", "samesite": "Lax"})
            flags = "; HttpOnly" + ("; Secure" if secure else "")
            response.headers.add("Set-Cookie", morsel.OutputString() + flags)

    return hook


def negotiate_language(request: web.Request) -> str:
    """A chosen language (:func:`chosen_language`) wins; else the best ``Accept-Language`` match; else German."""
    chosen = chosen_language(request)
    if chosen is not None:
        return chosen
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for position, part in enumerate(request.headers.get("Accept-Language", "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGUAGES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # earlier entries win ties
        if q > best_q and q > 0:
            best, best_q = lang, q
    return best


#: Statuses with a title of their own; the rest share ``http_error_*`` (414 and 431 read alike for a citizen).
_HTTP_STATUS_KEYS: Final = {
    400: "http_400",
    404: "http_404",
    405: "http_405",
    413: "http_413",
    414: "http_431",
    431: "http_431",
}


def http_error_keys(status: int) -> tuple[str, str]:
    """The (title, text) keys of the page for an HTTP error ``status``: a 413 says "too large", not
    "page not available"."""
    prefix = _HTTP_STATUS_KEYS.get(status, "http_error")
    return f"{prefix}_title", f"{prefix}_text"


def text(key: str, lang: str, **values: object) -> str:
    """The text ``key`` in ``lang`` with ``{name}`` placeholders filled."""
    return catalog.lookup(TEXTS, key, lang, **values)
