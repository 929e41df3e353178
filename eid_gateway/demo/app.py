"""The demo city service as an aiohttp application: start page, sign-in redirect, ACS, result page.

Mounted at ``/demo`` by the embedded default (``eid-gateway serve``); ``eid-gateway demo-service`` runs
it alone. It talks to the gateway only over HTTP (metadata, browser redirects, the POSTed Response).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from eid_gateway.config import GatewayConfig
from eid_gateway.demo import pages
from eid_gateway.demo.sp import DemoServiceProvider, DemoSpSettings, GatewayMetadata, MetadataUnavailable
from eid_gateway.frontends.oidc.demo_client import DemoClientSettings, create_oidc_demo_routes
from eid_gateway.store.base import Store
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import negotiate_language
from saml import (
    STATUS_AUTHN_FAILED,
    BindingError,
    InMemoryReplayCache,
    InMemoryRequestStore,
    ReplayCache,
    RequestStore,
    SamlError,
    SqliteReplayCache,
    SqliteRequestStore,
    check_relay_state,
)
from saml.messages import STATUS_REQUEST_DENIED
from saml.validate import StatusError

log = logging.getLogger("eid_gateway.demo")

DEFAULT_PREFIX: Final = "/demo"
#: Cap on the SAMLResponse form value (base64 of at most the 512 KB the XML parser accepts).
MAX_RESPONSE_CHARS: Final = 700 * 1024
SP_KEY: Final = web.AppKey("demo_sp", DemoServiceProvider)
HTTP_KEY: Final = web.AppKey("demo_http", aiohttp.ClientSession)


def demo_settings(config: GatewayConfig, prefix: str = DEFAULT_PREFIX) -> DemoSpSettings:
    """The demo's identity, keys and trust, from the shared config file. Without ``[demo] signing_key``
    (configurations written before it existed) the decryption key signs the AuthnRequests too."""
    signing_key = config.demo.request_signing_key
    if config.demo.key is None or signing_key is None:
        raise ValueError("the demo service needs [demo] key and cert")
    acs_url = config.url(f"{prefix}/acs")
    if config.demo.service_id is not None:
        service = config.services.by_id(config.demo.service_id)
        if service is not None and service.saml is not None and service.saml.acs_urls:
            acs_url = service.saml.acs_urls[0]
    signers = [config.keys.saml_signing.certificate]
    if config.keys.saml_signing_next is not None:
        signers.append(config.keys.saml_signing_next.certificate)
    return DemoSpSettings(
        entity_id=config.demo.entity_id,
        acs_url=acs_url,
        decryption_key=config.demo.key,
        signing_key=signing_key,
        idp_metadata_url=config.url("/saml/metadata"),
        idp_entity_id=config.saml_idp.entity_id,
        metadata_signers=tuple(signers),
    )


def _lang(request: web.Request, fallback: str | None = None) -> str:
    asked = request.query.get("lang", "")
    if asked in pages.LANGS:
        return asked
    if fallback in pages.LANGS:
        assert fallback is not None
        return fallback
    return negotiate_language(request)


class DemoHandlers:
    def __init__(self, prefix: str, *, oidc_enabled: bool = False, wallet_enabled: bool = False) -> None:
        self.prefix = prefix
        self.oidc_enabled = oidc_enabled
        #: The gateway offers the demo service the EUDI wallet: a button that asks for it first.
        self.wallet_enabled = wallet_enabled

    def _again(self, lang: str) -> str:
        return f"{self.prefix}/?{urlencode({'lang': lang})}"

    def _error(
        self, request: web.Request, lang: str, key: str, details: list[tuple[str, str]], status: int
    ) -> web.Response:
        return pages.render(
            request,
            "demo_error.html",
            lang,
            status=status,
            message_key=key,
            details=details,
            again_url=self._again(lang),
        )

    async def index(self, request: web.Request) -> web.StreamResponse:
        lang = _lang(request)
        login = f"{self.prefix}/login?{urlencode({'lang': lang})}"
        oidc_login = f"{self.prefix}/oidc/login?{urlencode({'lang': lang})}" if self.oidc_enabled else None
        wallet_login = (
            f"{self.prefix}/login?{urlencode({'lang': lang, 'method': 'wallet'})}" if self.wallet_enabled else None
        )
        other = "en" if lang == "de" else "de"
        return pages.render(
            request,
            "demo_start.html",
            lang,
            switch_url=self._again(other),
            login_url=login,
            oidc_login_url=oidc_login,
            wallet_login_url=wallet_login,
        )

    async def legal(self, request: web.Request) -> web.StreamResponse:
        """The placeholders behind the demo configuration's [branding] links (Impressum, ...)."""
        page = request.match_info["page"]
        if page not in pages.LEGAL_PAGES:
            raise web.HTTPNotFound()
        lang = _lang(request)
        other = "en" if lang == "de" else "de"
        return pages.render(
            request,
            "demo_legal.html",
            lang,
            switch_url=f"{request.path}?lang={other}",
            page=page,
            start_url=self._again(lang),
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        lang = _lang(request)
        sp = request.app[SP_KEY]
        try:
            # RelayState carries only the page language: it is echoed back, never trusted for more.
            url = await sp.sign_in_url(relay_state=lang)
            # the documented language hint (docs/saml.md): outside the signed parameters, so the
            # gateway's pages speak the language the citizen chose here
            url += "&" + urlencode({"lang": lang})
            if self.wallet_enabled and request.query.get("method") == "wallet":
                url += "&method=wallet"  # a hint like lang: the gateway's start page offers the wallet first
        except MetadataUnavailable as exc:
            log.warning("demo: gateway metadata unavailable: %s", exc)
            return self._error(request, lang, "unavailable", [], 502)
        # Set Location verbatim: HTTPFound would re-quote the URL (yarl normalises percent-escapes in the
        # query), and the gateway verifies the signature over the query octets exactly as sent.
        return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})

    async def acs(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await read_form(request)
        except FormError as exc:
            log.info("demo: unreadable POST to the ACS: %s", exc.reason)
            lang = _lang(request, None)
            return self._error(request, lang, "missing", [], 400)
        relay = form.get("RelayState")
        relay_state = relay if isinstance(relay, str) else None
        try:
            check_relay_state(relay_state)
        except BindingError:
            relay_state = None
        lang = _lang(request, relay_state)
        value = form.get("SAMLResponse")
        if not isinstance(value, str) or not value or len(value) > MAX_RESPONSE_CHARS:
            return self._error(request, lang, "missing", [], 400)
        sp = request.app[SP_KEY]
        try:
            try:
                xml = base64.b64decode("".join(value.split()), validate=True)
            except (binascii.Error, ValueError):
                raise BindingError("SAMLResponse is not valid base64") from None
            result = await sp.validate(xml)
        except MetadataUnavailable as exc:
            log.warning("demo: gateway metadata unavailable: %s", exc)
            return self._error(request, lang, "unavailable", [], 502)
        except StatusError as exc:
            status = exc.status
            key = {STATUS_REQUEST_DENIED: "status_denied", STATUS_AUTHN_FAILED: "status_authn_failed"}.get(
                status.sub_code or "", "status_other"
            )
            log.info(
                "demo: sign-in failed status=%s", status.code + (f" / {status.sub_code}" if status.sub_code else "")
            )
            return self._error(request, lang, key, [("status_label", pages.status_words(status, lang))], 200)
        except SamlError as exc:
            log.warning("demo: Response refused code=%s", exc.code)
            return self._error(request, lang, "rejected", [("reason", exc.code)], 400)
        log.info("demo: sign-in verified encrypted=%s", result.encrypted)
        rows = pages.saml_rows(
            result.attributes,
            subject=result.name_id.value,
            loa=result.authn_context,
            encrypted=result.encrypted,
            lang=lang,
        )
        return pages.render(request, "demo_result.html", lang, rows=rows, again_url=self._again(lang))


def demo_oidc_client(config: GatewayConfig, prefix: str = DEFAULT_PREFIX) -> DemoClientSettings | None:
    """The demo's OpenID Connect relying party settings (second sign-in button), when the demo
    service is registered as a public OIDC client with the demo's callback; else None."""
    if config.oidc is None or config.demo.service_id is None:
        return None
    client = config.oidc.client_for_service(config.demo.service_id)
    redirect_uri = config.url(f"{prefix}/oidc/callback")
    if client is None or not client.public_client or redirect_uri not in client.redirect_uris:
        return None
    return DemoClientSettings(config.public_origin, client.client_id, redirect_uri)


def demo_oidc_routes(config: GatewayConfig, store: Store, prefix: str = DEFAULT_PREFIX) -> list[web.RouteDef]:
    """Routes of the demo's OIDC relying party under ``<prefix>/oidc`` (none when not registered); its
    pending sign-ins live in the gateway's ``store``, shared by every process of the gateway."""
    settings = demo_oidc_client(config, prefix)
    if settings is None:
        return []
    return create_oidc_demo_routes(
        settings, store, pages.OidcDemoPages(prefix), prefix=f"{prefix}/oidc", secure_cookie=config.secure_origin
    )


def demo_saml_state(config: GatewayConfig) -> tuple[RequestStore, ReplayCache]:
    """Where the demo keeps its sent request IDs and seen assertion IDs: ``[demo] state`` (a SQLite file
    every process of the service shares), else the memory of this process."""
    if config.demo.state is None:
        return InMemoryRequestStore(), InMemoryReplayCache()
    return SqliteRequestStore(config.demo.state), SqliteReplayCache(config.demo.state)


def create_demo_app(config: GatewayConfig, *, prefix: str = DEFAULT_PREFIX) -> web.Application:
    """The demo service; ``prefix`` is the path it is mounted at (its URLs are built from it).

    The OIDC relying party (:func:`demo_oidc_routes`) is mounted beside it by the composing app."""
    settings = demo_settings(config, prefix)
    app = web.Application()
    service = config.services.by_id(config.demo.service_id) if config.demo.service_id else None
    handlers = DemoHandlers(
        prefix,
        oidc_enabled=demo_oidc_client(config, prefix) is not None,
        wallet_enabled=config.wallet is not None and service is not None and config.wallet.offers(service),
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession()
        app[HTTP_KEY] = http
        requests, seen = demo_saml_state(config)
        app[SP_KEY] = DemoServiceProvider(
            settings, GatewayMetadata(settings, http), request_store=requests, replay_cache=seen
        )
        yield
        await http.close()
        for state in (requests, seen):
            if isinstance(state, (SqliteRequestStore, SqliteReplayCache)):
                state.close()

    app.cleanup_ctx.append(lifecycle)
    app.add_routes(
        [
            web.get("/", handlers.index),
            web.get("/legal/{page}", handlers.legal),
            web.get("/login", handlers.login, allow_head=False),
            web.post("/acs", handlers.acs),
        ]
    )
    return app
