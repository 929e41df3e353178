"""Wiring of the embedded PAOS eID-Server into the gateway app (a line of :mod:`eid_gateway.backends.registry`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from eid_gateway.core.port import EidServer
from eid_gateway.eidserver.server import (
    AttachedModelBackend,
    interface_routes,
    paos_listener,
    paos_routes,
    paos_ssl_context,
)
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig

if TYPE_CHECKING:  # annotations only: the config looks backend kinds up in backends/registry.py
    from eid_gateway.config import GatewayConfig

log = logging.getLogger(__name__)


def embedded_server(config: GatewayConfig) -> EmbeddedEidServer:
    settings = config.embedded_paos
    assert settings is not None
    return EmbeddedEidServer(
        EmbeddedServerConfig(
            paos_url=settings.public_url,
            key=settings.signing,
            gateway_cert=config.keys.eid_client.certificate,
            terminal=settings.pki.credentials(config.keys.pseudonym_secret),
        )
    )


def embedded_paos_backend(config: GatewayConfig) -> EidServer:
    """The gateway's TR-03130 client towards the mounted eID-Interface, in the attached model."""
    from eid_gateway.backends.tr03130 import Tr03130Client

    settings = config.embedded_paos
    assert settings is not None
    return AttachedModelBackend(
        Tr03130Client(
            config.url(settings.prefix + "/eID"),
            config.keys.eid_client,
            settings.signing.certificate,
            config.eid_server.timeout_seconds,
            None,
        )
    )


def mount_embedded_paos(app: web.Application, config: GatewayConfig) -> EmbeddedEidServer:
    """Mount the eID-Interface in ``app`` and run the PAOS TLS listener for the app's lifetime."""
    settings = config.embedded_paos
    assert settings is not None
    server = embedded_server(config)
    log.warning("embedded eID-Server with the TEST PKI active: AusweisApp's simulator card only")
    app.add_routes(interface_routes(server, settings.prefix))
    if settings.listen_port is None:
        # The gateway's own TLS listener serves PAOS (its certificate must be in CommCertificates).
        app.add_routes(paos_routes(server))
        return server
    ctx = paos_ssl_context(settings.pki.tls_cert_path, settings.pki.tls_key_path)
    app.cleanup_ctx.append(paos_listener(server, settings.listen_host, settings.listen_port, ctx))
    return server
