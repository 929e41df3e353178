"""The citizen-facing error page for requests that must not be redirected (unknown client / URI).

Nothing from the request is echoed (no reflected content); the text is fixed per reason, in German
and English, in the layout of every citizen page (header, language switch).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from aiohttp import web

from eid_gateway import catalog
from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.render import render_page

#: The sentence per reason (catalog file citizen.toml, ``[oidc_reasons]``).
PAGE_REASONS: Final = catalog.table("citizen", "oidc_reasons")

#: Where the page's language switch leads: the same page for a fixed reason (GET, nothing echoed).
ERROR_PATH = "/oidc/error"

#: The page's title, the hint and the word before the code (``[oidc_error]``).
_TEXTS: Final = catalog.table("citizen", "oidc_error")


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
    code = reason if reason in PAGE_REASONS else "bad_request"
    text = catalog.lookup(PAGE_REASONS, code, language)
    hint, word = catalog.lookup(_TEXTS, "hint", language), catalog.lookup(_TEXTS, "code", language)
    return render_page(
        request,
        "failure.html",
        status=400,
        lang=language,
        failure_title=catalog.lookup(_TEXTS, "title", language),
        failure_text=f"{text} {hint} ({word}: {code})",
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
