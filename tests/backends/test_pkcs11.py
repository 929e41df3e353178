"""Signing keys in a PKCS#11 token (SoftHSM2 from Debian): XML-DSig, the Redirect binding, WS-Security
of the eID-Interface, CV certificates and the whole SAML sign-in with the IdP key in the token; the
private key can never be exported."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from lxml import etree

from certs.cvc import Chat, Role, build_cvc, parse_cvc
from certs.pkcs11 import (
    SOFTHSM2_MODULE,
    Pkcs11Error,
    Pkcs11Token,
    Pkcs11Uri,
    load_pkcs11_key_pair,
    open_token,
    token_private_key,
)
from saml import algorithms as alg
from saml.bindings import parse_redirect, redirect_url
from saml.dsig import sign_enveloped, verify_enveloped
from saml.keys import KeyLoadError, KeyPair
from saml.messages import AuthnRequest, build_authn_request
from saml.xml import parse_xml, to_bytes

from e2e.conftest import Browser, Servers, ausweisapp, bound_socket, tc_token_url_of
from e2e.test_signin import deliver, open_start_page

from .harness import start_gateway_with

pytestmark = pytest.mark.skipif(shutil.which("softhsm2-util") is None or not SOFTHSM2_MODULE.exists(),
                                reason="Debian package softhsm2 not installed")
PIN = "246810"
LABEL = "eidgw-test"


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Token]:
    """A fresh SoftHSM2 token with an EC P-256 and an RSA-3072 key pair generated inside it."""
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n", encoding="utf-8")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read when the module is first loaded in this process
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN,
                    "--so-pin", "13579135"], check=True, capture_output=True, env=os.environ.copy())
    tok = open_token(SOFTHSM2_MODULE, LABEL, PIN)
    tok.generate("saml-ec", "ec-p256")
    tok.generate("saml-rsa", "rsa-3072")
    yield tok


def _self_signed(key: object, name: str) -> x509.Certificate:
    """A certificate signed by the token key itself (cryptography calls its ``sign``)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())  # type: ignore[attr-defined]
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def ec_pair(token: Pkcs11Token) -> KeyPair:
    key = token_private_key(token, "saml-ec")
    return load_pkcs11_key_pair(f"pkcs11:token={LABEL};object=saml-ec", _self_signed(key, "hsm ec"), pin=PIN)


@pytest.fixture(scope="session")
def rsa_pair(token: Pkcs11Token) -> KeyPair:
    key = token_private_key(token, "saml-rsa")
    return load_pkcs11_key_pair(f"pkcs11:token={LABEL};object=saml-rsa", _self_signed(key, "hsm rsa"), pin=PIN)


def test_private_key_cannot_leave_the_token(ec_pair: KeyPair, rsa_pair: KeyPair) -> None:
    for pair in (ec_pair, rsa_pair):
        with pytest.raises(TypeError):
            pair.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        with pytest.raises(KeyLoadError):
            _ = pair.xmlsec_key
    assert rsa_pair.private_key.key_size == 3072 and ec_pair.is_ec


@pytest.mark.parametrize(("which", "algorithm"), [
    ("ec", alg.ECDSA_SHA256), ("rsa", alg.RSA_SHA256), ("rsa", alg.RSA_PSS_SHA256),
])
def test_xml_signature_with_a_token_key(ec_pair: KeyPair, rsa_pair: KeyPair, which: str, algorithm: str) -> None:
    pair = ec_pair if which == "ec" else rsa_pair
    request = build_authn_request(AuthnRequest(issuer="urn:sp", destination="https://idp.example/sso"))
    sign_enveloped(request, pair, algorithm=algorithm)
    received = parse_xml(to_bytes(request))
    verified = verify_enveloped(received, [pair.certificate])
    assert verified.get("ID") == request.get("ID")
    # the signature is bound to the content: change it and verification fails
    tampered = parse_xml(to_bytes(request).replace(b"urn:sp", b"urn:xx"))
    with pytest.raises(Exception):
        verify_enveloped(tampered, [pair.certificate])


def test_redirect_binding_with_a_token_key(rsa_pair: KeyPair) -> None:
    request = build_authn_request(AuthnRequest(issuer="urn:sp", destination="https://idp.example/sso"))
    url = redirect_url("https://idp.example/sso", request, key=rsa_pair, relay_state="r")
    message = parse_redirect(url.split("?", 1)[1], trusted=[rsa_pair.certificate], require_signature=True)
    assert message.signed and message.relay_state == "r"


def test_cv_certificate_signed_in_the_token(ec_pair: KeyPair) -> None:
    today = datetime.date.today()
    data = build_cvc(authority_reference="DEHSMCVCA00001", holder_reference="DEHSMCVCA00001",
                     public_key=ec_pair.private_key.public_key(),
                     chat=Chat.authentication_terminal(role=Role.CVCA), effective_date=today,
                     expiration_date=today, signing_key=ec_pair.private_key)
    cert = parse_cvc(data)
    cert.verify_signature(cert)


async def test_ws_security_with_a_token_key(ec_pair: KeyPair) -> None:
    """The eID-Interface client signs its SOAP requests in the token; the simulator verifies them."""
    from aiohttp import web

    from eid_gateway.backends.base import EidRequest
    from eid_gateway.backends.tr03130 import Tr03130Client
    from eid_gateway.identity import Attribute
    from eid_gateway.simulator import Simulator, SimulatorConfig
    from saml.keys import generate_key_pair

    sim_key = generate_key_pair("ec-p256")
    sock = bound_socket()
    origin = "http://127.0.0.1:%d" % sock.getsockname()[1]
    sim = Simulator(SimulatorConfig(public_origin=origin, key=sim_key, gateway_cert=ec_pair.certificate))
    app = web.Application()
    app.router.add_routes(sim.routes())
    servers = Servers()
    await servers.serve(app, sock)
    client = Tr03130Client(origin + "/eid-sim/eID", ec_pair, sim_key.certificate, 5.0)
    try:
        session = await client.start_session(EidRequest(required=frozenset({Attribute.FAMILY_NAMES,
                                                                            Attribute.PSEUDONYM})))
        assert session.psk_id is not None
        sim.core.card_step(session.psk_id, "erika", "123456")
        identity = await client.fetch_result(session, 1)
        assert identity.family_names == "MUSTERMANN"
    finally:
        await client.close()
        await servers.close()


def test_uri_and_errors(token: Pkcs11Token) -> None:
    assert Pkcs11Uri.parse("pkcs11:token=My%20HSM;object=saml") == Pkcs11Uri("My HSM", "saml")
    for bad in ("pkcs12:token=x;object=y", "pkcs11:token=x", "pkcs11:token"):
        with pytest.raises(Pkcs11Error):
            Pkcs11Uri.parse(bad)
    with pytest.raises(Pkcs11Error, match="no single private key"):
        token_private_key(token, "missing")
    with pytest.raises(Pkcs11Error, match="cannot open token"):
        Pkcs11Token(SOFTHSM2_MODULE, "no-such-token", PIN)


async def test_saml_sign_in_with_the_idp_key_in_the_token(rsa_pair: KeyPair, tmp_path: Path) -> None:
    """The whole sign-in: the gateway's SAML IdP signs responses and metadata with the token key; the
    demo service verifies them against the metadata it fetched."""
    import aiohttp

    from eid_gateway.config import GatewayConfig

    def with_token_key(config: GatewayConfig) -> GatewayConfig:
        return replace(config, keys=replace(config.keys, saml_signing=rsa_pair, saml_signing_next=None))

    servers = Servers()
    try:
        setup = await start_gateway_with(servers, tmp_path / "gw", transform=with_token_key)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            browser = Browser(session)
            async with session.get(setup.gateway.url("/saml/metadata")) as resp:
                metadata = await resp.read()
            root = etree.fromstring(metadata)
            cert_b64 = root.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate") or ""
            import base64

            assert x509.load_der_x509_certificate(base64.b64decode(cert_b64)) == rsa_pair.certificate
            start = await open_start_page(browser, setup.gateway)
            step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
            result = await deliver(browser, await browser.get(step.next_url))
            rows = {str(r.findtext("th")): str(r.findtext("td")) for r in result.doc().iter("tr")}
            assert rows["Familienname"] == "MUSTERMANN"
    finally:
        await servers.close()


def test_config_names_the_token_key(rsa_pair: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[keys] saml_signing_key = "pkcs11:..."``: the gateway loads the token key; the metadata it
    publishes is signed in the token and verifies with the configured certificate."""
    from certs.pkcs11 import Pkcs11RsaPrivateKey
    from eid_gateway.config import ConfigError, load_config
    from eid_gateway.frontends.saml_idp import idp_metadata

    from .harness import _write_config

    path = _write_config(tmp_path, "http://127.0.0.1:8080", 8080)
    (tmp_path / "hsm.crt").write_bytes(rsa_pair.certificate.public_bytes(serialization.Encoding.PEM))
    text = path.read_text(encoding="utf-8")
    text = text.replace('saml_signing_key = "certs/saml-signing.key"',
                        f'saml_signing_key = "pkcs11:token={LABEL};object=saml-rsa"\n'
                        'pkcs11_pin_env = "TEST_EIDGW_HSM_PIN"')
    text = text.replace('saml_signing_cert = "certs/saml-signing.crt"', 'saml_signing_cert = "hsm.crt"')
    path.write_text(text, encoding="utf-8")
    monkeypatch.delenv("TEST_EIDGW_HSM_PIN", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "keys.pkcs11_pin_env: environment variable TEST_EIDGW_HSM_PIN is not set" in caught.value.errors
    monkeypatch.setenv("TEST_EIDGW_HSM_PIN", PIN)
    config = load_config(path)
    assert isinstance(config.keys.saml_signing.private_key, Pkcs11RsaPrivateKey)
    metadata = parse_xml(idp_metadata(config))
    assert verify_enveloped(metadata, [rsa_pair.certificate]) is not None


async def test_rollover_to_a_token_key_is_announced_first(rsa_pair: KeyPair, tmp_path: Path) -> None:
    """Rollover without downtime: the next signing key (here in the token) is in the metadata while the
    current one still signs, so a service that refreshed its metadata already trusts what comes next."""
    import aiohttp

    from eid_gateway.config import GatewayConfig
    from saml.metadata import parse_metadata

    def next_in_token(config: GatewayConfig) -> GatewayConfig:
        return replace(config, keys=replace(config.keys, saml_signing_next=rsa_pair))

    servers = Servers()
    try:
        setup = await start_gateway_with(servers, tmp_path / "gw", transform=next_in_token)
        async with aiohttp.ClientSession() as session:
            async with session.get(setup.gateway.url("/saml/metadata")) as resp:
                metadata = await resp.read()
        entity = parse_metadata(metadata, trusted=[setup.gateway.config.keys.saml_signing.certificate],
                                require_signature=True)
        assert entity.idp is not None
        trusted = entity.idp.signing_certificates()
        assert setup.gateway.config.keys.saml_signing.certificate in trusted and rsa_pair.certificate in trusted
        # what the token key signs after the switch verifies with the keys the service already has
        request = build_authn_request(AuthnRequest(issuer="urn:gw", destination="https://sp.example/acs"))
        sign_enveloped(request, rsa_pair)
        assert verify_enveloped(parse_xml(to_bytes(request)), trusted) is not None
    finally:
        await servers.close()
