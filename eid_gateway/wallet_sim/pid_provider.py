"""The test PID provider: a CA, an issuer key, PIDs in SD-JWT VC and a Token Status List (TEST FACILITY).

The PID is issued with the IETF reference library (``sd_jwt.issuer.SDJWTIssuer``), every claim
selectively disclosable (nested members of ``address``, ``place_of_birth`` and ``age_equal_or_over``
too); only the credential's own claims are plain (``iss``, ``iat``, ``exp``, ``vct``, ``status``, ``cnf``).
The issuer signs with ES256 and names its certificate in the header (``x5c``), so a verifier checks the
chain against its trust list: the provider's CA certificate (``pid-ca.crt``, served as ``/ca.pem``).

The revocation state lives in a Token Status List (IETF draft-ietf-oauth-status-list): one bit per
PID, the list served as a JWT (``typ: statuslist+jwt``) signed by the same issuer key.
"""

from __future__ import annotations

import base64
import datetime
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey
from jwcrypto import jwk  # the sd-jwt library's key type
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer

from certs.devpki import DEV_MARKER, dev_file_header, generate_ca, write_private
from certs.loading import load_key_pair_file
from eid_gateway.wallet_sim.persons import TestPerson
from saml.keys import KeyPair, key_pair_to_pem

#: The provider's issuer identifier (``iss``; also the issuer certificate's subjectAltName URI).
ISSUER_ID: Final = "https://pid-provider.wallet-sim.test"
#: The PID type the test provider issues (the German PID's SD-JWT VC type).
VCT: Final = "urn:eudi:pid:de:1"
#: The SD-JWT VC media type, in the issuer JWT's ``typ`` header.
SD_JWT_VC_TYP: Final = "dc+sd-jwt"
#: Default PID lifetime and the ``exp`` of an expired one (relative to issuance).
PID_LIFETIME: Final = 30 * 24 * 3600
STATUS_LIST_SIZE: Final = 1024
CA_STEM: Final = "pid-ca"
ISSUER_STEM: Final = "pid-issuer"
_DAYS: Final = 730


class ProviderError(Exception):
    """The provider's files are unusable (half written, not a key pair of this provider)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _issue_signer(ca: KeyPair, common_name: str) -> KeyPair:
    """An issuer certificate under ``ca``: digitalSignature only, the issuer id as subjectAltName URI."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_DAYS - 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(ISSUER_ID)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return KeyPair(key, cert, (ca.certificate,))


@dataclass(frozen=True)
class ProviderKeys:
    """One PID provider's CA and issuer key pair."""

    ca: KeyPair
    issuer: KeyPair

    @classmethod
    def generate(cls, label: str = "eid-gateway test PID provider") -> ProviderKeys:
        ca = generate_ca(f"{label} CA ({DEV_MARKER})", days=_DAYS)
        return cls(ca, _issue_signer(ca, f"{label} issuer ({DEV_MARKER})"))

    @classmethod
    def load_or_create(cls, directory: Path) -> ProviderKeys:
        """The provider in ``directory`` (``pid-ca.{key,crt}``, ``pid-issuer.{key,crt}``), made there
        (0700 directory, 0600 files) when none is there yet."""
        paths = {stem: (directory / f"{stem}.key", directory / f"{stem}.crt") for stem in (CA_STEM, ISSUER_STEM)}
        present = [p.exists() for pair in paths.values() for p in pair]
        if all(present):
            ca = load_key_pair_file(*paths[CA_STEM])
            issuer = load_key_pair_file(*paths[ISSUER_STEM])
            try:
                issuer.certificate.verify_directly_issued_by(ca.certificate)
            except (ValueError, TypeError, InvalidSignature):
                raise ProviderError(f"{paths[ISSUER_STEM][1]} was not issued by {paths[CA_STEM][1]}") from None
            return cls(ca, KeyPair(issuer.private_key, issuer.certificate, (ca.certificate,)))
        if any(present):
            raise ProviderError(f"{directory} holds a part of a PID provider only; remove its pid-* files")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = cls.generate()
        for stem, kp in ((CA_STEM, made.ca), (ISSUER_STEM, made.issuer)):
            key_pem, _ = key_pair_to_pem(kp)
            write_private(paths[stem][0], dev_file_header(f"wallet-sim {stem} key") + key_pem)
            write_private(paths[stem][1], kp.certificate.public_bytes(serialization.Encoding.PEM))
        return made

    @property
    def ca_pem(self) -> bytes:
        return self.ca.certificate.public_bytes(serialization.Encoding.PEM)

    def x5c(self) -> list[str]:
        """The issuer's certificate for the JOSE ``x5c`` header (standard base64 DER; no trust anchor)."""
        der = self.issuer.certificate.public_bytes(serialization.Encoding.DER)
        return [base64.b64encode(der).decode("ascii")]

    def issuer_jwk(self) -> jwk.JWK:
        pem = self.issuer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return jwk.JWK.from_pem(pem)


def _disclosable(value: Any) -> Any:
    """Every member of an object selectively disclosable, recursively (array elements stay plain)."""
    if isinstance(value, dict):
        return {SDObj(k): _disclosable(v) for k, v in value.items()}
    return value


def pid_payload(
    person: TestPerson,
    *,
    now: int,
    expires_in: int,
    status_uri: str | None,
    status_idx: int | None,
    vct: str = VCT,
) -> dict[str, Any]:
    """The claims handed to the issuer: the plain credential claims plus the person's, all disclosable."""
    iat = now - 30 * 24 * 3600 if person.expired else now
    exp = now - 24 * 3600 if person.expired else now + expires_in
    claims: dict[Any, Any] = {"iss": ISSUER_ID, "iat": iat, "exp": exp, "vct": vct}
    if status_uri is not None and status_idx is not None:
        claims["status"] = {"status_list": {"idx": status_idx, "uri": status_uri}}
    personal = dict(person.claims)
    personal["date_of_expiry"] = datetime.datetime.fromtimestamp(exp, datetime.UTC).date().isoformat()
    claims.update(_disclosable(personal))
    return claims


def issue_pid(
    person: TestPerson,
    holder_key: jwk.JWK,
    *,
    keys: ProviderKeys,
    now: int,
    expires_in: int = PID_LIFETIME,
    status_uri: str | None = None,
    status_idx: int | None = None,
    vct: str = VCT,
) -> str:
    """One PID for ``person`` bound to ``holder_key`` (``cnf.jwk``): the SD-JWT with every disclosure,
    ``~``-terminated (the issuance a wallet stores)."""
    payload = pid_payload(person, now=now, expires_in=expires_in, status_uri=status_uri, status_idx=status_idx, vct=vct)
    issuer = SDJWTIssuer(
        payload,
        keys.issuer_jwk(),
        holder_key,
        sign_alg="ES256",
        extra_header_parameters={"typ": SD_JWT_VC_TYP, "x5c": keys.x5c()},
    )
    issuance: str = issuer.sd_jwt_issuance
    return issuance


class StatusList:
    """One Token Status List with 1 bit per entry (0 valid, 1 revoked)."""

    def __init__(self, uri: str, size: int = STATUS_LIST_SIZE, ttl: int = 10) -> None:
        self.uri = uri
        self.ttl = ttl
        self._bits = bytearray((size + 7) // 8)

    @property
    def size(self) -> int:
        return len(self._bits) * 8

    def set(self, idx: int, value: int) -> None:
        """Set entry ``idx`` to 0 (valid) or 1 (revoked); IndexError outside the list."""
        if not 0 <= idx < self.size:
            raise IndexError(f"status index {idx} outside 0..{self.size - 1}")
        if value not in (0, 1):
            raise ValueError("a 1-bit status list holds 0 or 1")
        byte, bit = divmod(idx, 8)  # least significant bit first (status list draft, section 4.1)
        if value:
            self._bits[byte] |= 1 << bit
        else:
            self._bits[byte] &= ~(1 << bit) & 0xFF

    def get(self, idx: int) -> int:
        byte, bit = divmod(idx, 8)
        return (self._bits[byte] >> bit) & 1

    def token(self, keys: ProviderKeys, *, now: int, lifetime: int = 600) -> str:
        """The list as a status list token (JWT ``statuslist+jwt``) signed by the issuer key."""
        header = {"alg": "ES256", "typ": "statuslist+jwt", "x5c": keys.x5c()}
        claims = {
            "sub": self.uri,
            "iat": now,
            "exp": now + lifetime,
            "ttl": self.ttl,
            "status_list": {"bits": 1, "lst": b64url(zlib.compress(bytes(self._bits), 9))},
        }
        key = ECKey.import_key(keys.issuer.private_key)  # type: ignore[arg-type]
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact(header, payload, key, algorithms=["ES256"])
