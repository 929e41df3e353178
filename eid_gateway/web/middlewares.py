"""Cross-cutting HTTP defences: security headers, body size limit, and pages instead of stack traces."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from eid_gateway.web.forms import FormError
from eid_gateway.web.render import render_http_error, render_message

log = logging.getLogger("eid_gateway.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY_BYTES = 512 * 1024


def _csp_source(url: str) -> str:
    """A CSP source expression for one exact URL (no quotes, no wildcards, no ';' or ',')."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}".replace(";", "%3B").replace(",", "%2C").replace(" ", "%20")


#: Where the start page asks whether AusweisApp runs on this computer (TR-03124-1 status query).
AUSWEISAPP_ORIGIN: Final = "http://127.0.0.1:24727"


def content_security_policy(form_targets: Iterable[str]) -> str:
    """CSP without inline script; forms may only post to the gateway and the services' registered URLs;
    scripts may reach only the gateway and the local AusweisApp (its status query)."""
    targets = " ".join(sorted({_csp_source(u) for u in form_targets}))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {AUSWEISAPP_ORIGIN}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self'{' ' + targets if targets else ''}"
    )


#: The ``Server`` header: aiohttp's default names the Python and aiohttp versions, a map to known bugs.
SERVER_NAME = "eid-gateway"


def set_security_headers(headers: MutableMapping[str, str], csp: str, *, hsts: bool) -> None:
    """The gateway's response headers; also for responses no application hook sees (malformed requests)."""
    headers.setdefault("Content-Security-Policy", csp)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers["Server"] = SERVER_NAME
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"


def security_headers(
    form_targets: Iterable[str], *, hsts: bool
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: runs for every response, errors and static files included."""
    csp = content_security_policy(form_targets)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        set_security_headers(response.headers, csp, hsts=hsts)

    return hook


def body_limit(max_bytes: int = MAX_BODY_BYTES) -> Middleware:
    """Refuse a declared oversize body before reading it (the app's client_max_size caps the rest)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_bytes:
            return render_http_error(request, 413)
        return await handler(request)

    return middleware


#: Status recorded for a request whose client went away before the answer (nginx's convention; never sent).
CLIENT_CLOSED_REQUEST = 499


def client_gone(request: web.Request) -> bool:
    """True once the request's connection is closed or closing."""
    transport = request.transport
    return transport is None or transport.is_closing()


def new_error_id() -> str:
    """A short reference a citizen can quote; it links the page to the log line."""
    return secrets.token_hex(6)


def _frames(exc: BaseException) -> str:
    """Where it happened (file, line, function) without source lines or the message."""
    return "\n".join(f"  at {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__))


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack trace ever reaches a browser: unexpected exceptions become a page with an error id.

    The log line has the error id, the route, the exception type and the frames (file, line,
    function); request bodies, query strings, source lines and the exception *message* are left out
    (our own exceptions never carry personal data, but a foreign library's might).
    """
    try:
        return await handler(request)
    except FormError as exc:  # a malformed body that no handler mapped to its protocol: the client's error
        log.info("malformed form refused method=%s status=%d reason=%s", request.method, exc.status, exc.reason)
        return render_http_error(request, exc.status)
    except web.HTTPException as exc:
        # 401 and 429 pass as they are: their header (WWW-Authenticate, Retry-After) is the answer
        if exc.status >= 400 and exc.content_type == "text/plain" and exc.status not in (401, 429):
            return render_http_error(request, exc.status)
        raise
    except Exception as exc:  # noqa: BLE001 - this is the last line of defence
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "-"
        if client_gone(request):
            # the client closed the connection (or was cut off as too slow) while its request was read or
            # answered: its business, not a fault of the gateway, and nobody is left to see a page
            log.info("client went away route=%s method=%s type=%s", route, request.method, type(exc).__name__)
            return web.Response(status=CLIENT_CLOSED_REQUEST)
        error_id = new_error_id()
        log.error(
            "internal error id=%s route=%s method=%s type=%s\n%s",
            error_id,
            route,
            request.method,
            type(exc).__name__,
            _frames(exc),
        )
        return render_message(request, "internal_title", "internal_text", status=500, error_id=error_id)
