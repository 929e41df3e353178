"""Signing keys in a PKCS#11 token (SoftHSM2 from Debian): XML-DSig, the Redirect binding, WS-Security
of the eID-Interface, CV certificates, the whole SAML sign-in with the IdP key in the token, and the
OIDC provider's ES256 / PS256 ID tokens (the whole sign-in with authlib as the relying party); the
private key can never be exported. All PKCS#11 tests live here: python-pkcs11 loads the module (and
SoftHSM2 its configuration) once per process, so they share the one ``token`` fixture."""

from __future__ import annotations

import base64
import copy
import datetime
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from authlib.integrations.requests_client import OAuth2Session
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import KeySet
from lxml import etree
from oidc.conftest import in_thread
from oidc.test_end_to_end import RelyingParty
from oidc.test_full_app import RP_CB, Gateway

from certs.pkcs11 import (
    SOFTHSM2_MODULE,
    Pkcs11EcPrivateKey,
    Pkcs11Error,
    Pkcs11RsaPrivateKey,
    Pkcs11Token,
    Pkcs11Uri,
    load_pkcs11_key_pair,
    open_token,
    token_private_key,
)
from eid_gateway.frontends.oidc.keys import load_provider_keys
from eid_gateway.frontends.oidc.settings import (
    ProviderSettings,
    SigningKeyRef,
    TokenKeyRef,
    parse_oidc_settings,
)
from eid_gateway.frontends.oidc.tokens import sign_id_token
from eid_gateway.settings_base import ConfigError
from helpers.gateway import Browser, Servers, ausweisapp, deliver, on_its_own, open_start_page, tc_token_url_of
from helpers.ports import bound_socket, free_port
from saml import algorithms as alg
from saml.bindings import parse_redirect, redirect_url
from saml.dsig import sign_enveloped, verify_enveloped
from saml.errors import SignatureError
from saml.keys import KeyLoadError, KeyPair, certificate_builder
from saml.messages import AuthnRequest, build_authn_request
from saml.xml import parse_xml, to_bytes
from tr03110.cvc import Chat, Role, build_cvc, parse_cvc

from .harness import start_gateway_with

pytestmark = pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or not SOFTHSM2_MODULE.exists(),
    reason="Debian package softhsm2 not installed",
)
PIN = "246810"
LABEL = "eidgw-test"


@pytest.fixture(scope="session")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Token]:
    """A fresh SoftHSM2 token with an EC P-256 and an RSA-3072 key pair generated inside it."""
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read when the module is first loaded in this process
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin", "13579135"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    tok = open_token(SOFTHSM2_MODULE, LABEL, PIN)
    tok.generate("saml-ec", "ec-p256")
    tok.generate("saml-rsa", "rsa-3072")
    yield tok


def _self_signed(key: object, name: str) -> x509.Certificate:
    """A certificate signed by the token key itself (cryptography calls its ``sign``)."""
    now = datetime.datetime.now(datetime.UTC)
    return certificate_builder(
        name,
        key.public_key(),  # type: ignore[attr-defined]
        not_before=now - datetime.timedelta(minutes=1),
        not_after=now + datetime.timedelta(days=30),
    ).sign(key, hashes.SHA256())  # type: ignore[arg-type]


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
            pair.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        with pytest.raises(TypeError):
            pair.private_key.private_numbers()
        with pytest.raises(KeyLoadError):
            _ = pair.xmlsec_key
        # a copy (dataclasses.replace, deepcopy of a config) is the same token key, not an exported one
        assert copy.copy(pair.private_key) is pair.private_key is copy.deepcopy(pair.private_key)
    assert rsa_pair.private_key.key_size == 3072 and ec_pair.is_ec


@pytest.mark.parametrize(
    ("which", "algorithm"),
    [
        ("ec", alg.ECDSA_SHA256),
        ("rsa", alg.RSA_SHA256),
        ("rsa", alg.RSA_PSS_SHA256),
    ],
)
def test_xml_signature_with_a_token_key(ec_pair: KeyPair, rsa_pair: KeyPair, which: str, algorithm: str) -> None:
    pair = ec_pair if which == "ec" else rsa_pair
    request = build_authn_request(AuthnRequest(issuer="urn:sp", destination="https://idp.example/sso"))
    sign_enveloped(request, pair, algorithm=algorithm)
    received = parse_xml(to_bytes(request))
    verified = verify_enveloped(received, [pair.certificate])
    assert verified.get("ID") == request.get("ID")
    # the signature is bound to the content: change it and verification fails
    tampered = parse_xml(to_bytes(request).replace(b"urn:sp", b"urn:xx"))
    with pytest.raises(SignatureError):
        verify_enveloped(tampered, [pair.certificate])


def test_redirect_binding_with_a_token_key(rsa_pair: KeyPair) -> None:
    request = build_authn_request(AuthnRequest(issuer="urn:sp", destination="https://idp.example/sso"))
    url = redirect_url("https://idp.example/sso", request, key=rsa_pair, relay_state="r")
    message = parse_redirect(url.split("?", 1)[1], trusted=[rsa_pair.certificate], require_signature=True)
    assert message.signed and message.relay_state == "r"


def test_cv_certificate_signed_in_the_token(ec_pair: KeyPair) -> None:
    today = datetime.date.today()
    data = build_cvc(
        authority_reference="DEHSMCVCA00001",
        holder_reference="DEHSMCVCA00001",
        public_key=ec_pair.private_key.public_key(),
        chat=Chat.authentication_terminal(role=Role.CVCA),
        effective_date=today,
        expiration_date=today,
        signing_key=ec_pair.private_key,
    )
    cert = parse_cvc(data)
    cert.verify_signature(cert)


async def test_ws_security_with_a_token_key(ec_pair: KeyPair) -> None:
    """The eID-Interface client signs its SOAP requests in the token; the simulator verifies them."""
    from aiohttp import web

    from eid_gateway.backends.tr03130 import Tr03130Client
    from eid_gateway.core.port import EidRequest
    from eid_gateway.identity import Attribute
    from eid_gateway.simulator import Simulator, SimulatorConfig
    from saml.keys import generate_key_pair

    sim_key = generate_key_pair("ec-p256")
    sock = bound_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sim = Simulator(SimulatorConfig(public_origin=origin, key=sim_key, gateway_cert=ec_pair.certificate))
    app = web.Application()
    app.router.add_routes(sim.routes())
    servers = Servers()
    await servers.serve(app, sock)
    client = Tr03130Client(origin + "/eid-sim/eID", ec_pair, sim_key.certificate, 5.0)
    try:
        session = await client.start_session(
            EidRequest(required=frozenset({Attribute.FAMILY_NAMES, Attribute.PSEUDONYM}))
        )
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
    text = text.replace(
        'saml_signing_key = "certs/saml-signing.key"',
        f'saml_signing_key = "pkcs11:token={LABEL};object=saml-rsa"\npkcs11_pin_env = "TEST_EIDGW_HSM_PIN"',
    )
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
        entity = parse_metadata(
            metadata, trusted=[setup.gateway.config.keys.saml_signing.certificate], require_signature=True
        )
        assert entity.idp is not None
        trusted = entity.idp.signing_certificates()
        assert setup.gateway.config.keys.saml_signing.certificate in trusted and rsa_pair.certificate in trusted
        # what the token key signs after the switch verifies with the keys the service already has
        request = build_authn_request(AuthnRequest(issuer="urn:gw", destination="https://sp.example/acs"))
        sign_enveloped(request, rsa_pair)
        assert verify_enveloped(parse_xml(to_bytes(request)), trusted) is not None
    finally:
        await servers.close()


# --- OIDC: the provider's ID-token signing keys in the token --------------------------------------------

HSM_PIN_ENV = "TEST_EIDGW_HSM_PIN"
TokenKey = Pkcs11EcPrivateKey | Pkcs11RsaPrivateKey


@pytest.fixture(scope="session")
def oidc_token_keys(token: Pkcs11Token) -> dict[str, TokenKey]:
    """The OIDC provider's own key pairs, generated in the token: EC P-256 (ES256) and RSA-3072 (PS256)."""
    token.generate("oidc-ec", "ec-p256")
    token.generate("oidc-rsa", "rsa-3072")
    return {"ES256": token_private_key(token, "oidc-ec"), "PS256": token_private_key(token, "oidc-rsa")}


def _oidc_provider_in_token(base_dir: Path) -> ProviderSettings:
    settings = parse_oidc_settings(
        tomllib.loads(f"""
[keys]
pkcs11_pin_env = "{HSM_PIN_ENV}"
[oidc]
[oidc.signing_key]
kid = "hsm-ec"
path = "pkcs11:token={LABEL};object=oidc-ec"
[oidc.rsa_signing_key]
kid = "hsm-rsa"
path = "pkcs11:token={LABEL};object=oidc-rsa"
"""),
        base_dir,
    )
    assert settings is not None
    return settings.provider


def _verify_compact_jws(compact: str, public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey, jws_alg: str) -> None:
    """Check a JWS signature with cryptography alone (independent of joserfc): raw r||s, or PSS."""

    def b64(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    header, payload, signature = compact.split(".")
    signed, sig = f"{header}.{payload}".encode("ascii"), b64(signature)
    if jws_alg == "ES256":
        assert isinstance(public_key, ec.EllipticCurvePublicKey) and len(sig) == 64
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        public_key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public_key, rsa.RSAPublicKey) and jws_alg == "PS256"
        public_key.verify(sig, signed, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


@pytest.mark.parametrize("jws_alg", ["ES256", "PS256"])
def test_oidc_id_token_signed_in_the_token(
    oidc_token_keys: dict[str, TokenKey], jws_alg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[oidc.*_key] path = "pkcs11:..."``: the provider signs ID tokens in the token; the JWKS it
    publishes is the public key only and verifies them (joserfc, and cryptography on its own)."""
    monkeypatch.setenv(HSM_PIN_ENV, PIN)
    keys = load_provider_keys(_oidc_provider_in_token(tmp_path))
    public = oidc_token_keys[jws_alg].public_key()
    signing = keys.for_alg(jws_alg).private_key  # a key object that signs inside the token ...
    assert isinstance(signing, Pkcs11EcPrivateKey if jws_alg == "ES256" else Pkcs11RsaPrivateKey)
    assert signing.public_key() == public  # ... with the key generated there
    jwks = keys.jwks()
    assert {k["kid"] for k in jwks["keys"]} == {"hsm-ec", "hsm-rsa"}
    assert not any(p in k for k in jwks["keys"] for p in ("d", "p", "q", "dp", "dq", "qi"))
    assert "d" not in keys.current.as_dict(private=True)  # nothing private to export, even if asked

    claims = {"iss": "https://gw.example", "sub": "s", "aud": "rp", "iat": 1, "exp": 2, "nonce": "n"}
    compact = sign_id_token(keys, jws_alg, claims)
    decoded = jwt.decode(compact, KeySet.import_key_set(jwks), algorithms=[jws_alg])
    assert decoded.claims == claims
    kid = "hsm-ec" if jws_alg == "ES256" else "hsm-rsa"
    assert decoded.header == {"alg": jws_alg, "kid": kid, "typ": "JWT"}
    _verify_compact_jws(compact, public, jws_alg)
    # bound to the content: another payload under the same signature fails
    head, _, sig = compact.split(".")
    other = sign_id_token(keys, jws_alg, {**claims, "sub": "x"}).split(".")[1]
    with pytest.raises(InvalidSignature):
        _verify_compact_jws(f"{head}.{other}.{sig}", public, jws_alg)


def test_oidc_token_key_errors_name_the_setting(
    oidc_token_keys: dict[str, TokenKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _oidc_provider_in_token(tmp_path)
    monkeypatch.setenv(HSM_PIN_ENV, PIN)
    for uri, message in [
        (
            f"pkcs11:token={LABEL};object=missing",
            f"oidc.signing_key.path: token {LABEL!r} holds no single private key 'missing'",
        ),
        (
            f"pkcs11:token={LABEL};object=oidc-rsa",
            f"oidc.signing_key.path: pkcs11:token={LABEL};object=oidc-rsa must hold an EC P-256 private key",
        ),
        (
            "pkcs11:token=no-such-token;object=oidc-ec",
            f"oidc.signing_key.path: cannot open token 'no-such-token' with {SOFTHSM2_MODULE}: ",
        ),
    ]:
        wrong = replace(provider, signing_key=SigningKeyRef("k", None, TokenKeyRef(uri, HSM_PIN_ENV)))
        with pytest.raises(ConfigError) as caught:
            load_provider_keys(wrong)
        assert str(caught.value).startswith(message) and PIN not in str(caught.value)
    monkeypatch.delenv(HSM_PIN_ENV)
    with pytest.raises(ConfigError, match=f"keys.pkcs11_pin_env: environment variable {HSM_PIN_ENV} is not"):
        load_provider_keys(provider)


@pytest.mark.parametrize("jws_alg", ["ES256", "PS256"])
async def test_oidc_sign_in_with_the_provider_key_in_the_token(
    oidc_token_keys: dict[str, TokenKey], jws_alg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole OIDC sign-in through the real app, configured from gateway.toml with the provider keys
    in the token: authlib's relying party (discovery, PKCE, token request) validates the ID token against
    the published JWKS; card step by the embedded simulator, AusweisApp played by its client."""
    from eid_gateway.app import create_app
    from eid_gateway.config import load_config
    from eid_gateway.instance import write_example_config
    from eid_gateway.store.sqlite import SqliteStore

    instance = tmp_path / "gw"
    write_example_config(instance, "http://127.0.0.1:8080", 8080)
    path = instance / "gateway.toml"
    text = path.read_text(encoding="utf-8")
    for old, new in [
        ("[keys]\n", f'[keys]\npkcs11_pin_env = "{HSM_PIN_ENV}"\n'),
        (
            'kid = "oidc-dev-1"\npath = "certs/oidc-signing.key"\n',
            f'kid = "hsm-ec"\npath = "pkcs11:token={LABEL};object=oidc-ec"\n',
        ),
        # init writes an RSA key file for RS256 too: both provider keys come from the token here
        (
            'kid = "oidc-rsa-dev-1"\npath = "certs/oidc-rsa-signing.key"\n',
            f'kid = "hsm-rsa"\npath = "pkcs11:token={LABEL};object=oidc-rsa"\n',
        ),
        (
            'redirect_uris = ["http://127.0.0.1:8080/demo/oidc/callback"]\npublic_client = true\n',
            f'redirect_uris = ["{RP_CB}"]\npublic_client = true\nid_token_signed_response_alg = "{jws_alg}"\n',
        ),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv(HSM_PIN_ENV, PIN)
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    config = load_config(path)
    assert config.oidc is not None
    assert config.oidc.provider.signing_key.token == TokenKeyRef(f"pkcs11:token={LABEL};object=oidc-ec", HSM_PIN_ENV)

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = on_its_own(config, origin, tmp_path / "gw.sqlite3")
    store = SqliteStore(config.store.path)
    app = create_app(config, store=store)  # mounts the OIDC provider from config.oidc: keys from the token
    browser = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await browser.start_server()
    try:
        gateway = Gateway(origin, config, browser)
        rp = RelyingParty(
            origin,
            OAuth2Session(
                "demo-oidc",
                scope="openid profile",
                redirect_uri=RP_CB,
                token_endpoint_auth_method="none",
                code_challenge_method="S256",
            ),
        )
        await in_thread(rp.discover)
        assert jws_alg in rp.metadata["id_token_signing_alg_values_supported"]
        location = await gateway.browse_to_gateway_redirect(rp.authorization_url())
        token = await in_thread(rp.callback, location)
        id_token = await in_thread(rp.validate_id_token, token)  # joserfc against the JWKS + authlib claims
        assert id_token.header["alg"] == jws_alg
        assert id_token.header["kid"] == ("hsm-ec" if jws_alg == "ES256" else "hsm-rsa")
        _verify_compact_jws(token["id_token"], oidc_token_keys[jws_alg].public_key(), jws_alg)
        userinfo = await in_thread(rp.userinfo)
        assert userinfo["sub"] == id_token["sub"] and userinfo["family_name"] == "MUSTERMANN"
    finally:
        await browser.close()
        await store.close()
