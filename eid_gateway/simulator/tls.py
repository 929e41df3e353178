"""The simulator's eID-Interface behind mutual TLS (TEST FACILITY), as a real eID-Server offers it.

A real eID-Server serves the TR-03130 eID-Interface only to clients with a trusted certificate, on a
listener of its own; the card-step endpoints (here the stand-ins for PAOS and AusweisApp) are reached
by citizens' clients without one. So the TLS application holds only the SOAP route and shares the
simulator core (its sessions) with the plain application.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import web

from eid_gateway.backends.tls import server_context
from eid_gateway.simulator.server import MAX_SOAP_BYTES, Simulator
from saml.keys import KeyPair


def eid_interface_app(simulator: Simulator) -> web.Application:
    """An application with only ``POST {prefix}/eID``, to be served with :func:`tls_context`."""
    app = web.Application(client_max_size=MAX_SOAP_BYTES)
    app.router.add_post(simulator.prefix + "/eID", simulator.soap)
    return app


def tls_context(server_key: KeyPair, client_trust_file: Path) -> ssl.SSLContext:
    """TLS 1.2+ with TR-03116-4 suites; a client certificate trusted via ``client_trust_file`` is required."""
    return server_context(server_key, client_trust_file)
