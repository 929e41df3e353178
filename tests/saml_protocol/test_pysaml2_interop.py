"""Interoperability with a real third-party SAML stack: pysaml2 (with its xmlsec1 backend).

* pysaml2 as SP (``Saml2Client``, configured from OUR IdP metadata) accepts Responses that ``saml`` builds
  and signs with an RSA-3072 key; it also sends AuthnRequests (Redirect binding, query signature) that our
  IdP side verifies.
* our ``ResponseValidator`` accepts a Response that pysaml2 signs as IdP (``saml2.server.Server``),
  trusting pysaml2's own generated metadata (``saml2.metadata.entity_descriptor``) — and refuses what
  pysaml2 does by default but TR-02102 forbids (RSA-SHA1 signatures, 3DES-CBC encryption).

Encryption towards pysaml2: pysaml2 decrypts by running the ``xmlsec1`` command-line tool. Debian
bookworm ships xmlsec1 1.2.37, which does not know the XML-Enc 1.1 key transport ``xmlenc11#rsa-oaep``
we emit, and whose ``rsa-oaep-mgf1p`` accepts only SHA-1 as OAEP digest (we write SHA-256). Since
xmlsec1 1.3 both work, so that test runs only where ``xmlsec1 --version`` is >= 1.3 and is skipped
with this reason otherwise.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from saml import bindings, dsig
from saml import messages as m
from saml import metadata as md
from saml.algorithms import RSA_OAEP_MGF1P, SHA1
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem
from saml.validate import ResponseValidator, verify_authn_request
from saml.xml import to_bytes
from saml.xmlenc import ForbiddenEncryptionAlgorithm, encrypt_assertion

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(XMLSEC1 is None, reason="pysaml2 needs the xmlsec1 binary (apt install xmlsec1)")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT, AuthnBroker, authn_context_class_ref
    from saml2.client import Saml2Client
    from saml2.config import IdPConfig, SPConfig
    from saml2.metadata import entity_descriptor
    from saml2.saml import NAMEID_FORMAT_TRANSIENT
    from saml2.saml import NameID as PyNameID
    from saml2.server import Server
    from saml2.sigver import SignatureError as PySignatureError

OUR_IDP = "https://idp.stadt.example/saml/metadata"
OUR_SSO = "https://idp.stadt.example/saml/sso"
PY_SP = "https://pysaml2-sp.example/metadata"
PY_ACS = "https://pysaml2-sp.example/acs"
PY_IDP = "https://pysaml2-idp.example/metadata"
OUR_SP = "https://service.stadt.example/saml/metadata"
OUR_ACS = "https://service.stadt.example/saml/acs"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def _xmlsec1_version() -> tuple[int, ...]:
    out = subprocess.run([XMLSEC1 or "xmlsec1", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in found.groups()) if found else (0,)


@dataclass
class Keys:
    idp: KeyPair
    sp: KeyPair


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(idp=generate_key_pair("rsa-3072", "interop idp"), sp=generate_key_pair("rsa-3072", "interop sp"))


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


# ------------------------------------------------------------------------------------ pysaml2 as SP ---


@pytest.fixture(scope="module")
def py_sp(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Saml2Client:
    d = tmp_path_factory.mktemp("py_sp")
    our_idp_metadata = md.build_metadata(
        md.EntityDescriptor(
            OUR_IDP,
            idp=md.IDPSSODescriptor(
                sso_services=(md.Endpoint(m.BINDING_HTTP_REDIRECT, OUR_SSO), md.Endpoint(m.BINDING_HTTP_POST, OUR_SSO)),
                keys=(md.KeyDescriptor(keys.idp.certificate, md.USE_SIGNING),),
                name_id_formats=(m.NAMEID_TRANSIENT,),
            ),
        )
    )
    key_pem, cert_pem = key_pair_to_pem(keys.sp)
    key_file, cert_file = _write(d, "sp.key", key_pem), _write(d, "sp.crt", cert_pem)
    config: dict[str, Any] = {
        "entityid": PY_SP,
        "metadata": {"local": [_write(d, "our_idp.xml", to_bytes(our_idp_metadata))]},
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "xmlsec_binary": XMLSEC1,
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(PY_ACS, BINDING_HTTP_POST)]},
                "want_assertions_signed": True,
                "want_response_signed": False,
                "allow_unsolicited": False,
                "authn_requests_signed": True,
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
            }
        },
    }
    cfg = SPConfig()
    cfg.load(config)
    return Saml2Client(cfg)


def _our_response(
    keys: Keys,
    request_id: str,
    *,
    sign_response: bool,
    encrypt: bool = False,
    name_id: str = "pseudonym-4711",
    **encryption: str,
) -> bytes:
    now = m.utcnow()
    assertion = m.build_assertion(
        m.Assertion(
            issuer=OUR_IDP,
            subject=m.Subject(
                m.NameID(name_id, m.NAMEID_TRANSIENT),
                (
                    m.SubjectConfirmation(
                        recipient=PY_ACS, not_on_or_after=now + timedelta(minutes=5), in_response_to=request_id
                    ),
                ),
            ),
            conditions=m.Conditions(now - timedelta(seconds=30), now + timedelta(minutes=5), ((PY_SP,),)),
            authn_statements=(m.AuthnStatement(now, m.new_id(), m.AC_SMARTCARD_PKI),),
            attributes=(
                m.Attribute("urn:oid:2.5.4.42", ("ERIKA",), friendly_name="givenName"),
                m.Attribute("urn:oid:2.5.4.4", ("MUSTERMANN",), friendly_name="sn"),
            ),
        )
    )
    m.sign_message(assertion, keys.idp)
    if encrypt:
        assertion = encrypt_assertion(assertion, keys.sp.certificate, **encryption)
    response = m.build_response(m.Response(issuer=OUR_IDP, destination=PY_ACS, in_response_to=request_id), [assertion])
    if sign_response:
        m.sign_message(response, keys.idp)
    return to_bytes(response)


def _py_parse(client: Saml2Client, xml: bytes, request_id: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.parse_authn_request_response(
            base64.b64encode(xml).decode(), BINDING_HTTP_POST, outstanding={request_id: "/"}
        )


@pytest.mark.parametrize("sign_response", [True, False], ids=["signed-response", "signed-assertion-only"])
def test_pysaml2_sp_accepts_our_signed_response(py_sp: Saml2Client, keys: Keys, sign_response: bool) -> None:
    request_id = m.new_id()
    result = _py_parse(py_sp, _our_response(keys, request_id, sign_response=sign_response), request_id)
    assert result is not None
    assert result.name_id.text == "pseudonym-4711"
    assert result.name_id.format == m.NAMEID_TRANSIENT
    assert result.in_response_to == request_id
    assert result.ava == {"givenName": ["ERIKA"], "sn": ["MUSTERMANN"]}
    assert result.assertion.authn_statement[0].authn_context.authn_context_class_ref.text == m.AC_SMARTCARD_PKI


def test_pysaml2_sp_refuses_our_response_tampered_after_signing(py_sp: Saml2Client, keys: Keys) -> None:
    """Proves the acceptance above is a real signature check on pysaml2's side."""
    request_id = m.new_id()
    xml = _our_response(keys, request_id, sign_response=False).replace(b"ERIKA", b"MALLORY")
    with pytest.raises(PySignatureError):
        _py_parse(py_sp, xml, request_id)


@pytest.mark.skipif(
    XMLSEC1 is not None and _xmlsec1_version() < (1, 3),
    reason="xmlsec1 < 1.3 (Debian bookworm: 1.2.37) cannot do xmlenc11#rsa-oaep or OAEP with "
    "SHA-256, which is what we encrypt with (AES-256-GCM + RSA-OAEP/MGF1-SHA256)",
)
def test_pysaml2_sp_decrypts_our_encrypted_assertion(py_sp: Saml2Client, keys: Keys) -> None:
    request_id = m.new_id()
    result = _py_parse(py_sp, _our_response(keys, request_id, sign_response=True, encrypt=True), request_id)
    assert result is not None and result.name_id is not None
    assert result.name_id.text == "pseudonym-4711"


def test_pysaml2_sp_decrypts_our_assertion_encrypted_in_xml_enc_1_0_form(py_sp: Saml2Client, keys: Keys) -> None:
    """AES-256-GCM with RSA-OAEP-MGF1P (SHA-1 OAEP digest): what xmlsec1 1.2 (pysaml2's backend) decrypts."""
    request_id = m.new_id()
    xml = _our_response(
        keys, request_id, sign_response=True, encrypt=True, key_transport=RSA_OAEP_MGF1P, oaep_digest=SHA1
    )
    assert b"EncryptedAssertion" in xml and b"ERIKA" not in xml
    result = _py_parse(py_sp, xml, request_id)
    assert result is not None and result.name_id is not None
    assert result.name_id.text == "pseudonym-4711"
    assert result.ava == {"givenName": ["ERIKA"], "sn": ["MUSTERMANN"]}


def test_pysaml2_sp_redirect_authn_request_verified_by_our_idp_side(py_sp: Saml2Client, keys: Keys) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        request_id, info = py_sp.prepare_for_authenticate(
            entityid=OUR_IDP,
            relay_state="st-1",
            binding=BINDING_HTTP_REDIRECT,
            sign=True,
            sigalg=RSA_SHA256,
            digest_alg=SHA256,
        )
    location = dict(info["headers"])["Location"]
    assert location.startswith(OUR_SSO + "?")
    msg = bindings.parse_redirect(urlsplit(location).query, trusted=[keys.sp.certificate], require_signature=True)
    assert msg.signed and msg.relay_state == "st-1" and msg.sig_alg == RSA_SHA256
    request = verify_authn_request(
        msg.element,
        trusted=[keys.sp.certificate],
        destination=OUR_SSO,
        sp_entity_id=PY_SP,
        acs_urls=[PY_ACS],
        binding_signed=msg.signed,
    )
    assert request.id == request_id and request.acs_url == PY_ACS
    # one changed character anywhere in the signed part breaks it
    tampered = urlsplit(location).query.replace("RelayState=st-1", "RelayState=st-2")
    with pytest.raises(bindings.BindingSignatureInvalid):
        bindings.parse_redirect(tampered, trusted=[keys.sp.certificate], require_signature=True)


# ----------------------------------------------------------------------------------- pysaml2 as IdP ---


@dataclass
class PyIdp:
    server: Server
    metadata: bytes


@pytest.fixture(scope="module")
def py_idp(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> PyIdp:
    d = tmp_path_factory.mktemp("py_idp")
    our_sp_metadata = md.build_metadata(
        md.EntityDescriptor(
            OUR_SP,
            sp=md.SPSSODescriptor(
                acs_services=(md.Endpoint(m.BINDING_HTTP_POST, OUR_ACS),),
                keys=(md.KeyDescriptor(keys.sp.certificate),),
                want_assertions_signed=True,
            ),
        )
    )
    key_pem, cert_pem = key_pair_to_pem(keys.idp)
    config: dict[str, Any] = {
        "entityid": PY_IDP,
        "metadata": {"local": [_write(d, "our_sp.xml", to_bytes(our_sp_metadata))]},
        "key_file": _write(d, "idp.key", key_pem),
        "cert_file": _write(d, "idp.crt", cert_pem),
        "xmlsec_binary": XMLSEC1,
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [("https://pysaml2-idp.example/sso", BINDING_HTTP_REDIRECT)]},
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": m.ATTRNAME_FORMAT_URI,
                    }
                },
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
            }
        },
    }
    cfg = IdPConfig()
    cfg.load(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metadata = str(entity_descriptor(cfg)).encode()
    return PyIdp(Server(config=cfg), metadata)


def _py_response(idp: PyIdp, request_id: str, **kw: Any) -> bytes:
    broker = AuthnBroker()
    broker.add(authn_context_class_ref(PASSWORDPROTECTEDTRANSPORT), "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resp = idp.server.create_authn_response(
            {"givenName": ["ERIKA"], "mail": ["erika@example.de", "e.m@example.de"]},
            request_id,
            OUR_ACS,
            OUR_SP,
            name_id=PyNameID(format=NAMEID_FORMAT_TRANSIENT, text="py-subject-1"),
            authn=broker.get_authn_by_accr(PASSWORDPROTECTEDTRANSPORT),
            sign_response=True,
            sign_assertion=True,
            **kw,
        )
    return str(resp).encode()


def _validator(idp: PyIdp, keys: Keys, request_id: str, **kw: Any) -> ResponseValidator:
    entity = md.parse_metadata(idp.metadata)
    assert entity.entity_id == PY_IDP and entity.idp is not None
    validator = ResponseValidator.from_metadata(
        entity, sp_entity_id=OUR_SP, acs_url=OUR_ACS, require_signed_response=True, decryption_keys=[keys.sp], **kw
    )
    validator.request_store.add(request_id, expires_at=m.utcnow() + timedelta(minutes=5))
    return validator


def test_our_validator_accepts_pysaml2_idp_response(py_idp: PyIdp, keys: Keys) -> None:
    request_id = m.new_id()
    xml = _py_response(py_idp, request_id, sign_alg=RSA_SHA256, digest_alg=SHA256)
    result = _validator(py_idp, keys, request_id).validate(xml)
    assert result.issuer == PY_IDP and result.in_response_to == request_id
    assert result.name_id.value == "py-subject-1" and result.name_id.format == m.NAMEID_TRANSIENT
    assert result.response_signed and result.assertion_signed
    assert result.attributes == {
        "urn:oid:2.5.4.42": ["ERIKA"],
        "urn:oid:0.9.2342.19200300.100.1.3": ["erika@example.de", "e.m@example.de"],
    }
    assert result.authn_context == m.AC_PASSWORD_PROTECTED


def test_pysaml2_idp_response_tampered_is_refused(py_idp: PyIdp, keys: Keys) -> None:
    request_id = m.new_id()
    xml = _py_response(py_idp, request_id, sign_alg=RSA_SHA256, digest_alg=SHA256).replace(
        b"py-subject-1", b"py-subject-2"
    )
    with pytest.raises(dsig.BadSignature):
        _validator(py_idp, keys, request_id).validate(xml)


def test_pysaml2_idp_default_rsa_sha1_signature_refused(py_idp: PyIdp, keys: Keys) -> None:
    request_id = m.new_id()
    xml = _py_response(py_idp, request_id)  # pysaml2's defaults: rsa-sha1 + sha1 digest
    with pytest.raises(dsig.ForbiddenAlgorithm, match="rsa-sha1"):
        _validator(py_idp, keys, request_id).validate(xml)


def test_pysaml2_idp_default_3des_cbc_encryption_refused(py_idp: PyIdp, keys: Keys) -> None:
    request_id = m.new_id()
    xml = _py_response(py_idp, request_id, sign_alg=RSA_SHA256, digest_alg=SHA256, encrypt_assertion=True)
    assert b"tripledes-cbc" in xml
    with pytest.raises(ForbiddenEncryptionAlgorithm, match="tripledes-cbc"):
        _validator(py_idp, keys, request_id).validate(xml)
