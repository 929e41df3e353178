"""aiohttp adapters of the embedded eID-Server, thin over :mod:`.server_core`.

- ``POST {prefix}/eID`` (in the gateway's app): the TR-03130 eID-Interface, reached by the gateway's
  own TR-03130 client over HTTP — the production code path;
- ``POST /paos`` on a separate TLS listener: the PAOS endpoint (the TC Token's ServerAddress).

TLS: Python 3.11's ``ssl`` module has no TLS-PSK server callback, so TLS-2 runs the *attached* model
(no PSK in the TC Token; TLS 1.2+, ECDHE with AES-GCM, RSA certificate). :class:`AttachedModelBackend`
keeps the PSK out of the TC Token so that AusweisApp does not ask for RSA-PSK suites. See
docs/eidserver.md.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Final

from aiohttp import web

from eid_gateway.core.port import EidRequest, EidServer, EidSession, ServerInfo
from eid_gateway.eidserver.paos import CONTENT_TYPE, MAX_PAOS_BYTES
from eid_gateway.eidserver.server_core import EmbeddedEidServer
from eid_gateway.identity import Identity

log = logging.getLogger(__name__)

MAX_SOAP_BYTES: Final = 512 * 1024
#: TR-03116-4 suites for TLS 1.2 with an RSA certificate (TLS 1.3 suites are OpenSSL's defaults).
TLS12_CIPHERS: Final = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"


def paos_ssl_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def interface_routes(server: EmbeddedEidServer, prefix: str) -> list[web.RouteDef]:
    """The eID-Interface endpoint, to mount in the gateway's app."""

    async def soap(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_SOAP_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_SOAP_BYTES, actual_size=request.content_length)
        data = await request.read()
        if len(data) > MAX_SOAP_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_SOAP_BYTES, actual_size=len(data))
        answer = server.handle_soap(data, request.headers.get("SOAPAction"))
        return web.Response(status=answer.status, body=answer.body, content_type="text/xml", charset="utf-8")

    return [web.post(prefix.rstrip("/") + "/eID", soap)]


def paos_routes(server: EmbeddedEidServer, path: str = "/paos") -> list[web.RouteDef]:
    """The PAOS endpoint's route (for the gateway app, or the separate listener's app)."""

    async def paos_endpoint(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_PAOS_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_PAOS_BYTES, actual_size=request.content_length)
        data = await request.read()
        answer = server.handle_paos(data, request.headers.get("requestid"))
        if answer.status != 200:
            return web.Response(status=answer.status, headers={"Cache-Control": "no-store"})
        return web.Response(
            status=200,
            body=answer.body,
            content_type=CONTENT_TYPE,
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    return [web.post(path, paos_endpoint)]


def create_paos_app(server: EmbeddedEidServer) -> web.Application:
    """The PAOS endpoint as its own application (served on the separate TLS listener)."""
    app = web.Application(client_max_size=MAX_PAOS_BYTES)
    app.add_routes(paos_routes(server))
    return app


def paos_listener(
    server: EmbeddedEidServer, host: str, port: int, ssl_context: ssl.SSLContext
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs the PAOS TLS listener for the gateway app's lifetime."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(create_paos_app(server), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        log.warning("embedded eID-Server PAOS endpoint listening on https://%s:%d/paos (TEST PKI)", host, port)
        yield
        await runner.cleanup()

    return run


class AttachedModelBackend:
    """An :class:`EidServer` that keeps the PSK out of the TC Token (the attached eID-Server model).

    Our PAOS endpoint cannot offer TLS-PSK on this Python, so the client must not be told to use it.
    """

    def __init__(self, inner: EidServer):
        self.inner = inner

    async def start_session(self, request: EidRequest) -> EidSession:
        return replace(await self.inner.start_session(request), psk_key=None)

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        return await self.inner.fetch_result(session, request_counter)

    async def server_info(self) -> ServerInfo:
        return await self.inner.server_info()

    async def close(self) -> None:
        await self.inner.close()
