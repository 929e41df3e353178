"""Every eID-Server backend kind, one line each in :data:`BACKENDS`: how it is built, what it needs.

``[eid_server] kind`` is looked up here and nowhere else: the config checks a kind's needs, the app
builds and mounts it, ``serve --workers N`` asks whether it allows several processes, and the flow
only sees the capabilities a kind declares (a test card client to link to), never its name. Adding a
backend is its own module plus a factory and one line here.

The backend modules are imported inside the factories, so that reading the config (which looks kinds up
here) does not import every eID-Server client, the simulator or the embedded eID-Server; a kind's
settings parser is imported here, as the config uses it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from eid_gateway.core.port import EidServer
from eid_gateway.eidserver.settings import parse_embedded_paos

if TYPE_CHECKING:  # annotations only: the config module looks kinds up here
    from aiohttp import web

    from eid_gateway.backends.resilience import ResilientEidServer
    from eid_gateway.config import GatewayConfig, SimulatorSection


class UnknownBackend(LookupError):
    """A backend kind no line of :data:`BACKENDS` names (the config refuses it before this is raised)."""


@dataclass(frozen=True)
class BackendSections:
    """The config sections a kind's rules may look at, parsed (``None``: absent)."""

    simulator: SimulatorSection | None = None


class SettingsParser(Protocol):
    """Reads a kind's own section from the whole TOML document; raises the config's ``ConfigError``
    naming every bad key. The result is kept in the config under the section's name."""

    def __call__(self, data: Mapping[str, Any], base_dir: Path, *, production: bool, origin: str) -> Any: ...


def _no_test_client(config: GatewayConfig) -> str | None:
    return None


def _several_processes(sections: BackendSections) -> str | None:
    return None


@dataclass(frozen=True)
class BackendKind:
    """One ``[eid_server] kind``."""

    name: str
    #: Builds the :class:`~eid_gateway.core.port.EidServer` the flow talks to.
    create: Callable[[GatewayConfig], EidServer]
    #: A real eID-Server elsewhere: ``[eid_server] url`` and ``server_cert`` are required, mutual TLS,
    #: retries and the circuit breaker apply.
    remote: bool = False
    #: Reads no real ID card: production refuses it.
    test_facility: bool = False
    #: The further config sections it needs (``[simulator]``, ``[embedded_paos]``).
    needs: tuple[str, ...] = ()
    #: Reads and checks its own section (the config's key-path errors); ``None``: only ``[eid_server]``,
    #: which the config reads itself.
    parse_settings: SettingsParser | None = None
    #: Adds its own routes or listeners to the gateway app (an embedded server), if any.
    mount: Callable[[web.Application, GatewayConfig], object] | None = None
    #: Where a browser finds a test card client for a TC Token (the citizen page links it), if any.
    test_client_path: Callable[[GatewayConfig], str | None] = _no_test_client
    #: Why all of ``serve --workers N`` must be one process with this kind, or ``None``.
    single_process_reason: Callable[[BackendSections], str | None] = _several_processes


# --- factories ---------------------------------------------------------------------------------------------


def eid_client_ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """Mutual TLS towards a real eID-Server (TR-03116-4); ``None`` for http URLs (development only)."""
    from eid_gateway.backends.tls import client_context

    url = config.eid_server.url or ""
    if not url.startswith("https://"):
        return None
    return client_context(config.keys.eid_client, config.eid_server.tls_ca_file)


def _resilient(config: GatewayConfig, inner: EidServer) -> ResilientEidServer:
    """A real eID-Server: retries of getResult / getServerInfo and a circuit breaker around ``inner``."""
    from eid_gateway.backends.resilience import CircuitBreaker, ResilientEidServer

    es = config.eid_server
    return ResilientEidServer(
        inner, retries=es.retries, breaker=CircuitBreaker(es.breaker_failures, es.breaker_reset_seconds)
    )


def create_tr03130(config: GatewayConfig) -> EidServer:
    """The real eID-Server's TR-03130 SOAP interface, over mutual TLS."""
    from eid_gateway.backends.tr03130 import Tr03130Client

    es = config.eid_server
    assert es.url is not None and es.server_cert is not None
    inner = Tr03130Client(
        es.url,
        config.keys.eid_client,
        es.server_cert,
        es.timeout_seconds,
        eid_client_ssl_context(config),
        server_hostname=es.tls_server_name,
    )
    return _resilient(config, inner)


def create_saml(config: GatewayConfig) -> EidServer:
    """The real eID-Server's SAML interface, over mutual TLS."""
    from eid_gateway.backends.saml_backend import SamlEidServer

    assert config.eid_server.url is not None and config.eid_server.server_cert is not None
    return _resilient(config, SamlEidServer.from_config(config, eid_client_ssl_context(config)))


def create_simulator(config: GatewayConfig) -> EidServer:
    """The TR-03130 client towards the simulator mounted in the same app, over real HTTP."""
    from eid_gateway.backends.tr03130 import Tr03130Client

    assert config.simulator is not None
    return Tr03130Client(
        config.url(config.simulator.prefix + "/eID"),
        config.keys.eid_client,
        config.simulator.key.certificate,
        config.eid_server.timeout_seconds,
        None,
    )


def mount_simulator(app: web.Application, config: GatewayConfig) -> None:
    """The simulator's eID-Interface and test card client under ``[simulator] prefix``."""
    from eid_gateway.simulator import Simulator, SimulatorConfig

    assert config.simulator is not None
    Simulator(
        SimulatorConfig(
            public_origin=config.public_origin,
            key=config.simulator.key,
            gateway_cert=config.keys.eid_client.certificate,
            production=config.production,
            sessions=config.simulator.sessions,
        ),
        config.simulator.prefix,
    ).mount(app)


def _simulator_client(config: GatewayConfig) -> str | None:
    assert config.simulator is not None
    return config.simulator.prefix + "/client"


def _simulator_processes(sections: BackendSections) -> str | None:
    if sections.simulator is not None and sections.simulator.sessions is None:
        return (
            "simulator.sessions is not set: the simulator's open sessions would be kept in one "
            'process (set it to a SQLite file, e.g. "data/simulator-sessions.sqlite3")'
        )
    return None


def create_embedded_paos(config: GatewayConfig) -> EidServer:
    """The TR-03130 client towards the embedded PAOS eID-Server mounted in the same app."""
    from eid_gateway.eidserver.mount import embedded_paos_backend

    return embedded_paos_backend(config)


def mount_embedded_paos(app: web.Application, config: GatewayConfig) -> None:
    """The embedded eID-Server's eID-Interface and its PAOS endpoint (own TLS listener or the app's)."""
    from eid_gateway.eidserver.mount import mount_embedded_paos as mount

    mount(app, config)


def _embedded_paos_processes(sections: BackendSections) -> str | None:
    return 'eid_server.kind = "embedded-paos": its PAOS sessions are kept in one process'


BACKENDS: Final[Mapping[str, BackendKind]] = {
    kind.name: kind
    for kind in (
        BackendKind(
            "simulator",
            create_simulator,
            test_facility=True,
            needs=("simulator",),
            mount=mount_simulator,
            test_client_path=_simulator_client,
            single_process_reason=_simulator_processes,
        ),
        BackendKind("tr03130", create_tr03130, remote=True),
        BackendKind("saml", create_saml, remote=True),
        BackendKind(
            "embedded-paos",
            create_embedded_paos,
            needs=("embedded_paos",),
            parse_settings=parse_embedded_paos,
            mount=mount_embedded_paos,
            single_process_reason=_embedded_paos_processes,
        ),
    )
}


def backend_kind(name: str) -> BackendKind:
    """The registry line of ``name``; :class:`UnknownBackend` if there is none."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackend(name) from None


def kinds_text(kinds: Mapping[str, BackendKind] | None = None) -> str:
    """``"simulator", "tr03130", "saml" or "embedded-paos"``: the kinds for a config error message."""
    names = [f'"{name}"' for name in (kinds if kinds is not None else BACKENDS)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
