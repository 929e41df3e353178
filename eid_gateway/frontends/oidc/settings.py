"""Parse the OpenID Connect provider settings from the raw TOML tables into frozen dataclasses.

Pure functions over the dicts ``tomllib`` returns: no file is opened here (paths are only resolved
against the config directory), so every check is testable and every error names the TOML key.
Loading the PEM / JWKS files is :mod:`eid_gateway.frontends.oidc.keys`' job.

TOML layout::

    [oidc]
    code_lifetime = 60              # seconds, 1..60
    access_token_lifetime = 300     # seconds
    id_token_lifetime = 300         # seconds
    [oidc.signing_key]              # EC P-256, signs every ES256 ID token
    kid = "oidc-2026-1"
    path = "keys/oidc-signing.pem"
    [oidc.next_signing_key]         # optional: published in the JWKS ahead of a key rollover
    kid = "oidc-2026-2"
    path = "keys/oidc-signing-next.pem"
    [oidc.rsa_signing_key]          # optional: only for clients registered for PS256 / RS256
    kid = "oidc-rsa-1"
    path = "keys/oidc-rsa.pem"      # or, for a key in an HSM, its PKCS#11 URI (RFC 7512):
                                    # path = "pkcs11:token=eid-gateway;object=oidc-rsa"; the PIN
                                    # and module are the gateway's HSM settings in [keys]
                                    # (pkcs11_pin_env, pkcs11_module), as for the SAML key

    [[services]]
    id = "..."
    ...
    [services.oidc]                      # the OIDC registration of the service above
    client_id = "..."
    redirect_uris = ["https://service.example/callback"]   # exact strings; http only for localhost
                                                           # and only outside production
    token_endpoint_auth_method = "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none"
    client_secret_hash = "scrypt$..."    # client_secret_basic / _post: `eid-gateway client-secret` makes it
    jwks = { keys = [ ... ] }            # private_key_jwt: inline JWKS ...
    jwks_path = "clients/x.jwks.json"    # ... or a file
    public_client = false                # true requires token_endpoint_auth_method = "none" + PKCE
    id_token_signed_response_alg = "ES256"   # or "PS256" / "RS256"
    error_response_iss = true            # false: no ``iss`` in error redirects (mod_auth_openidc < 2.4.13)
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eid_gateway.services import OidcServiceSettings, ServiceRegistry

#: The most a code may live (RFC 9700 asks for short-lived codes; the gateway caps at 60 s).
MAX_CODE_LIFETIME = 60
ID_TOKEN_ALGS = ("ES256", "PS256", "RS256")


class OidcSettingsError(ValueError):
    """A value in ``[oidc]`` or a ``[services.oidc]`` table is missing or wrong; each line names the key."""

    def __init__(self, *errors: str):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


class ClientAuthMethod(enum.Enum):
    """How a client authenticates at the token endpoint."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"


@dataclass(frozen=True)
class TokenKeyRef:
    """A key held in a PKCS#11 token (HSM): its URI, the environment variable with the PIN, and the
    module (``None``: the default of :mod:`certs.pkcs11`, SoftHSM2, as for the SAML key)."""

    uri: str
    pin_env: str
    module: Path | None = None


@dataclass(frozen=True)
class SigningKeyRef:
    """Where a provider signing key lives and the ``kid`` it is published under: a PEM file
    (``path``) or, when ``[oidc.*_key].path`` is a ``pkcs11:`` URI, a token key (``token``)."""

    kid: str
    path: Path | None
    token: TokenKeyRef | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """The ``[oidc]`` table."""

    signing_key: SigningKeyRef
    next_signing_key: SigningKeyRef | None = None
    rsa_signing_key: SigningKeyRef | None = None
    code_lifetime: int = MAX_CODE_LIFETIME
    access_token_lifetime: int = 300
    id_token_lifetime: int = 300
    client_assertion_max_lifetime: int = 3600  # authlib and others default to 1 h; jti kept as long


@dataclass(frozen=True)
class ClientSettings:
    """One ``[services.<id>.oidc]`` table."""

    service_id: str
    client_id: str
    redirect_uris: tuple[str, ...]
    auth_method: ClientAuthMethod
    client_secret_hash: str | None = None
    jwks: Mapping[str, Any] | None = None
    jwks_path: Path | None = None
    public_client: bool = False
    id_token_signed_response_alg: str = "ES256"
    #: RFC 9207 ``iss`` in authorization *error* responses too. Off only for relying parties that
    #: break on it: mod_auth_openidc before 2.4.13 takes a request with ``iss`` and no ``code`` for an
    #: issuer-discovery response and starts a new sign-in (a loop, then 503).
    error_response_iss: bool = True

    @property
    def uses_secret(self) -> bool:
        """Registered for one of the two client-secret methods (RFC 6749 §2.3.1)."""
        return self.auth_method in SECRET_METHODS


#: The methods that authenticate with a client secret, checked against ``client_secret_hash``.
SECRET_METHODS = frozenset({ClientAuthMethod.CLIENT_SECRET_BASIC, ClientAuthMethod.CLIENT_SECRET_POST})


@dataclass(frozen=True)
class OidcSettings:
    """Everything the OIDC frontend is configured with."""

    provider: ProviderSettings
    clients: Mapping[str, ClientSettings]  # by client_id

    def client(self, client_id: str) -> ClientSettings | None:
        return self.clients.get(client_id)

    def client_for_service(self, service_id: str) -> ClientSettings | None:
        """The OIDC registration of a service (e.g. to mount the demo relying party for it)."""
        return next((c for c in self.clients.values() if c.service_id == service_id), None)


def parse_oidc_settings(
    document: Mapping[str, Any], base_dir: Path, *, production: bool = False
) -> OidcSettings | None:
    """The whole parsed TOML document -> settings; ``None`` when there is no ``[oidc]`` table.

    Collects every problem before raising (one :class:`OidcSettingsError` listing them all), like
    :mod:`eid_gateway.config`, so an operator fixes the file in one pass.
    """
    raw = document.get("oidc")
    errors: list[str] = []
    provider: ProviderSettings | None = None
    if raw is not None:
        keys = document.get("keys")
        try:
            provider = parse_provider_settings(
                _table(raw, "oidc"), base_dir, hsm=keys if isinstance(keys, Mapping) else None
            )
        except OidcSettingsError as e:
            errors.extend(e.errors)
    clients: dict[str, ClientSettings] = {}
    services = document.get("services", [])
    if not isinstance(services, list):
        services = []
    for i, service in enumerate(services):
        if not isinstance(service, Mapping) or "oidc" not in service:
            continue
        where = f"services[{i}].oidc"
        if raw is None:
            errors.append(f"{where}: needs the provider section [oidc] (signing keys)")
            continue
        service_id = service.get("id")
        if not isinstance(service_id, str):
            continue  # the service table's own parser reports the missing id
        try:
            client = parse_client_settings(
                service_id, _table(service["oidc"], where), base_dir, where=where, production=production
            )
        except OidcSettingsError as e:
            errors.extend(e.errors)
            continue
        if client.client_id in clients:
            errors.append(
                f"{where}.client_id: {client.client_id!r} is already used by service "
                f"{clients[client.client_id].service_id!r}"
            )
        elif client.id_token_signed_response_alg != "ES256" and provider is not None and (
            provider.rsa_signing_key is None
        ):
            errors.append(
                f"{where}.id_token_signed_response_alg: {client.id_token_signed_response_alg} "
                "needs an [oidc.rsa_signing_key]"
            )
        else:
            clients[client.client_id] = client
    if errors:
        raise OidcSettingsError(*errors)
    if provider is None:
        return None
    return OidcSettings(provider=provider, clients=clients)


def parse_provider_settings(
    raw: Mapping[str, Any], base_dir: Path, *, hsm: Mapping[str, Any] | None = None
) -> ProviderSettings:
    """The ``[oidc]`` table; ``hsm`` is the ``[keys]`` table, whose ``pkcs11_pin_env`` and
    ``pkcs11_module`` serve every key in a token (one HSM configuration for SAML and OIDC)."""
    _refuse_unknown(raw, "oidc", {
        "signing_key", "next_signing_key", "rsa_signing_key", "code_lifetime",
        "access_token_lifetime", "id_token_lifetime", "client_assertion_max_lifetime",
    })
    if "signing_key" not in raw:
        raise OidcSettingsError("oidc.signing_key: missing (an EC P-256 key: kid and path)")
    signing = _key_ref(raw["signing_key"], "oidc.signing_key", base_dir, hsm)
    nxt = _key_ref(raw["next_signing_key"], "oidc.next_signing_key", base_dir, hsm) if (
        "next_signing_key" in raw) else None
    rsa = _key_ref(raw["rsa_signing_key"], "oidc.rsa_signing_key", base_dir, hsm) if (
        "rsa_signing_key" in raw) else None
    kids = [k.kid for k in (signing, nxt, rsa) if k is not None]
    if len(set(kids)) != len(kids):
        raise OidcSettingsError("oidc: the signing keys' kid values must differ")
    return ProviderSettings(
        signing_key=signing,
        next_signing_key=nxt,
        rsa_signing_key=rsa,
        code_lifetime=_seconds(raw, "code_lifetime", "oidc", MAX_CODE_LIFETIME, MAX_CODE_LIFETIME),
        access_token_lifetime=_seconds(raw, "access_token_lifetime", "oidc", 300, 3600),
        id_token_lifetime=_seconds(raw, "id_token_lifetime", "oidc", 300, 3600),
        client_assertion_max_lifetime=_seconds(raw, "client_assertion_max_lifetime", "oidc", 3600, 3600),
    )


def parse_client_settings(
    service_id: str,
    raw: Mapping[str, Any],
    base_dir: Path,
    *,
    where: str = "services.oidc",
    production: bool = False,
) -> ClientSettings:
    """One ``[services.oidc]`` table (``where`` is its dotted name in error messages)."""
    _refuse_unknown(raw, where, {
        "client_id", "redirect_uris", "token_endpoint_auth_method", "client_secret_hash", "jwks",
        "jwks_path", "public_client", "id_token_signed_response_alg", "error_response_iss",
    })
    client_id = _string(raw, "client_id", where)
    uris = raw.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise OidcSettingsError(f"{where}.redirect_uris: a non-empty list of URLs is required")
    for uri in uris:
        _check_redirect_uri(uri, f"{where}.redirect_uris", production)
    public = raw.get("public_client", False)
    if not isinstance(public, bool):
        raise OidcSettingsError(f"{where}.public_client: must be true or false")
    default_method = "none" if public else "client_secret_basic"
    method_name = raw.get("token_endpoint_auth_method", default_method)
    try:
        method = ClientAuthMethod(method_name)
    except ValueError:
        raise OidcSettingsError(
            f"{where}.token_endpoint_auth_method: {method_name!r} is not one of "
            + ", ".join(m.value for m in ClientAuthMethod)
        ) from None
    if public != (method is ClientAuthMethod.NONE):
        raise OidcSettingsError(
            f"{where}.token_endpoint_auth_method: a public client uses \"none\" and only a public client does"
        )
    secret_hash = raw.get("client_secret_hash")
    if method in SECRET_METHODS:
        if not isinstance(secret_hash, str) or not secret_hash.startswith("scrypt$"):
            raise OidcSettingsError(
                f"{where}.client_secret_hash: required for {method.value} "
                "(a scrypt$... hash made by `eid-gateway client-secret`, never the secret itself)"
            )
    elif secret_hash is not None:
        raise OidcSettingsError(
            f"{where}.client_secret_hash: only used with client_secret_basic or client_secret_post"
        )
    jwks = raw.get("jwks")
    jwks_path = raw.get("jwks_path")
    if method is ClientAuthMethod.PRIVATE_KEY_JWT:
        if (jwks is None) == (jwks_path is None):
            raise OidcSettingsError(f"{where}.jwks / jwks_path: private_key_jwt needs exactly one of them")
        if jwks is not None:
            if isinstance(jwks, str):
                try:
                    jwks = json.loads(jwks)
                except ValueError:
                    raise OidcSettingsError(f"{where}.jwks: not valid JSON") from None
            if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
                raise OidcSettingsError(f"{where}.jwks: must be a JWK Set with a non-empty \"keys\" list")
            for i, key in enumerate(jwks["keys"]):
                if not isinstance(key, Mapping) or key.get("kty") not in ("EC", "RSA"):
                    raise OidcSettingsError(f"{where}.jwks.keys[{i}]: only EC and RSA public keys are accepted")
                if any(private in key for private in ("d", "p", "q")):
                    raise OidcSettingsError(f"{where}.jwks.keys[{i}]: holds private key material")
        if jwks_path is not None and not isinstance(jwks_path, str):
            raise OidcSettingsError(f"{where}.jwks_path: must be a path string")
    elif jwks is not None or jwks_path is not None:
        raise OidcSettingsError(f"{where}.jwks: only used with private_key_jwt")
    alg = raw.get("id_token_signed_response_alg", "ES256")
    if alg not in ID_TOKEN_ALGS:
        raise OidcSettingsError(
            f"{where}.id_token_signed_response_alg: {alg!r} is not one of {', '.join(ID_TOKEN_ALGS)}"
        )
    error_iss = raw.get("error_response_iss", True)
    if not isinstance(error_iss, bool):
        raise OidcSettingsError(f"{where}.error_response_iss: must be true or false")
    return ClientSettings(
        service_id=service_id,
        client_id=client_id,
        redirect_uris=tuple(uris),
        auth_method=method,
        client_secret_hash=secret_hash,
        jwks=dict(jwks) if isinstance(jwks, Mapping) else None,
        jwks_path=(base_dir / jwks_path) if isinstance(jwks_path, str) else None,
        public_client=public,
        id_token_signed_response_alg=alg,
        error_response_iss=error_iss,
    )


def _check_redirect_uri(uri: object, where: str, production: bool) -> None:
    """Absolute https (http only for localhost outside production), no fragment (RFC 6749 §3.1.2)."""
    if not isinstance(uri, str) or not uri:
        raise OidcSettingsError(f"{where}: every entry must be a URL string")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise OidcSettingsError(f"{where}: {uri!r} must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return
    if not production and parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return
    raise OidcSettingsError(
        f"{where}: {uri!r} must be an absolute https URL"
        + ("" if production else " (http only for localhost, outside production)")
    )


def _key_ref(raw: object, where: str, base_dir: Path, hsm: Mapping[str, Any] | None) -> SigningKeyRef:
    table = _table(raw, where)
    _refuse_unknown(table, where, {"kid", "path"})
    kid = _string(table, "kid", where)
    path = _string(table, "path", where)
    if not path.startswith("pkcs11:"):
        return SigningKeyRef(kid=kid, path=base_dir / path)
    pin_env = (hsm or {}).get("pkcs11_pin_env")
    if not isinstance(pin_env, str) or not pin_env:
        raise OidcSettingsError(
            f"{where}.path: a pkcs11: key needs keys.pkcs11_pin_env (the environment variable with the PIN)"
        )
    module = (hsm or {}).get("pkcs11_module")
    if module is not None and (not isinstance(module, str) or not module):
        raise OidcSettingsError("keys.pkcs11_module: must be a path string")
    return SigningKeyRef(kid=kid, path=None, token=TokenKeyRef(
        uri=path, pin_env=pin_env, module=base_dir / Path(module).expanduser() if module else None,
    ))


def _seconds(raw: Mapping[str, Any], key: str, where: str, default: int, maximum: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise OidcSettingsError(f"{where}.{key}: must be a whole number of seconds from 1 to {maximum}")
    return value


def _string(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise OidcSettingsError(f"{where}.{key}: a non-empty string is required")
    return value


def _table(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise OidcSettingsError(f"{where}: must be a table")
    return raw


def _refuse_unknown(raw: Mapping[str, Any], where: str, known: set[str]) -> None:
    """Typos in security settings must not silently fall back to defaults."""
    unknown = sorted(set(raw) - known)
    if unknown:
        raise OidcSettingsError(f"{where}.{unknown[0]}: unknown setting")


def with_oidc_services(services: ServiceRegistry, settings: OidcSettings) -> ServiceRegistry:
    """The registry with each service's ``oidc`` field filled from ``settings``.

    ``config.py`` leaves ``Service.oidc`` empty; filling it makes ``ServiceRegistry.by_client_id`` work
    and lets the app's CSP ``form-action`` list the redirect URIs (a browser may follow a redirect to
    them after a form POST on a gateway page, e.g. "cancel").
    """
    by_service = {c.service_id: c for c in settings.clients.values()}
    updated = []
    for service in services.services:
        client = by_service.get(service.id)
        if client is not None:
            service = replace(service, oidc=OidcServiceSettings(
                client_id=client.client_id,
                redirect_uris=client.redirect_uris,
                client_secret_hash=client.client_secret_hash,
                jwks_uri=None,
                public_client=client.public_client,
            ))
        updated.append(service)
    return ServiceRegistry(tuple(updated))
