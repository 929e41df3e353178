"""aiohttp adapters of the eID-Server simulator (TEST FACILITY), thin over :mod:`.core`.

Routes under ``prefix`` (default ``/eid-sim``):

- ``POST {prefix}/eID``: the TR-03130 SOAP endpoint (useID, getResult, getServerInfo);
- ``POST {prefix}/paos``: the card step, the TC Token's ServerAddress (form fields SessionIdentifier,
  identity, pin, action=confirm|cancel, deselect*; answers JSON ``{"result_major", "result_minor"}``);
- ``GET/POST {prefix}/client``: a page standing in for AusweisApp in a browser demo.

Mount with ``app.add_routes(simulator_routes(config))``; :class:`Simulator` gives tests the core too.
Building either refuses when ``config.production`` is set.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from eid_gateway.simulator.client import SimulatedClientError, run_simulated_client
from eid_gateway.simulator.core import CardStepError, SimulatedEidServer, SimulatorConfig
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.render import render_message, render_page

MAX_SOAP_BYTES: Final = 512 * 1024
CSRF_COOKIE: Final = "eid_sim_csrf"
_HEADERS: Final = {
    # the gateway's stylesheets, brand.css and logo (same origin); nothing else, no script
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def _page(request: web.Request, title_key: str, text_key: str, status: int) -> web.Response:
    """An error page of the stand-in, in the gateway's layout and the request's language."""
    response = render_message(request, title_key, text_key, status=status)
    response.headers.update(_HEADERS)
    return response


class Simulator:
    """The simulator's core plus its aiohttp handlers."""

    def __init__(self, config: SimulatorConfig, prefix: str = "/eid-sim"):
        self.core = SimulatedEidServer(config, prefix)  # raises SimulatorRefused in production mode
        self.config = config
        self.prefix = prefix.rstrip("/")
        allowed = config.tc_token_origins or frozenset({config.public_origin})
        self._origins = frozenset(o for o in (_origin(u) for u in allowed) if o)
        self._secure_cookie = urlsplit(config.public_origin).scheme == "https"

    @property
    def eid_url(self) -> str:
        """The eID-Interface endpoint a Tr03130Client talks to."""
        return self.config.public_origin.rstrip("/") + self.prefix + "/eID"

    def client_page_url(self, tc_token_url: str) -> str:
        """The browser stand-in for ``http://127.0.0.1:24727/eID-Client?tcTokenURL=...``."""
        return f"{self.config.public_origin.rstrip('/')}{self.prefix}/client?{urlencode({'tcTokenURL': tc_token_url})}"

    def mount(self, app: web.Application) -> None:
        """Add the routes to ``app`` and close the sessions file when the app shuts down."""
        app.add_routes(self.routes())

        async def close(app: web.Application) -> None:
            self.core.close()

        app.on_cleanup.append(close)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(self.prefix + "/eID", self.soap),
            web.post(self.prefix + "/paos", self.card_step),
            web.get(self.prefix + "/client", self.client_page),
            web.post(self.prefix + "/client", self.client_submit),
        ]

    # --- eID-Interface and card step ------------------------------------------------------------------

    async def soap(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_SOAP_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_SOAP_BYTES, actual_size=request.content_length)
        data = await request.read()  # bounded by the application's client_max_size as well
        if len(data) > MAX_SOAP_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_SOAP_BYTES, actual_size=len(data))
        answer = self.core.handle_soap(data, request.headers.get("SOAPAction"))
        return web.Response(status=answer.status, body=answer.body, content_type="text/xml", charset="utf-8")

    async def card_step(self, request: web.Request) -> web.Response:
        try:
            form = await read_form(request)
        except FormError as exc:
            return web.json_response({"error": exc.reason}, status=400)
        action = form.get("action")
        if action not in ("confirm", "cancel"):
            return web.json_response({"error": "action must be confirm or cancel"}, status=400)
        try:
            result = self.core.card_step(
                str(form.get("SessionIdentifier", "")),
                str(form.get("identity", "")),
                str(form.get("pin", "")),
                cancel=action == "cancel",
                deselect=[str(v) for v in form.getall("deselect", [])],
            )
        except CardStepError as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)
        return web.json_response({"result_major": result.major, "result_minor": result.minor})

    # --- the browser stand-in for AusweisApp -------------------------------------------------------------

    def _allowed(self, tc_token_url: str) -> bool:
        origin = _origin(tc_token_url)
        return origin is not None and origin in self._origins

    async def client_page(self, request: web.Request) -> web.Response:
        tc_token_url = request.query.get("tcTokenURL", "")
        if not self._allowed(tc_token_url):
            return _page(request, "sim_invalid_title", "sim_invalid_text", 400)
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        lang = negotiate_language(request)
        resp = render_page(
            request,
            "simulator_client.html",
            lang=lang,
            action=f"{self.prefix}/client?{urlencode({'lang': lang})}",
            tc_token_url=tc_token_url,
            csrf=csrf,
            identities=[(card.key, card.label_in(lang)) for card in self.config.identities.values()],
        )
        resp.headers.update(_HEADERS)
        resp.set_cookie(
            CSRF_COOKIE,
            csrf,
            path=self.prefix + "/client",
            httponly=True,
            samesite="Strict",
            secure=self._secure_cookie,
        )
        return resp

    async def client_submit(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request)
        except FormError:
            return _page(request, "sim_invalid_title", "sim_form_text", 400)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = str(form.get("csrf", ""))
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            return _page(request, "sim_expired_title", "sim_expired_text", 403)
        tc_token_url = str(form.get("tcTokenURL", ""))
        if not self._allowed(tc_token_url):
            return _page(request, "sim_invalid_title", "sim_invalid_text", 400)
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(ssl=self.config.client_ssl if self.config.client_ssl else True)
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                target = await run_simulated_client(
                    http,
                    tc_token_url,
                    identity=str(form.get("identity", "")),
                    pin=str(form.get("pin", "")),
                    cancel=form.get("action") == "cancel",
                )
        except SimulatedClientError as exc:
            # 400 when the tcTokenURL named nothing (unknown or used): the request's fault; 502 otherwise
            return _page(request, "sim_error_title", "sim_error_text", 400 if exc.refused else 502)
        raise web.HTTPSeeOther(target, headers={"Cache-Control": "no-store"})


def simulator_routes(config: SimulatorConfig, prefix: str = "/eid-sim") -> list[web.RouteDef]:
    """The simulator's routes, to ``app.add_routes``; raises SimulatorRefused in production mode."""
    return Simulator(config, prefix).routes()
