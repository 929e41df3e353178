"""What the demo city service shows, in German and English: its texts (the catalog file
``eid_gateway/catalog/demo.toml``), and attribute values, SAML statuses and OIDC claims in words (never a
raw URN or a Python dict). The pages themselves are the gateway's templates (``demo_*.html`` extending
``base.html``): one design for every page a citizen sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aiohttp import web

from eid_gateway import catalog
from eid_gateway.identity import OIDC_CLAIMS, SAML_NAMES, Attribute, LevelOfAssurance
from eid_gateway.web.i18n import ATTRIBUTE_LABELS, negotiate_language
from eid_gateway.web.render import render_page
from saml.messages import (
    STATUS_AUTHN_FAILED,
    STATUS_NO_AUTHN_CONTEXT,
    STATUS_NO_PASSIVE,
    STATUS_REQUEST_DENIED,
    STATUS_REQUEST_UNSUPPORTED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_VERSION_MISMATCH,
    Status,
)

LANGS: Final = catalog.LANGUAGES

#: The demo's texts (key -> language -> text), from the catalog file ``demo.toml``.
TEXTS: Final = catalog.table("demo", "texts")

_SHOWN: Final = (
    Attribute.FAMILY_NAMES,
    Attribute.BIRTH_NAME,
    Attribute.GIVEN_NAMES,
    Attribute.DOCTORAL_DEGREE,
    Attribute.ARTISTIC_NAME,
    Attribute.DATE_OF_BIRTH,
    Attribute.PLACE_OF_BIRTH,
    Attribute.ADDRESS,
    Attribute.NATIONALITY,
    Attribute.DOCUMENT_TYPE,
    Attribute.ISSUING_STATE,
    Attribute.DATE_OF_EXPIRY,
    Attribute.COMMUNITY_ID,
    Attribute.RESIDENCE_PERMIT,
    Attribute.AGE_VERIFICATION,
    Attribute.PLACE_VERIFICATION,
)  # the pseudonym attribute equals the Subject's NameID, shown once as "subject"


def t(key: str, lang: str) -> str:
    return catalog.lookup(TEXTS, key, lang)


def _place(text: str) -> str:
    """A place in the gateway's documented JSON form, as one readable line."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    parts = [str(data[k]) for k in ("street",) if k in data]
    town = " ".join(str(data[k]) for k in ("zip_code", "city") if k in data)
    if town:
        parts.append(town)
    parts += [str(data[k]) for k in ("state", "country", "freetext", "no_place_info") if k in data]
    return ", ".join(parts) or text


def _date(text: str, lang: str) -> str:
    pieces = text.split("-")
    if lang == "de" and all(p.isdigit() for p in pieces):
        return ".".join(reversed(pieces))
    return text


def display_value(attribute: Attribute, value: str, lang: str) -> str:
    if attribute in (Attribute.ADDRESS, Attribute.PLACE_OF_BIRTH):
        return _place(value)
    if attribute in (Attribute.DATE_OF_BIRTH, Attribute.DATE_OF_EXPIRY):
        return _date(value, lang)
    if attribute in (Attribute.AGE_VERIFICATION, Attribute.PLACE_VERIFICATION):
        return t("yes", lang) if value == "true" else t("no", lang)
    return value


#: The legal placeholder pages of the demo configuration's [branding] links (/demo/legal/<name>).
LEGAL_PAGES: Final = ("impressum", "datenschutz", "barrierefreiheit", "hilfe")
_STATUS_WORDS: Final = {
    STATUS_REQUESTER: "word_requester",
    STATUS_RESPONDER: "word_responder",
    STATUS_VERSION_MISMATCH: "word_version",
    STATUS_REQUEST_DENIED: "word_denied",
    STATUS_AUTHN_FAILED: "word_failed",
    STATUS_NO_PASSIVE: "word_passive",
    STATUS_NO_AUTHN_CONTEXT: "word_context",
    STATUS_REQUEST_UNSUPPORTED: "word_unsupported",
}
_LOA_WORDS: Final = {
    LevelOfAssurance.HIGH.value: "loa_high",
    LevelOfAssurance.SUBSTANTIAL.value: "loa_substantial",
    LevelOfAssurance.LOW.value: "loa_low",
}


def status_words(status: Status, lang: str) -> str:
    """A SAML status as words ("Anfrage des Dienstes abgelehnt: abgebrochen"), not as URNs."""
    words = [t(_STATUS_WORDS.get(status.code, "word_unknown"), lang)]
    if status.sub_code:
        words.append(t(_STATUS_WORDS.get(status.sub_code, "word_unknown"), lang))
    return ": ".join(words)


def loa_words(acr: str | None, lang: str) -> str:
    return t(_LOA_WORDS.get(acr or "", "loa_none"), lang)


def saml_rows(
    attributes: Mapping[str, Sequence[str]], *, subject: str, loa: str | None, encrypted: bool, lang: str
) -> list[tuple[str, str]]:
    """(label, value) lines of a verified SAML sign-in, in the order a citizen reads them."""
    rows: list[tuple[str, str]] = []
    for attribute in _SHOWN:
        values = attributes.get(SAML_NAMES[attribute])
        if values:
            shown = "; ".join(display_value(attribute, v, lang) for v in values)
            rows.append((ATTRIBUTE_LABELS[attribute][lang], shown))
    rows.append((t("subject", lang), subject))
    rows.append((t("loa", lang), loa_words(loa, lang)))
    rows.append((t("encrypted", lang), t("yes" if encrypted else "no", lang)))
    rows.append((t("via", lang), t("via_saml", lang)))
    return rows


def _claim_value(attribute: Attribute, value: Any, lang: str) -> str:
    if isinstance(value, dict):  # address, place_of_birth: the OIDC members as one line
        parts = [str(value[k]) for k in ("formatted", "street_address") if k in value]
        town = " ".join(str(value[k]) for k in ("postal_code", "locality") if k in value)
        parts += [town] if town else []
        parts += [str(value[k]) for k in ("region", "country") if k in value]
        return ", ".join(parts)
    if isinstance(value, bool):
        return t("yes" if value else "no", lang)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if attribute in (Attribute.DATE_OF_BIRTH, Attribute.DATE_OF_EXPIRY):
        return _date(str(value), lang)
    return str(value)


def oidc_rows(userinfo: Mapping[str, Any], *, acr: str | None, lang: str) -> list[tuple[str, str]]:
    """(label, value) lines of a verified OpenID Connect sign-in (userinfo claims), like :func:`saml_rows`."""
    rows: list[tuple[str, str]] = []
    for attribute in _SHOWN:
        claim = OIDC_CLAIMS[attribute]
        if claim in userinfo and userinfo[claim] not in (None, "", [], {}):
            rows.append((ATTRIBUTE_LABELS[attribute][lang], _claim_value(attribute, userinfo[claim], lang)))
    if "sub" in userinfo:
        rows.append((t("subject", lang), str(userinfo["sub"])))
    rows.append((t("loa", lang), loa_words(acr, lang)))
    rows.append((t("signed_with", lang), t("yes", lang)))
    rows.append((t("via", lang), t("via_oidc", lang)))
    return rows


def render(
    request: web.Request, template: str, lang: str, *, status: int = 200, switch_url: str | None = None, **context: Any
) -> web.Response:
    """A demo page: the gateway's layout with the demo's texts (``d(key)``) and the portal's name.

    ``switch_url`` None leaves the language switch out (pages answering a POST or a callback: the link
    would repeat that request as a GET)."""

    def d(key: str) -> str:
        return t(key, lang)

    return render_page(
        request,
        template,
        status=status,
        lang=lang,
        d=d,
        language_switch=switch_url is not None,
        other_lang_url=switch_url,
        **context,
    )


def _request_lang(request: web.Request) -> str:
    asked = request.query.get("lang", "")
    return asked if asked in LANGS else negotiate_language(request)


class OidcDemoPages:
    """The pages of the demo's OpenID Connect relying party (frontends.oidc.demo_client.DemoPages)."""

    def __init__(self, portal_prefix: str) -> None:
        self.portal_prefix = portal_prefix

    def _again(self, lang: str) -> str:
        return f"{self.portal_prefix}/?lang={lang}"

    def start(self, request: web.Request, login_url: str) -> web.Response:
        lang = _request_lang(request)
        other = "en" if lang == "de" else "de"
        return render(
            request,
            "demo_start.html",
            lang,
            switch_url=f"{request.path}?lang={other}",
            login_url=login_url,
            oidc_login_url=None,
        )

    def signed_in(self, request: web.Request, claims: dict[str, Any], userinfo: dict[str, Any]) -> web.Response:
        lang = _request_lang(request)
        acr = claims.get("acr")
        rows = oidc_rows(userinfo, acr=acr if isinstance(acr, str) else None, lang=lang)
        return render(request, "demo_result.html", lang, rows=rows, again_url=self._again(lang))

    def failed(self, request: web.Request, reason: str) -> web.Response:
        lang = _request_lang(request)
        key = f"oidc_{reason}" if f"oidc_{reason}" in TEXTS else "oidc_failed"
        return render(
            request,
            "demo_error.html",
            lang,
            status=200 if reason == "denied" else 400,
            message_key=key,
            details=[],
            again_url=self._again(lang),
        )
