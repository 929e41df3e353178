"""The verifier's strict JOSE primitives (eid_gateway/wallet/jose.py): one encoding per value."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.jwk import ECKey

from eid_gateway.wallet.jose import (
    JoseFormatError,
    b64url_decode,
    b64url_encode,
    ec_thumbprint,
    json_value,
    parse_compact,
    public_key_from_jwk,
    sign_es256,
)


def test_base64url_round_trips_and_refuses_every_other_spelling() -> None:
    for n in range(40):
        data = os.urandom(n)
        assert b64url_decode(b64url_encode(data)) == data
    for bad in ("A", "AB", "AAB", "AA==", "a b", "+/AA", "AA\n", "ÄA"):
        with pytest.raises(JoseFormatError):
            b64url_decode(bad)


@pytest.mark.parametrize("text", [b'{"a": 1, "a": 2}', b"NaN", b'{"a": Infinity}', b"\xff", b"[" * 100_000])
def test_json_that_could_be_read_two_ways_is_refused(text: bytes) -> None:
    with pytest.raises(JoseFormatError):
        json_value(text)


def test_es256_signatures_interoperate_with_joserfc() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = sign_es256({"typ": "x"}, {"a": 1}, key)
    assert jws.deserialize_compact(token, ECKey.import_key(key.public_key())).payload == b'{"a":1}'
    parsed = parse_compact(token)
    assert parsed.verify(key.public_key()) and parsed.header == {"typ": "x", "alg": "ES256"}
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not parsed.verify(other)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    assert not parsed.verify(p384)
    theirs = jws.serialize_compact({"alg": "ES256"}, b'{"b":2}', ECKey.import_key(key))
    assert parse_compact(theirs).verify(key.public_key())


def test_holder_keys_and_thumbprints() -> None:
    key = ECKey.generate_key("P-256")
    public = dict(key.as_dict(private=False))
    assert ec_thumbprint(public) == key.thumbprint()  # RFC 7638, as joserfc computes it
    assert public_key_from_jwk(public).public_numbers() == key.raw_value.public_key().public_numbers()
    for bad in (
        dict(key.as_dict(private=True)),
        public | {"crv": "P-384"},
        public | {"x": public["y"]},
        public | {"x": "AA"},
        "x",
    ):
        with pytest.raises(JoseFormatError):
            public_key_from_jwk(bad)
