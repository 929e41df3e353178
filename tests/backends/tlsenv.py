"""A TLS test environment: a dev CA, the simulator's eID-Interface behind mutual TLS on loopback, and a
Tr03130Client for it; every certificate made with ``certs.devpki``."""

from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from aiohttp import web

from certs.devpki import generate_ca, issue_certificate
from eid_gateway.backends.tls import client_context
from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.simulator import Simulator, SimulatorConfig
from eid_gateway.simulator.saml_interface import SamlInterfaceConfig, SimulatorSamlInterface
from eid_gateway.simulator.tls import eid_interface_app, tls_context
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass(frozen=True)
class Pki:
    """A dev CA, the simulator's signing key and the gateway's client key (pinned by the server)."""

    directory: Path
    ca: KeyPair
    simulator_signing: KeyPair
    gateway: KeyPair

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def gateway_cert_file(self) -> Path:
        return self.directory / "gateway-client.crt"

    def server_cert(
        self, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), expired: bool = False, ca: KeyPair | None = None
    ) -> KeyPair:
        now = datetime.datetime.now(datetime.UTC)
        if expired:
            return issue_certificate(
                ca or self.ca,
                "simulator TLS (expired)",
                hosts=hosts,
                not_before=now - datetime.timedelta(days=30),
                not_after=now - datetime.timedelta(days=1),
            )
        return issue_certificate(ca or self.ca, "simulator TLS", hosts=hosts)


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = generate_ca("eid-gateway test TLS CA")
    gateway = generate_key_pair("ec-p256", "eid-gateway client")
    pki = Pki(directory, ca, generate_key_pair("ec-p256", "simulator signing"), gateway)
    pki.ca_file.write_bytes(key_pair_to_pem(ca)[1])
    pki.gateway_cert_file.write_bytes(key_pair_to_pem(gateway)[1])
    return pki


@dataclass
class TlsSimulator:
    """The simulator: card-step endpoints on a plain listener, the eID-Interface on a TLS listener."""

    simulator: Simulator
    plain_origin: str
    eid_url: str
    runners: list[web.AppRunner] = field(default_factory=list)
    saml: SimulatorSamlInterface | None = None

    async def close(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


async def start_tls_simulator(
    pki: Pki,
    server_cert: KeyPair,
    *,
    prefix: str = "/eid-sim",
    tc_token_origins: frozenset[str] = frozenset(),
    saml: SamlInterfaceConfig | None = None,
) -> TlsSimulator:
    plain_sock, tls_sock = free_socket(), free_socket()
    plain_origin = f"http://127.0.0.1:{plain_sock.getsockname()[1]}"
    sim = Simulator(
        SimulatorConfig(
            public_origin=plain_origin,
            key=pki.simulator_signing,
            gateway_cert=pki.gateway.certificate,
            tc_token_origins=tc_token_origins,
        ),
        prefix,
    )
    plain = web.Application()
    plain.add_routes(sim.routes())
    tls_origin = f"https://127.0.0.1:{tls_sock.getsockname()[1]}"
    env = TlsSimulator(sim, plain_origin, tls_origin + prefix + "/eID")
    tls_app = eid_interface_app(sim)
    if saml is not None:  # the SAML interface, reached by the gateway over the same mutual TLS
        env.saml = SimulatorSamlInterface(sim, replace(saml, origin=tls_origin))
        tls_app.add_routes(env.saml.routes())
    for app, sock, ctx in (
        (plain, plain_sock, None),
        (tls_app, tls_sock, tls_context(server_cert, pki.gateway_cert_file)),
    ):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        env.runners.append(runner)
        await web.SockSite(runner, sock, ssl_context=ctx).start()
    return env


def tls_client(
    pki: Pki,
    url: str,
    *,
    client: KeyPair | None = None,
    trust: Path | None = None,
    timeout: float = 5.0,
    server_hostname: str | None = None,
) -> Tr03130Client:
    return Tr03130Client(
        url,
        client or pki.gateway,
        pki.simulator_signing.certificate,
        timeout,
        client_context(client or pki.gateway, trust or pki.ca_file),
        server_hostname=server_hostname,
    )
