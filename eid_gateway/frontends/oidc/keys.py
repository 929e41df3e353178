"""The provider's signing keys (current, next, optional RSA) and the clients' registered JWKS.

Loading is the only I/O of the OIDC settings; it happens once at start-up and every failure names the
TOML key. The public JWKS publishes the current *and* the next key so that relying parties already
know the next key when the operator rolls over.

A signing key is a PEM file or a key held in a PKCS#11 token (:mod:`certs.pkcs11`). Either way the JWK
joserfc works with is built from the *public* key only, and its op-key for "sign" is the ``cryptography``
private key object: joserfc's ES/PS/RS algorithms call its ``sign()`` (a token key signs inside the
token and answers DER, which joserfc turns into r||s), and the private value is never read or published.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, KeySet, RSAKey

from eid_gateway.frontends.oidc.settings import (
    ClientAuthMethod,
    ClientSettings,
    ProviderSettings,
    SigningKeyRef,
    TokenKeyRef,
)
from eid_gateway.settings_base import ConfigError

MIN_RSA_BITS = 3072  # BSI TR-02102


@dataclass(frozen=True)
class ProviderKeys:
    """Private signing keys by use; ``jwks()`` is what ``/oidc/jwks`` serves."""

    current: ECKey
    next: ECKey | None = None
    rsa: RSAKey | None = None

    def for_alg(self, alg: str) -> ECKey | RSAKey:
        """The key that signs ID tokens with ``alg`` (the next key never signs)."""
        if alg == "ES256":
            return self.current
        if alg in ("PS256", "RS256") and self.rsa is not None:
            return self.rsa
        raise ConfigError([f"no provider key for {alg}"])

    def algorithms(self) -> list[str]:
        return ["ES256"] + (["PS256", "RS256"] if self.rsa is not None else [])

    def jwks(self) -> dict[str, Any]:
        keys: list[dict[str, Any]] = []
        for key, alg in ((self.current, "ES256"), (self.next, "ES256"), (self.rsa, None)):
            if key is None:
                continue
            public = dict(key.as_dict(private=False))
            public["use"] = "sig"
            if alg is not None:
                public["alg"] = alg
            keys.append(public)
        return {"keys": keys}


def load_provider_keys(settings: ProviderSettings) -> ProviderKeys:
    """Read the PEM files (or open the token keys) named in ``[oidc]``."""
    current = _load_ec(settings.signing_key, "oidc.signing_key")
    nxt = _load_ec(settings.next_signing_key, "oidc.next_signing_key") if settings.next_signing_key else None
    rsa_key = _load_rsa(settings.rsa_signing_key, "oidc.rsa_signing_key") if settings.rsa_signing_key else None
    return ProviderKeys(current=current, next=nxt, rsa=rsa_key)


def load_client_keys(client: ClientSettings) -> KeySet | None:
    """The public keys a ``private_key_jwt`` client signs its assertions with (EC / RSA only)."""
    if client.auth_method is not ClientAuthMethod.PRIVATE_KEY_JWT:
        return None
    where = f"services[id={client.service_id!r}].oidc"
    raw: Mapping[str, Any] | None = client.jwks
    if client.jwks_path is not None:
        try:
            raw = json.loads(client.jwks_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError([f"{where}.jwks_path: cannot read {client.jwks_path} ({e.strerror})"]) from None
        except ValueError:
            raise ConfigError([f"{where}.jwks_path: {client.jwks_path} is not JSON"]) from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("keys"), list) or not raw["keys"]:
        raise ConfigError([f'{where}.jwks: must be a JWK Set with a non-empty "keys" list'])
    keys: list[ECKey | RSAKey] = []
    for i, entry in enumerate(raw["keys"]):
        if not isinstance(entry, Mapping) or any(p in entry for p in ("d", "p", "q")):
            raise ConfigError([f"{where}.jwks.keys[{i}]: must be a public key"])
        try:
            if entry.get("kty") == "EC":
                keys.append(ECKey.import_key(dict(entry)))
            elif entry.get("kty") == "RSA":
                key = RSAKey.import_key(dict(entry))
                if key.raw_value.key_size < MIN_RSA_BITS:
                    raise ConfigError([f"{where}.jwks.keys[{i}]: RSA keys need >= {MIN_RSA_BITS} bits"])
                keys.append(key)
            else:
                raise ConfigError([f"{where}.jwks.keys[{i}]: only EC and RSA keys are accepted"])
        except ConfigError:
            raise
        except Exception:  # joserfc raises several types for a malformed JWK
            raise ConfigError([f"{where}.jwks.keys[{i}]: not a valid JWK"]) from None
    return KeySet(list(keys))


def _read_private(ref: SigningKeyRef, where: str) -> object:
    if ref.token is not None:
        return _token_private(ref.token, where)
    assert ref.path is not None  # a SigningKeyRef names a file or a token key
    try:
        data = ref.path.read_bytes()
    except OSError as e:
        raise ConfigError([f"{where}.path: cannot read {ref.path} ({e.strerror})"]) from None
    try:
        return load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError([f"{where}.path: {ref.path} is not an unencrypted PEM private key"]) from None


def _token_private(ref: TokenKeyRef, where: str) -> object:
    """The token key as a ``cryptography`` private key that signs inside the token."""
    try:
        from certs.pkcs11 import SOFTHSM2_MODULE, Pkcs11Error, load_pkcs11_private_key
    except ImportError:
        raise ConfigError([f"{where}.path: a pkcs11: key needs python-pkcs11 (the hsm extra)"]) from None
    pin = os.environ.get(ref.pin_env)
    if pin is None:
        raise ConfigError([f"keys.pkcs11_pin_env: environment variable {ref.pin_env} is not set"])
    try:
        return load_pkcs11_private_key(ref.uri, module=ref.module or SOFTHSM2_MODULE, pin=pin)
    except Pkcs11Error as e:
        raise ConfigError([f"{where}.path: {e}"]) from None


def _name(ref: SigningKeyRef) -> str:
    return ref.token.uri if ref.token is not None else str(ref.path)


def _load_ec(ref: SigningKeyRef, where: str) -> ECKey:
    key = _read_private(ref, where)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError([f"{where}.path: {_name(ref)} must hold an EC P-256 private key"])
    # the JWK from the public numbers; the private key object only signs (see the module docstring)
    return ECKey(key, ECKey.import_key(key.public_key()).as_dict(), {"kid": ref.kid})


def _load_rsa(ref: SigningKeyRef, where: str) -> RSAKey:
    key = _read_private(ref, where)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise ConfigError([f"{where}.path: {_name(ref)} must hold an RSA private key of >= {MIN_RSA_BITS} bits"])
    return RSAKey(key, RSAKey.import_key(key.public_key()).as_dict(), {"kid": ref.kid})
