"""Start the whole gateway against an eID-Server reached the way production reaches one: the
simulator's eID-Interface behind mutual TLS on loopback (dev-PKI certificates), or any other server."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs.devpki import generate_dev_keys
from certs.loading import load_key_pair_file
from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.instance import CONFIG_TEMPLATE
from eid_gateway.simulator.saml_interface import SamlInterfaceConfig
from eid_gateway.web.branding import write_demo_logo
from helpers.gateway import Browser, Gateway, Page, Servers, deliver
from helpers.ports import bound_socket
from helpers.saml_post import demo_status_line, status_on
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED, STATUS_RESPONDER

from .tlsenv import Pki, TlsSimulator, start_tls_simulator

_KEY_CACHE: list[Path] = []


def _write_config(directory: Path, origin: str, port: int) -> Path:
    """What ``eid-gateway init`` writes, with the development keys generated once per test run and
    copied (RSA-3072 generation would otherwise dominate every test)."""
    if not _KEY_CACHE:
        cache = Path(tempfile.mkdtemp(prefix="eidgw-keys-"))
        atexit.register(shutil.rmtree, cache, True)
        generate_dev_keys(cache / "certs")
        _KEY_CACHE.append(cache / "certs")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_KEY_CACHE[0], directory / "certs")
    path = directory / "gateway.toml"
    path.write_text(CONFIG_TEMPLATE.substitute(origin=origin, port=port, config_path=path), encoding="utf-8")
    write_demo_logo(directory)  # the template's [branding] logo
    return path


SIM_ENTITY_ID = "https://eid-server.simulator.example/saml"
_RSA_CACHE: list[KeyPair] = []


def saml_encryption_key() -> KeyPair:
    """The simulated eID-Server's RSA encryption key (generated once per test run)."""
    if not _RSA_CACHE:
        _RSA_CACHE.append(generate_key_pair("rsa-3072", "simulator SAML encryption"))
    return _RSA_CACHE[0]


@dataclass
class Setup:
    gateway: Gateway
    pki: Pki
    simulator: TlsSimulator | None


def _set_eid_server(text: str, lines: list[str], *, wait: float | None = None) -> str:
    """Replace the [eid_server] table's kind line by ``lines`` (comments stay)."""
    text, n = re.subn(r'(?m)^kind = "simulator"$', "\n".join(lines), text, count=1)
    assert n == 1
    if wait is not None:
        text, n = re.subn(r"(?m)^result_wait_seconds = .*$", f"result_wait_seconds = {wait}", text, count=1)
        assert n == 1
    return text


async def start_gateway_with(
    servers: Servers,
    directory: Path,
    *,
    eid_lines: list[str] | None = None,
    kind: str = "tr03130",
    wait: float | None = 0.5,
    server_cert_file: str = "certs/simulator.crt",
    trust_other_client: bool = False,
    timeout: float | None = None,
    transform: Callable[[GatewayConfig], GatewayConfig] | None = None,
    **app_options: Any,
) -> Setup:
    """``init`` a gateway, then point it at an eID-Server: by default the simulator over mutual TLS.

    ``eid_lines`` replaces the ``kind = ...`` line of [eid_server] (for a server of the test's own);
    ``{eid_url}``, ``{ca}`` in them are filled in.
    """
    sock = bound_socket()
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    path = _write_config(directory, origin, port)
    certs = directory / "certs"
    gateway_pair = load_key_pair_file(certs / "eid-client.key", certs / "eid-client.crt")
    simulator_pair = load_key_pair_file(certs / "simulator.key", certs / "simulator.crt")
    from .tlsenv import make_pki

    base = make_pki(directory / "tls")
    pki = Pki(base.directory, base.ca, simulator_pair, gateway_pair)
    pki.gateway_cert_file.write_bytes(key_pair_to_pem(gateway_pair)[1])
    if trust_other_client:  # the eID-Server pins some other client certificate
        from saml.keys import generate_key_pair

        pki.gateway_cert_file.write_bytes(key_pair_to_pem(generate_key_pair("ec-p256", "someone else"))[1])
    sim: TlsSimulator | None = None
    if eid_lines is None and kind == "saml":
        enc = saml_encryption_key()
        (directory / "tls" / "sim-enc.crt").write_bytes(key_pair_to_pem(enc)[1])
        sp = load_key_pair_file(certs / "saml-signing.key", certs / "saml-signing.crt")
        sim = await start_tls_simulator(
            pki,
            pki.server_cert(),
            saml=SamlInterfaceConfig(
                entity_id=SIM_ENTITY_ID,
                signing_key=simulator_pair,
                encryption_key=enc,
                sp_entity_id=f"{origin}/eid/saml/metadata",
                sp_cert=sp.certificate,
                acs_url=f"{origin}/eid/saml/acs",
            ),
        )
        servers.runners[:0] = sim.runners  # closed after the gateway
        assert sim.saml is not None
        eid_lines = [
            'kind = "saml"',
            f'url = "{sim.saml.sso_url}"',
            f'server_cert = "{server_cert_file}"',
            'tls_ca_file = "{ca}"',
            'sp_key = "certs/saml-signing.key"',
            'sp_cert = "certs/saml-signing.crt"',
            'encryption_cert = "tls/sim-enc.crt"',
            f'server_entity_id = "{SIM_ENTITY_ID}"',
        ]
    elif eid_lines is None:
        sim = await start_tls_simulator(pki, pki.server_cert())
        servers.runners[:0] = sim.runners  # closed after the gateway
        eid_lines = [
            'kind = "tr03130"',
            'url = "{eid_url}"',
            f'server_cert = "{server_cert_file}"',
            'tls_ca_file = "{ca}"',
        ]
    filled = [
        line.replace("{eid_url}", sim.eid_url if sim else "").replace("{ca}", str(pki.ca_file)) for line in eid_lines
    ]
    text = _set_eid_server(path.read_text(encoding="utf-8"), filled, wait=wait)
    if timeout is not None:
        text, n = re.subn(r"(?m)^timeout_seconds = 10$", f"timeout_seconds = {timeout}", text, count=1)
        assert n == 1
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    if transform is not None:
        config = transform(config)
    app = create_app(config, **app_options)
    await servers.serve(app, sock)
    return Setup(Gateway(origin, config, directory), pki, sim)


def config_of(setup: Setup) -> GatewayConfig:
    return setup.gateway.config


#: What the demo service shows for the gateway's error Response ``Responder`` / <second-level code>:
#: its message, and the status in words on its one detail line (eid_gateway/demo/pages.py).
DEMO_ERROR_TEXTS: dict[str | None, tuple[str, str]] = {
    None: ("Der Anmeldedienst hat einen Fehler gemeldet.", "Status: Fehler beim Anmeldedienst"),
    STATUS_AUTHN_FAILED: (
        "Die Authentifizierung mit dem Ausweis ist fehlgeschlagen",
        "Status: Fehler beim Anmeldedienst: Authentifizierung fehlgeschlagen",
    ),
    STATUS_REQUEST_DENIED: ("Die Anmeldung wurde abgebrochen.", "Status: Fehler beim Anmeldedienst: abgebrochen"),
}


async def return_with_error(browser: Browser, gateway: Gateway, failure: Page, sub_code: str | None) -> Page:
    """From the gateway's failure page, press "return to the service": the POSTed Response must be
    signed by the gateway and carry ``Responder`` with ``sub_code`` (None: no second-level code, not the
    card's fault); the demo service then shows that status in words, no URN. Returns the service's page."""
    assert failure.status == 200 and len(failure.forms()) == 1, failure.text
    post_page = await browser.submit(failure)
    status = status_on(post_page, [gateway.config.keys.saml_signing.certificate])
    assert (status.code, status.sub_code) == (STATUS_RESPONDER, sub_code), status
    result = await deliver(browser, post_page)
    message, line = DEMO_ERROR_TEXTS[sub_code]
    assert result.status == 200 and message in result.text, result.text
    assert demo_status_line(result) == line, demo_status_line(result)
    assert "urn:oasis" not in result.text
    return result
