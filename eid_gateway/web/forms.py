"""Strict reading of url-encoded form bodies: the one way a handler of the gateway reads a form.

aiohttp's ``request.post()`` also parses multipart bodies, decodes with whatever charset the client
names and lets invalid percent-escapes through; a malformed body then raises ValueError,
UnicodeDecodeError or LookupError from inside the parser, which reached the citizen as HTTP 500 and
the log as an ERROR line (issue 13). Every form the gateway takes comes from an HTML form or an OAuth
client, i.e. ``application/x-www-form-urlencoded`` in UTF-8, so anything else is refused here with
one exception type, :class:`FormError`, which each endpoint maps to its protocol's error (a page, an
OAuth error, a JSON error); the ``error_pages`` middleware turns one no handler mapped into the usual
400 page.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import hdrs, web
from multidict import MultiDict, MultiDictProxy

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
#: No form of the gateway has more than a dozen fields; this bounds the work a body can cause.
MAX_FORM_FIELDS: Final = 100
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")


class FormError(ValueError):
    """The body is not a well-formed UTF-8 url-encoded form.

    ``reason`` is fixed text naming the defect, never content of the body: safe to log and to send
    back. ``status`` is the HTTP status that fits (400 malformed, 413 too large, 415 another media type).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def parse_form(
    body: bytes, content_type: str | None, charset: str | None, *, max_fields: int = MAX_FORM_FIELDS
) -> MultiDict[str]:
    """The fields of ``body`` in order (repeated names kept); :class:`FormError` for anything else.

    ``content_type`` is the media type without parameters (None: no Content-Type header), ``charset``
    its charset parameter. Without a Content-Type only an empty body is taken (an empty form).
    """
    if content_type is None:
        if body:
            raise FormError("a body without Content-Type", 415)
        return MultiDict()
    if content_type != FORM_CONTENT_TYPE:
        raise FormError(f"the body must be {FORM_CONTENT_TYPE}", 415)
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        raise FormError("the form must be UTF-8", 415)
    if _BAD_ESCAPE.search(body):
        raise FormError("invalid percent-escape in the form")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=max_fields)
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    except ValueError:  # parse_qsl: more than max_fields fields
        raise FormError("too many form fields", 413) from None
    return MultiDict(pairs)


async def read_form(request: web.Request, *, max_bytes: int | None = None) -> MultiDictProxy[str]:
    """Read and parse the request's body strictly (see :func:`parse_form`); raises :class:`FormError`.

    ``max_bytes`` is a limit below the application's ``client_max_size`` for endpoints that need less.
    """
    length = request.content_length
    if max_bytes is not None and length is not None and length > max_bytes:
        raise FormError("the form is too large", 413)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:  # a body beyond client_max_size (chunked or misdeclared)
        raise FormError("the form is too large", 413) from None
    if max_bytes is not None and len(body) > max_bytes:
        raise FormError("the form is too large", 413)
    declared = hdrs.CONTENT_TYPE in request.headers
    return MultiDictProxy(
        parse_form(body, request.content_type if declared else None, request.charset, max_fields=MAX_FORM_FIELDS)
    )
