"""The signed request object (OpenID4VP 1.0 §5, HAIP): what the wallet fetches from ``request_uri``.

The verifier identifies itself with the ``x509_hash`` client identifier prefix: the hash of the leaf
certificate that signs the request object, whose chain travels in the ``x5c`` header. The response comes
back encrypted (``direct_post.jwt``) to an ephemeral P-256 key made for this one transaction.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.jwk import ECKey

from eid_gateway.wallet.jose import ES256, b64url_encode, sign_es256
from eid_gateway.wallet.pid import FORMAT
from eid_gateway.wallet.trust import x5c_of

CLIENT_ID_PREFIX = "x509_hash:"
#: ``typ`` of a request object (RFC 9101 §10.8) and the content type it is served with.
REQUEST_TYP = "oauth-authz-req+jwt"
REQUEST_CONTENT_TYPE = "application/oauth-authz-req+jwt"
#: The static audience of a request object fetched by the wallet (OpenID4VP 1.0 §5.8).
SELF_ISSUED_AUDIENCE = "https://self-issued.me/v2"
RESPONSE_MODE = "direct_post.jwt"
#: JWE algorithms of the encrypted response (HAIP: ECDH-ES with P-256; A128GCM and A256GCM).
RESPONSE_ALG = "ECDH-ES"
RESPONSE_ENC_VALUES: tuple[str, ...] = ("A128GCM", "A256GCM")


def client_id_for(cert: x509.Certificate) -> str:
    """``x509_hash:`` + base64url(SHA-256(DER of the request signing certificate))."""
    return CLIENT_ID_PREFIX + b64url_encode(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest())


def new_response_key() -> tuple[str, dict[str, Any]]:
    """A fresh P-256 key for one transaction's encrypted response.

    Returns the private JWK as a JSON string (kept in the flow record until the response arrives) and
    the public JWK (with ``kid``, ``use: enc``, ``alg: ECDH-ES``) for the request's ``client_metadata``.
    """
    key = ECKey.generate_key("P-256", private=True)
    kid = secrets.token_urlsafe(12)
    private = {**key.as_dict(private=True), "kid": kid, "use": "enc", "alg": RESPONSE_ALG}
    public = {**key.as_dict(private=False), "kid": kid, "use": "enc", "alg": RESPONSE_ALG}
    return json.dumps(private, separators=(",", ":")), public


def client_metadata(response_jwk: dict[str, Any]) -> dict[str, Any]:
    """The verifier metadata sent inside the request (OpenID4VP 1.0 §5.1, §11)."""
    return {
        "jwks": {"keys": [response_jwk]},
        "encrypted_response_enc_values_supported": list(RESPONSE_ENC_VALUES),
        "vp_formats_supported": {FORMAT: {"sd-jwt_alg_values": [ES256], "kb-jwt_alg_values": [ES256]}},
    }


def build_request_object(
    *,
    signing_key: ec.EllipticCurvePrivateKey,
    chain: Sequence[x509.Certificate],
    client_id: str,
    response_uri: str,
    nonce: str,
    state: str,
    dcql: dict[str, Any],
    response_jwk: dict[str, Any],
    now: int,
    lifetime: int = 300,
) -> str:
    """The request object as a compact JWS (ES256, ``typ`` oauth-authz-req+jwt, ``x5c`` = ``chain``).

    ``chain`` starts with the certificate ``client_id`` was made from (:func:`client_id_for`).
    """
    if not chain or client_id != client_id_for(chain[0]):
        raise ValueError("client_id is not the x509_hash of the first certificate of the chain")
    if any(k in response_jwk for k in ("d", "p", "q")):
        raise ValueError("response_jwk must be the public key")
    claims: dict[str, Any] = {
        "iss": client_id,
        "aud": SELF_ISSUED_AUDIENCE,
        "client_id": client_id,
        "response_type": "vp_token",
        "response_mode": RESPONSE_MODE,
        "response_uri": response_uri,
        "nonce": nonce,
        "state": state,
        "dcql_query": dcql,
        "client_metadata": client_metadata(response_jwk),
        "iat": now,
        "exp": now + lifetime,
    }
    header = {"typ": REQUEST_TYP, "x5c": x5c_of(chain)}
    return sign_es256(header, claims, signing_key)


def invocation_url(base: str, client_id: str, request_uri: str) -> str:
    """The URL that starts the wallet: ``base`` (``openid4vp://`` or a web wallet) + client_id + request_uri."""
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    if "?" in base:
        return f"{base}&{query}"
    return f"{base}?{query}"
