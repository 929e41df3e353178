"""The request object, the verifier's client identifier and the invocation URL (eid_gateway/wallet/request.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwe, jws
from joserfc.jwk import ECKey

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.request import (
    SELF_ISSUED_AUDIENCE,
    build_request_object,
    client_id_for,
    invocation_url,
    new_response_key,
)

from .conftest import Pki


def test_client_id_is_the_x509_hash_of_the_signing_certificate(pki: Pki) -> None:
    der = pki.verifier.certificate.public_bytes(Encoding.DER)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert client_id_for(pki.verifier.certificate) == "x509_hash:" + expected
    assert client_id_for(pki.issuer.certificate) != client_id_for(pki.verifier.certificate)


def test_the_response_key_pair_matches_and_the_public_half_has_no_private_part() -> None:
    private_json, public = new_response_key()
    private = json.loads(private_json)
    assert public["kid"] == private["kid"] and public["use"] == "enc" and public["alg"] == "ECDH-ES"
    assert "d" in private and "d" not in public and public["crv"] == "P-256"
    # what is encrypted to the public half opens with the private half
    token = jwe.encrypt_compact({"alg": "ECDH-ES", "enc": "A128GCM"}, b"hello", ECKey.import_key(public))
    assert jwe.decrypt_compact(token, ECKey.import_key(private)).plaintext == b"hello"
    assert new_response_key()[1]["kid"] != public["kid"]


def test_the_request_object_is_signed_and_carries_the_contracts_claims(pki: Pki) -> None:
    now = int(time.time())
    _, public = new_response_key()
    client_id = client_id_for(pki.verifier.certificate)
    dcql = dcql_query(frozenset({Attribute.GIVEN_NAMES}), minimum_age=None, vct_values=["urn:eudi:pid:1"])
    token = build_request_object(
        signing_key=pki.verifier.private_key,  # type: ignore[arg-type]
        chain=[pki.verifier.certificate, pki.ca.certificate],
        client_id=client_id,
        response_uri="https://gw.example/wallet/response/tx1",
        nonce="n-1",
        state="s-1",
        dcql=dcql,
        response_jwk=public,
        now=now,
    )
    # verified by joserfc, not by the project's own JWS code
    registry = jws.JWSRegistry(algorithms=["ES256"])
    registry.max_header_length = 8192  # joserfc's default (512 bytes) is smaller than an x5c of two certificates
    obj = jws.deserialize_compact(token, ECKey.import_key(pki.verifier.certificate.public_key()), registry=registry)  # type: ignore[arg-type]
    header, claims = obj.headers(), json.loads(obj.payload)
    assert header["alg"] == "ES256" and header["typ"] == "oauth-authz-req+jwt"
    assert [base64.b64decode(c) for c in header["x5c"]] == [
        pki.verifier.certificate.public_bytes(Encoding.DER),
        pki.ca.certificate.public_bytes(Encoding.DER),
    ]
    assert claims["client_id"] == client_id and claims["aud"] == SELF_ISSUED_AUDIENCE
    assert claims["response_type"] == "vp_token" and claims["response_mode"] == "direct_post.jwt"
    assert claims["response_uri"] == "https://gw.example/wallet/response/tx1"
    assert (claims["nonce"], claims["state"], claims["dcql_query"]) == ("n-1", "s-1", dcql)
    assert claims["iat"] == now and claims["exp"] == now + 300
    meta = claims["client_metadata"]
    assert meta["jwks"]["keys"] == [public]
    assert meta["encrypted_response_enc_values_supported"] == ["A128GCM", "A256GCM"]
    assert meta["vp_formats_supported"] == {
        "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
    }


def test_a_client_id_of_another_certificate_or_a_private_response_key_is_refused(pki: Pki) -> None:
    private_json, public = new_response_key()
    args = dict(
        signing_key=pki.verifier.private_key,
        chain=[pki.verifier.certificate],
        response_uri="https://gw.example/r",
        nonce="n",
        state="s",
        dcql={},
        now=0,
    )
    with pytest.raises(ValueError, match="x509_hash"):
        build_request_object(client_id=client_id_for(pki.issuer.certificate), response_jwk=public, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="public"):
        build_request_object(
            client_id=client_id_for(pki.verifier.certificate),
            response_jwk=json.loads(private_json),
            **args,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("openid4vp://", "openid4vp://?"),
        ("http://127.0.0.1:8000/authorize", "http://127.0.0.1:8000/authorize?"),
        ("https://w.example/a?x=1", "https://w.example/a?x=1&"),
    ],
)
def test_invocation_url_carries_client_id_and_request_uri(base: str, prefix: str) -> None:
    url = invocation_url(base, "x509_hash:abc-_", "https://gw.example/wallet/request/t?x=1&y=2")
    assert url.startswith(prefix)
    query = parse_qs(urlsplit(url.replace("openid4vp://", "openid4vp://h/")).query)
    assert query["client_id"] == ["x509_hash:abc-_"]
    assert query["request_uri"] == ["https://gw.example/wallet/request/t?x=1&y=2"]
