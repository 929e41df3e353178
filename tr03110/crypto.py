"""EAC cryptography of BSI TR-03110 (parts 2 and 3) over `cryptography`: curve, KDF, CMAC, TA, CA, RI.

The eID-Server side of Extended Access Control: it signs the Terminal Authentication challenge with the
terminal key, derives the Secure Messaging keys from its ephemeral key and the chip's static key, and
checks the chip's authentication token. The card side (used by the emulator in tests and the bench)
lives here too so both are computed by one implementation of the formulas — and checked against
independent published values in the tests.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import algorithms

from tr03110 import tlv
from tr03110.oids import (
    ID_CA_ECDH_AES_CBC_CMAC_128,
    ID_CA_ECDH_AES_CBC_CMAC_192,
    ID_CA_ECDH_AES_CBC_CMAC_256,
    oid_der,
)

CURVE: Final = ec.BrainpoolP256R1()
FIELD_BYTES: Final = 32

#: CA protocol -> AES key length in octets.
CA_KEY_LENGTH: Final = {
    ID_CA_ECDH_AES_CBC_CMAC_128: 16,
    ID_CA_ECDH_AES_CBC_CMAC_192: 24,
    ID_CA_ECDH_AES_CBC_CMAC_256: 32,
}


class EacCryptoError(ValueError):
    """A key, point or signature that cannot be used."""


class AuthenticationTokenMismatch(EacCryptoError):
    """The chip's Chip Authentication token does not verify: not the chip whose key we trust."""


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE)


def private_key_from_scalar(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(scalar, "big"), CURVE)


def point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """Uncompressed point 04 ‖ x ‖ y."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def public_key_from_point(data: bytes) -> ec.EllipticCurvePublicKey:
    """A brainpoolP256r1 public key from an uncompressed point; refuses points not on the curve."""
    if len(data) != 1 + 2 * FIELD_BYTES or data[0] != 0x04:
        raise EacCryptoError("not an uncompressed brainpoolP256r1 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, data)
    except ValueError:
        raise EacCryptoError("point is not on brainpoolP256r1") from None


def compressed(public_point: bytes) -> bytes:
    """TR-03110's Comp() for ECDH keys: the x-coordinate."""
    return public_point[1 : 1 + FIELD_BYTES]


def ecdh_x(private_key: ec.EllipticCurvePrivateKey, peer_point: bytes) -> bytes:
    """The shared secret of TR-03110 ECKA: the x-coordinate of d·Q."""
    return private_key.exchange(ec.ECDH(), public_key_from_point(peer_point))


def kdf(secret: bytes, nonce: bytes | None, counter: int, key_length: int = 16) -> bytes:
    """TR-03110 part 3, A.2.3: H(secret ‖ nonce ‖ counter) — SHA-1 for AES-128, SHA-256 above."""
    data = secret + (nonce or b"") + counter.to_bytes(4, "big")
    digest = hashlib.sha1(data).digest() if key_length == 16 else hashlib.sha256(data).digest()
    return digest[:key_length]


def kdf_enc(secret: bytes, nonce: bytes | None, key_length: int = 16) -> bytes:
    return kdf(secret, nonce, 1, key_length)


def kdf_mac(secret: bytes, nonce: bytes | None, key_length: int = 16) -> bytes:
    return kdf(secret, nonce, 2, key_length)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC truncated to 8 octets (the MAC length of EAC)."""
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()[:8]


def ca_public_key_object(protocol: str, public_point: bytes) -> bytes:
    """The ``7F49`` public key data object the authentication token is computed over."""
    return tlv.encode(0x7F49, oid_der(protocol) + tlv.encode(0x86, public_point))


def authentication_token(k_mac: bytes, protocol: str, terminal_point: bytes) -> bytes:
    """T_PICC = MAC(K_MAC, PK_PCD) (CA version 2)."""
    return aes_cmac(k_mac, ca_public_key_object(protocol, terminal_point))


def verify_authentication_token(k_mac: bytes, protocol: str, terminal_point: bytes, token: bytes) -> None:
    if not hmac.compare_digest(authentication_token(k_mac, protocol, terminal_point), token):
        raise AuthenticationTokenMismatch("Chip Authentication token does not verify")


def ta_data(id_picc: bytes, challenge: bytes, ephemeral_point: bytes, aux_data: bytes | None) -> bytes:
    """What the terminal signs in TA version 2: ID_PICC ‖ r_PICC ‖ Comp(PK_PCD) ‖ A_PCD."""
    return id_picc + challenge + compressed(ephemeral_point) + (aux_data or b"")


def _plain_length(key: ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def ta_sign(terminal_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-SHA-256 in TR-03111's plain format r ‖ s."""
    der = terminal_key.sign(data, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    n = _plain_length(terminal_key.public_key())
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def ta_verify(terminal_public: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    """What the chip does with the TA signature (used by the emulator and the tests)."""
    n = _plain_length(terminal_public)
    if len(signature) != 2 * n:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:n], "big"), int.from_bytes(signature[n:], "big"))
    try:
        terminal_public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def restricted_id(ri_private_key: ec.EllipticCurvePrivateKey, sector_point: bytes) -> bytes:
    """The chip's sector-specific identifier: SHA-256 of the ECKA x-coordinate (id-RI-ECDH-SHA-256)."""
    return hashlib.sha256(ecdh_x(ri_private_key, sector_point)).digest()


def sector_key(secret: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """A deterministic sector key pair from the gateway's secret: one sector per eID-Server instance."""
    order = int("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7", 16)
    seed = hmac.new(secret, b"eid-gateway RI sector " + label.encode(), hashlib.sha512).digest()
    return ec.derive_private_key(int.from_bytes(seed, "big") % (order - 1) + 1, CURVE)
