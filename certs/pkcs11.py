"""Signing keys held in a PKCS#11 token (an HSM; SoftHSM2 in tests), through python-pkcs11.

The private key never leaves the token. :func:`load_pkcs11_key_pair` returns an ordinary
:class:`~saml.keys.KeyPair` whose ``private_key`` is a ``cryptography`` key object that signs through
the token, so every signing path of the project (XML-DSig in :mod:`saml.dsig`, the Redirect binding,
CV certificates, TLS-free JOSE that signs via ``private_key.sign``) works unchanged; exporting it
(``private_bytes`` / ``private_numbers``) is refused. :class:`~saml.keys.ExternalKey` marks such keys
so that :mod:`saml.dsig` lets xmlsec compute the references and signs SignedInfo through the key.

A token is named by a PKCS#11 URI (RFC 7512), ``pkcs11:token=<label>;object=<key label>``; the PIN
comes from the caller (the config reads it from an environment variable, never from a file).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Self
from urllib.parse import unquote

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from saml.keys import ExternalKey, KeyPair

#: Where Debian installs the SoftHSM2 module.
SOFTHSM2_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")

_RSA_PKCS1 = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_RSA_PSS = {
    "sha256": (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha384": (Mechanism.SHA384_RSA_PKCS_PSS, Mechanism.SHA384, pkcs11.MGF.SHA384),
    "sha512": (Mechanism.SHA512_RSA_PKCS_PSS, Mechanism.SHA512, pkcs11.MGF.SHA512),
}
_CURVES: dict[str, ec.EllipticCurve] = {
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "brainpoolP256r1": ec.BrainpoolP256R1(),
    "brainpoolP384r1": ec.BrainpoolP384R1(),
}


class Pkcs11Error(Exception):
    """The token, the key or a signing operation is not usable; the message never holds the PIN."""


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of ``pkcs11:token=...;object=...`` this project uses."""

    token: str
    object: str

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not uri.startswith("pkcs11:"):
            raise Pkcs11Error("a PKCS#11 URI starts with pkcs11:")
        attrs: dict[str, str] = {}
        for part in uri[len("pkcs11:") :].split("?", 1)[0].split(";"):
            name, sep, value = part.partition("=")
            if not sep or not value:
                raise Pkcs11Error(f"PKCS#11 URI attribute {part[:40]!r} is not name=value")
            attrs[name] = unquote(value)
        if "token" not in attrs or "object" not in attrs:
            raise Pkcs11Error("the PKCS#11 URI must name token= and object=")
        return cls(attrs["token"], attrs["object"])


class Pkcs11Token:
    """One logged-in session on a token, shared by the keys on it (signing is serialised by a lock)."""

    def __init__(self, module: Path, token_label: str, pin: str):
        try:
            lib = pkcs11.lib(str(module))
            self._token = lib.get_token(token_label=token_label)
            self._session = self._token.open(user_pin=pin, rw=True)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise Pkcs11Error(f"cannot open token {token_label!r} with {module}: {type(exc).__name__}") from None
        self.label = token_label
        self.lock = threading.Lock()

    def private_key(self, label: str) -> Any:
        try:
            return self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            raise Pkcs11Error(f"token {self.label!r} holds no single private key {label!r}") from None

    def public_key(self, label: str) -> Any:
        try:
            return self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            raise Pkcs11Error(f"token {self.label!r} holds no single public key {label!r}") from None

    def generate(self, label: str, kind: str = "ec-p256") -> None:
        """Generate a key pair on the token (tests, and first set-up of a fresh HSM slot)."""
        with self.lock:
            if kind == "ec-p256":
                params = self._session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True
                )
                params.generate_keypair(store=True, label=label)
            elif kind in ("rsa-3072", "rsa-4096"):
                self._session.generate_keypair(KeyType.RSA, int(kind[4:]), store=True, label=label)
            else:
                raise ValueError(f"unsupported key kind {kind!r}")

    def close(self) -> None:
        self._session.close()


def _refuse_export() -> NoReturn:
    raise TypeError("the private key is held in a PKCS#11 token and cannot be exported")


def _pkcs11_call(token: Pkcs11Token, call: Any) -> bytes:
    with token.lock:
        try:
            result: bytes = call()
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11Error(f"signing in token {token.label!r} failed: {type(exc).__name__}") from None
    return result


class _TokenKey(ExternalKey):
    """What the EC and RSA token keys share: nothing to export, and a copy is the same token object."""

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _refuse_export()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class Pkcs11EcPrivateKey(_TokenKey, ec.EllipticCurvePrivateKey):
    """An EC private key in a token: ``sign`` hashes here and lets the token sign the digest (CKM_ECDSA)."""

    def __init__(self, token: Pkcs11Token, label: str):
        self._token = token
        self._key = token.private_key(label)
        der = encode_ec_public_key(token.public_key(label))
        public = serialization.load_der_public_key(der)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise Pkcs11Error(f"key {label!r} is not an EC key")
        self._public = public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(
        self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise Pkcs11Error("only ECDSA is supported")
        chosen = signature_algorithm.algorithm
        if isinstance(chosen, utils.Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(chosen)
            h.update(data)
            digest = h.finalize()
        raw = _pkcs11_call(self._token, lambda: self._key.sign(digest, mechanism=Mechanism.ECDSA))
        half = len(raw) // 2
        return utils.encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise Pkcs11Error("key agreement with token keys is not supported")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _refuse_export()


class Pkcs11RsaPrivateKey(_TokenKey, rsa.RSAPrivateKey):
    """An RSA private key in a token: PKCS#1 v1.5 and PSS (salt = hash length) with SHA-2."""

    def __init__(self, token: Pkcs11Token, label: str):
        self._token = token
        self._key = token.private_key(label)
        pub = token.public_key(label)
        self._public = rsa.RSAPublicNumbers(
            int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"), int.from_bytes(pub[Attribute.MODULUS], "big")
        ).public_key()

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding_: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        data = bytes(data)
        if not isinstance(algorithm, hashes.HashAlgorithm) or algorithm.name not in _RSA_PKCS1:
            raise Pkcs11Error("RSA signing in the token needs SHA-256/384/512 over the data")
        if isinstance(padding_, padding.PKCS1v15):
            mech = _RSA_PKCS1[algorithm.name]
            return _pkcs11_call(self._token, lambda: self._key.sign(data, mechanism=mech))
        if isinstance(padding_, padding.PSS):
            mech, hash_mech, mgf = _RSA_PSS[algorithm.name]
            salt = algorithm.digest_size
            return _pkcs11_call(
                self._token, lambda: self._key.sign(data, mechanism=mech, mechanism_param=(hash_mech, mgf, salt))
            )
        raise Pkcs11Error("unsupported RSA padding")

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        raise Pkcs11Error("decryption with token keys is not supported")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _refuse_export()


def token_private_key(token: Pkcs11Token, label: str) -> Pkcs11EcPrivateKey | Pkcs11RsaPrivateKey:
    """The key ``label`` of ``token`` as a ``cryptography`` private key that signs in the token."""
    key_type = token.private_key(label).key_type
    if key_type == KeyType.EC:
        return Pkcs11EcPrivateKey(token, label)
    if key_type == KeyType.RSA:
        return Pkcs11RsaPrivateKey(token, label)
    raise Pkcs11Error(f"key {label!r} is neither EC nor RSA")


_tokens: dict[tuple[str, str], Pkcs11Token] = {}
_tokens_lock = threading.Lock()


def open_token(module: Path, token_label: str, pin: str) -> Pkcs11Token:
    """One shared session per (module, token) in this process."""
    with _tokens_lock:
        token = _tokens.get((str(module), token_label))
        if token is None:
            token = Pkcs11Token(module, token_label, pin)
            _tokens[(str(module), token_label)] = token
        return token


def close_tokens() -> None:
    """Close every token session of this process and finalize the PKCS#11 modules behind them.

    For a process that forks after it loaded keys (``serve --workers N``: the arbiter validated the config):
    sessions and logins do not survive a fork, and a module initialized before it refuses a worker's own
    login (SoftHSM2: UserAlreadyLoggedIn). After this each worker opens its token afresh."""
    with _tokens_lock:
        modules = {module for module, _ in _tokens}
        for token in _tokens.values():
            with contextlib.suppress(pkcs11.PKCS11Error):
                token.close()
        _tokens.clear()
        for module in modules:
            with contextlib.suppress(pkcs11.PKCS11Error):
                pkcs11.lib(module).finalize()


def load_pkcs11_private_key(
    uri: str, *, module: Path = SOFTHSM2_MODULE, pin: str
) -> Pkcs11EcPrivateKey | Pkcs11RsaPrivateKey:
    """The token key named by ``uri`` as a ``cryptography`` private key (for users that need no
    certificate, e.g. the OIDC provider, which publishes a JWK built from the public key)."""
    parsed = Pkcs11Uri.parse(uri)
    return token_private_key(open_token(module, parsed.token, pin), parsed.object)


def load_pkcs11_key_pair(
    uri: str, certificate: x509.Certificate, *, module: Path = SOFTHSM2_MODULE, pin: str
) -> KeyPair:
    """A :class:`KeyPair` for the token key named by ``uri`` and its certificate (kept outside the
    token, like a PEM certificate); the certificate must belong to the key."""
    return KeyPair(load_pkcs11_private_key(uri, module=module, pin=pin), certificate)
