"""The configured eID-Server backend: TR-03130 or the SAML interface, over mutual TLS, with retries and
a circuit breaker (composition only; each part lives in its own module)."""

from __future__ import annotations

import ssl

from eid_gateway.core.port import EidServer
from eid_gateway.backends.resilience import CircuitBreaker, ResilientEidServer
from eid_gateway.backends.tls import client_context
from eid_gateway.config import GatewayConfig


def eid_client_ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """Mutual TLS towards the eID-Server (TR-03116-4); ``None`` for http URLs (development only)."""
    url = config.eid_server.url or ""
    if not url.startswith("https://"):
        return None
    return client_context(config.keys.eid_client, config.eid_server.tls_ca_file)


def resilient(config: GatewayConfig, inner: EidServer) -> ResilientEidServer:
    es = config.eid_server
    return ResilientEidServer(inner, retries=es.retries,
                              breaker=CircuitBreaker(es.breaker_failures, es.breaker_reset_seconds))


def create_remote_backend(config: GatewayConfig) -> EidServer:
    """``kind = "tr03130"`` or ``"saml"``: the real eID-Server, wrapped in :class:`ResilientEidServer`."""
    es = config.eid_server
    assert es.url is not None and es.server_cert is not None
    if es.kind == "saml":
        from eid_gateway.backends.saml_backend import SamlEidServer

        return resilient(config, SamlEidServer.from_config(config, eid_client_ssl_context(config)))
    from eid_gateway.backends.tr03130 import Tr03130Client

    inner = Tr03130Client(es.url, config.keys.eid_client, es.server_cert, es.timeout_seconds,
                          eid_client_ssl_context(config), server_hostname=es.tls_server_name)
    return resilient(config, inner)
