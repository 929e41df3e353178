"""Page rendering: one jinja2 environment (autoescaping on), the base layout, and the language switch.

Frontends that show a page (e.g. the SAML POST form) may use :func:`render_page` too, so that every
page of the gateway shares the layout, the language choice and the stylesheet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from eid_gateway.core.port import EidRequest
from eid_gateway.identity import Attribute
from eid_gateway.services import Service
from eid_gateway.web.branding import branding_of
from eid_gateway.web.i18n import ATTRIBUTE_LABELS, LANGUAGES, http_error_keys, negotiate_language, text

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
STATIC_DIR: Final = Path(__file__).parent / "static"

_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates change only with a deployment (restart); no stat() per page
)


def language_switch_url(request: web.Request, lang: str) -> str:
    """The current path with ``lang`` set (other query parameters kept)."""
    query = [(k, v) for k, v in request.query.items() if k != "lang"]
    query.append(("lang", lang))
    return request.path + "?" + urlencode(query)


def render_html(request: web.Request, template: str, **context: Any) -> str:
    """Render ``template`` with ``t`` (texts in the request's language), ``lang`` and the switch link.

    ``language_switch=False`` leaves the switch out: on a page answering a POST (or one that posts itself
    on) the link would repeat the request as a GET and land somewhere else.
    """
    lang = str(context.pop("lang", None) or negotiate_language(request))
    other = [code for code in LANGUAGES if code != lang][0]
    switch = bool(context.pop("language_switch", True))
    # a page may name its own switch target (the demo's result page: its POSTed address has no GET)
    switch_url = str(context.pop("other_lang_url", None) or language_switch_url(request, other))

    def t(key: str, **values: object) -> str:
        return text(key, lang, **values)

    return _ENV.get_template(template).render(
        t=t,
        lang=lang,
        other_lang=other,
        other_lang_url=switch_url if switch else "",
        branding=branding_of(request),
        **context,
    )


def render_page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """An HTML response for ``template``; never cached (pages carry flow state and CSRF tokens)."""
    response = web.Response(
        text=render_html(request, template, **context), status=status, content_type="text/html", charset="utf-8"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def signin_data_context(service: Service, req: EidRequest, shown: Iterable[Attribute], lang: str) -> dict[str, Any]:
    """What a sign-in page (signin.html, wallet.html) says about the service and its request, in ``lang``:
    the service's name and, for signin_parts.html's data list, each ``shown`` attribute (label, required?)
    in the attributes' order, and the minimum age (listed on its own, so its age check is not listed too)."""
    return {
        "lang": lang,
        "service_name": service.name_de if lang == "de" else service.name_en,
        "attributes": [
            (ATTRIBUTE_LABELS[a][lang], a in req.required)
            for a in sorted(shown, key=list(Attribute).index)
            if not (a is Attribute.AGE_VERIFICATION and req.minimum_age)
        ],
        "minimum_age": req.minimum_age,
    }


def render_message(
    request: web.Request,
    title_key: str,
    text_key: str,
    *,
    status: int,
    values: Mapping[str, object] | None = None,
    error_id: str | None = None,
    lang: str | None = None,
) -> web.Response:
    """A simple page with a heading and one paragraph (not found, already used, internal error...);
    in ``lang`` when given (a flow's language), else the request's."""
    return render_page(
        request,
        "message.html",
        status=status,
        title_key=title_key,
        text_key=text_key,
        values=dict(values or {}),
        error_id=error_id,
        lang=lang,
    )


def render_http_error(request: web.Request, status: int) -> web.Response:
    """The page for an HTTP error ``status`` (4xx): titled by what happened (413: too large)."""
    title_key, text_key = http_error_keys(status)
    return render_message(request, title_key, text_key, status=status, values={"status": status})
