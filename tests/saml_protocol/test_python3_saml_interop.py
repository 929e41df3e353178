"""Interoperability with python3-saml (OneLogin; php-saml shares its schema set), issue 15.

The gateway's own Response builder (``saml_idp.build_success_response``) makes an encrypted Response for
a service registered as python3-saml's metadata would be, and python3-saml's ``OneLogin_Saml2_Response``
validates it as its ACS would (signature, schema, destination, audience, times, decryption):

* with ``key_transport = "rsa-oaep-mgf1p"`` (XML Enc 1.0, the gateway's default) it is accepted and the
  attributes read;
* with ``rsa-oaep`` (XML Enc 1.1) it is refused by its XSD check: the ``xenc11:MGF`` child
  of ``EncryptionMethod`` is undeclared under the 2002 xenc schema's strict wildcard. That is the
  measurement behind docs/saml.md "Key transport"; the test fails when python3-saml changes that.
"""

from __future__ import annotations

import base64
import warnings
from datetime import UTC, datetime
from typing import Any

import pytest

from eid_gateway.frontends.saml_idp import build_success_response
from eid_gateway.identity import Attribute, Identity
from eid_gateway.services import SamlServiceSettings
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem
from saml.messages import new_id
from saml.xml import to_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    onelogin = pytest.importorskip("onelogin.saml2.response")
    from onelogin.saml2.settings import OneLogin_Saml2_Settings  # type: ignore[import-untyped]

IDP = "https://gateway.stadt.example/saml/metadata"
SP = "https://python3-saml.stadt.example/metadata"
ACS = "https://python3-saml.stadt.example/acs"
REQUEST_DATA = {
    "https": "on",
    "http_host": "python3-saml.stadt.example",
    "script_name": "/acs",
    "get_data": {},
    "post_data": {},
}


@pytest.fixture(scope="module")
def keys() -> tuple[KeyPair, KeyPair]:
    return generate_key_pair("rsa-3072", "gateway idp"), generate_key_pair("rsa-3072", "python3-saml sp")


def _pem_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


def _settings(keys: tuple[KeyPair, KeyPair]) -> OneLogin_Saml2_Settings:
    idp, sp = keys
    sp_key, sp_cert = key_pair_to_pem(sp)
    config: dict[str, Any] = {
        "strict": True,
        "sp": {
            "entityId": SP,
            "assertionConsumerService": {"url": ACS},
            "x509cert": _pem_body(sp_cert),
            "privateKey": sp_key.decode(),
        },
        "idp": {
            "entityId": IDP,
            "singleSignOnService": {"url": "https://gateway.stadt.example/saml/sso"},
            "x509cert": _pem_body(key_pair_to_pem(idp)[1]),
        },
        "security": {
            "wantAssertionsEncrypted": True,
            "wantAssertionsSigned": True,
            "wantMessagesSigned": True,
            "wantNameId": True,
        },
    }
    return OneLogin_Saml2_Settings(config, sp_validation_only=True)


def _response(keys: tuple[KeyPair, KeyPair], key_transport: str, request_id: str) -> str:
    idp, sp = keys
    settings = SamlServiceSettings(
        entity_id=SP,
        acs_urls=(ACS,),
        signing_certs=(sp.certificate,),
        encryption_cert=sp.certificate,
        encrypt_assertions=True,
        key_transport=key_transport,
    )
    element = build_success_response(
        idp_entity_id=IDP,
        key=idp,
        settings=settings,
        acs_url=ACS,
        request_id=request_id,
        identity=Identity(given_names="ERIKA", family_names="MUSTERMANN", authenticated_at=datetime.now(UTC)),
        pseudonym="pseudonym-4711",
        released=frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES}),
    )
    return base64.b64encode(to_bytes(element)).decode()


def test_python3_saml_accepts_the_xml_enc_1_0_key_transport(keys: tuple[KeyPair, KeyPair]) -> None:
    request_id = new_id()
    response = onelogin.OneLogin_Saml2_Response(_settings(keys), _response(keys, "rsa-oaep-mgf1p", request_id))
    assert response.is_valid(REQUEST_DATA, request_id, raise_exceptions=True)
    assert response.get_nameid() == "pseudonym-4711"
    attributes = response.get_attributes()
    assert attributes["urn:eid-gateway:attribute:given_names"] == ["ERIKA"]
    assert attributes["urn:eid-gateway:attribute:family_names"] == ["MUSTERMANN"]


def test_python3_saml_refuses_the_xml_enc_1_1_key_transport_by_schema(keys: tuple[KeyPair, KeyPair]) -> None:
    request_id = new_id()
    response = onelogin.OneLogin_Saml2_Response(_settings(keys), _response(keys, "rsa-oaep", request_id))
    assert not response.is_valid(REQUEST_DATA, request_id)
    assert "saml-schema-protocol-2.0.xsd" in str(response.get_error())
