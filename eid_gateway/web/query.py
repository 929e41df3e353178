"""The query string of a request exactly as the client sent it.

aiohttp's ``request.query_string`` and even ``request.rel_url.raw_query_string`` come from yarl, which
normalises percent-escapes (``%2b`` becomes ``%2B``, ``%2f`` becomes ``/``). A signature over the query
(the SAML Redirect binding, saml-bindings 3.4.4.1) covers the octets as sent, and .NET stacks send
lower-case escapes; verifying over yarl's re-encoding refuses their valid signatures.
``request.raw_path`` is the request target from the request line, untouched.
"""

from __future__ import annotations

from aiohttp import web


def raw_query_string(request: web.Request) -> str:
    """Everything after the first ``?`` of the request target, octet for octet ("" when there is none).

    A ``#fragment`` (never sent by browsers, not allowed in a request target) is cut off as aiohttp does.
    """
    return request.raw_path.partition("#")[0].partition("?")[2]
