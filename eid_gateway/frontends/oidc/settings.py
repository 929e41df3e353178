"""Parse the OpenID Connect provider settings from the raw TOML tables into frozen dataclasses.

Pydantic models over the dicts ``tomllib`` returns, read the one way every table is read
(:mod:`eid_gateway.settings_base`): no key file is loaded here (paths are only resolved against the
config directory; production only looks whether a file is development material), so every check is
testable and every error names the TOML key.
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
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, ValidationInfo, model_validator

from certs.devpki import is_dev_file
from eid_gateway.services import OidcServiceSettings, ServiceRegistry
from eid_gateway.settings_base import (
    Loc,
    Problems,
    Range,
    ReadContext,
    Reader,
    Section,
    Text,
    context_of,
    dev_material_message,
    problem,
    refuse_unless,
    resolve_path,
    validate,
)

#: The most a code may live (RFC 9700 asks for short-lived codes; the gateway caps at 60 s).
MAX_CODE_LIFETIME = 60
ID_TOKEN_ALGS = ("ES256", "PS256", "RS256")


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


# --- the tables as written -------------------------------------------------------------------------------


def _key_path(value: str, info: ValidationInfo) -> str:
    """A PEM file (production refuses development keys) or a ``pkcs11:`` URI of a key in an HSM."""
    ctx = context_of(info)
    if not value.startswith("pkcs11:") and ctx.production:
        path = resolve_path(value, ctx.base_dir)
        if is_dev_file(path, ctx.password):
            raise problem(dev_material_message(path))
    return value


def _redirect_uri(uri: str, info: ValidationInfo) -> str:
    """Absolute https (http only for localhost outside production), no fragment (RFC 6749 §3.1.2)."""
    production = context_of(info).production
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise problem(f"{uri!r} must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if not production and parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return uri
    raise problem(
        f"{uri!r} must be an absolute https URL"
        + ("" if production else " (http only for localhost, outside production)")
    )


class KeyRefTable(Section):
    """``[oidc.signing_key]`` and its siblings: where a provider key lives, published under ``kid``."""

    kid: Text
    path: Annotated[Text, AfterValidator(_key_path)]


class ProviderTable(Section):
    """The ``[oidc]`` table as written."""

    signing_key: KeyRefTable
    next_signing_key: KeyRefTable | None = None
    rsa_signing_key: KeyRefTable | None = None
    code_lifetime: Annotated[int, Range(1, MAX_CODE_LIFETIME)] = MAX_CODE_LIFETIME
    access_token_lifetime: Annotated[int, Range(1, 3600)] = 300
    id_token_lifetime: Annotated[int, Range(1, 3600)] = 300
    client_assertion_max_lifetime: Annotated[int, Range(1, 3600)] = 3600  # authlib and others default to 1 h

    @model_validator(mode="after")
    def _distinct_kids(self) -> Self:
        kids = [k.kid for k in (self.signing_key, self.next_signing_key, self.rsa_signing_key) if k is not None]
        if len(set(kids)) != len(kids):
            problems = Problems()
            problems.add((), "the signing keys' kid values must differ")
            problems.check()
        return self


class ClientTable(Section):
    """One ``[services.oidc]`` table as written."""

    client_id: Text
    redirect_uris: Annotated[
        list[Annotated[str, AfterValidator(_redirect_uri)]], refuse_unless(bool, "a non-empty list of URLs is required")
    ]
    token_endpoint_auth_method: str | None = None
    client_secret_hash: str | None = None
    jwks: dict[str, Any] | str | None = None
    jwks_path: Text | None = None
    public_client: bool = False
    id_token_signed_response_alg: Annotated[
        str, refuse_unless(lambda v: v in ID_TOKEN_ALGS, lambda v: f"{v!r} is not one of {', '.join(ID_TOKEN_ALGS)}")
    ] = "ES256"
    error_response_iss: bool = True

    @property
    def auth_method(self) -> ClientAuthMethod:
        """Checked by the validator below: always one of the methods."""
        return ClientAuthMethod(
            self.token_endpoint_auth_method or ("none" if self.public_client else "client_secret_basic")
        )

    @model_validator(mode="after")
    def _method_and_credentials(self) -> Self:
        problems = Problems()
        name = self.token_endpoint_auth_method or ("none" if self.public_client else "client_secret_basic")
        try:
            method = ClientAuthMethod(name)
        except ValueError:
            problems.add(
                "token_endpoint_auth_method", f"{name!r} is not one of " + ", ".join(m.value for m in ClientAuthMethod)
            )
            problems.check()
            return self
        if self.public_client != (method is ClientAuthMethod.NONE):
            problems.add("token_endpoint_auth_method", 'a public client uses "none" and only a public client does')
        if method in SECRET_METHODS:
            if self.client_secret_hash is None or not self.client_secret_hash.startswith("scrypt$"):
                problems.add(
                    "client_secret_hash",
                    f"required for {method.value} "
                    "(a scrypt$... hash made by `eid-gateway client-secret`, never the secret itself)",
                )
        elif self.client_secret_hash is not None:
            problems.add("client_secret_hash", "only used with client_secret_basic or client_secret_post")
        if method is ClientAuthMethod.PRIVATE_KEY_JWT:
            if (self.jwks is None) == (self.jwks_path is None):
                problems.add("jwks", "private_key_jwt needs exactly one of jwks and jwks_path")
            elif self.jwks is not None:
                _check_jwks(self.jwks, problems)
        elif self.jwks is not None or self.jwks_path is not None:
            problems.add("jwks", "only used with private_key_jwt")
        problems.check()
        return self


def _check_jwks(jwks: Mapping[str, Any] | str, problems: Problems) -> None:
    if isinstance(jwks, str):
        try:
            jwks = json.loads(jwks)
        except ValueError:
            problems.add("jwks", "not valid JSON")
            return
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        problems.add("jwks", 'must be a JWK Set with a non-empty "keys" list')
        return
    for i, key in enumerate(jwks["keys"]):
        if not isinstance(key, Mapping) or key.get("kty") not in ("EC", "RSA"):
            problems.add(("jwks", "keys", i), "only EC and RSA public keys are accepted")
        elif any(private in key for private in ("d", "p", "q")):
            problems.add(("jwks", "keys", i), "holds private key material")


# --- parsers ----------------------------------------------------------------------------------------------


def parse_oidc_settings(
    document: Mapping[str, Any], base_dir: Path, *, production: bool = False, password: bytes | None = None
) -> OidcSettings | None:
    """The whole parsed TOML document -> settings; ``None`` when there is no ``[oidc]`` table.

    Collects every problem of ``[oidc]`` and each ``[services.oidc]`` before raising one
    :class:`~eid_gateway.settings_base.ConfigError` listing them all.
    """
    raw = document.get("oidc")
    context = ReadContext(base_dir=base_dir, production=production, password=password, document=document)
    reader = Reader(context)
    provider: ProviderSettings | None = None
    if raw is not None:
        keys = document.get("keys")
        provider = reader.run(
            lambda: parse_provider_settings(
                raw, base_dir, hsm=keys if isinstance(keys, Mapping) else None, context=context
            )
        )
    clients: dict[str, ClientSettings] = {}
    services = document.get("services", [])
    if not isinstance(services, list):
        services = []
    for i, service in enumerate(services):
        if not isinstance(service, Mapping) or "oidc" not in service:
            continue
        where: Loc = ("services", i, "oidc")
        if raw is None:
            reader.problem(where, "needs the provider section [oidc] (signing keys)")
            continue
        service_id = service.get("id")
        if not isinstance(service_id, str):
            continue  # the service table's own parser reports the missing id
        client = reader.run(
            lambda: parse_client_settings(service_id, service["oidc"], base_dir, where=where, production=production)  # noqa: B023 - called at once
        )
        if client is None:
            continue
        if client.client_id in clients:
            reader.problem(
                (*where, "client_id"),
                f"{client.client_id!r} is already used by service {clients[client.client_id].service_id!r}",
            )
        elif (
            client.id_token_signed_response_alg != "ES256"
            and provider is not None
            and (provider.rsa_signing_key is None)
        ):
            reader.problem(
                (*where, "id_token_signed_response_alg"),
                f"{client.id_token_signed_response_alg} needs an [oidc.rsa_signing_key]",
            )
        else:
            clients[client.client_id] = client
    reader.check()
    if provider is None:
        return None
    return OidcSettings(provider=provider, clients=clients)


def parse_provider_settings(
    raw: object, base_dir: Path, *, hsm: Mapping[str, Any] | None = None, context: ReadContext | None = None
) -> ProviderSettings:
    """The ``[oidc]`` table; ``hsm`` is the ``[keys]`` table, whose ``pkcs11_pin_env`` and
    ``pkcs11_module`` serve every key in a token (one HSM configuration for SAML and OIDC)."""
    ctx = context or ReadContext(base_dir=base_dir)
    table = validate(ProviderTable, raw, ctx, ("oidc",))
    reader = Reader(ctx)

    def ref(name: str, key: KeyRefTable | None) -> SigningKeyRef | None:
        return None if key is None else reader.run(lambda: _key_ref(key, ("oidc", name), base_dir, hsm))

    signing = ref("signing_key", table.signing_key)
    nxt = ref("next_signing_key", table.next_signing_key)
    rsa = ref("rsa_signing_key", table.rsa_signing_key)
    reader.check()
    assert signing is not None
    return ProviderSettings(
        signing_key=signing,
        next_signing_key=nxt,
        rsa_signing_key=rsa,
        code_lifetime=table.code_lifetime,
        access_token_lifetime=table.access_token_lifetime,
        id_token_lifetime=table.id_token_lifetime,
        client_assertion_max_lifetime=table.client_assertion_max_lifetime,
    )


def parse_client_settings(
    service_id: str,
    raw: object,
    base_dir: Path,
    *,
    where: str | Loc = "services.oidc",
    production: bool = False,
) -> ClientSettings:
    """One ``[services.oidc]`` table (``where`` is its key path in error messages)."""
    at: Loc = (where,) if isinstance(where, str) else where
    table = validate(ClientTable, raw, ReadContext(base_dir=base_dir, production=production), at)
    jwks = table.jwks
    if isinstance(jwks, str):
        jwks = json.loads(jwks)  # checked by the model
    return ClientSettings(
        service_id=service_id,
        client_id=table.client_id,
        redirect_uris=tuple(table.redirect_uris),
        auth_method=table.auth_method,
        client_secret_hash=table.client_secret_hash,
        jwks=dict(jwks) if isinstance(jwks, Mapping) else None,
        jwks_path=resolve_path(table.jwks_path, base_dir) if table.jwks_path is not None else None,
        public_client=table.public_client,
        id_token_signed_response_alg=table.id_token_signed_response_alg,
        error_response_iss=table.error_response_iss,
    )


def _key_ref(table: KeyRefTable, where: Loc, base_dir: Path, hsm: Mapping[str, Any] | None) -> SigningKeyRef:
    """A PEM file, or a key in a PKCS#11 token with the HSM settings of ``[keys]``."""
    reader = Reader(ReadContext(base_dir=base_dir))
    if not table.path.startswith("pkcs11:"):
        return SigningKeyRef(kid=table.kid, path=resolve_path(table.path, base_dir))
    pin_env = (hsm or {}).get("pkcs11_pin_env")
    if not isinstance(pin_env, str) or not pin_env:
        reader.problem(
            (*where, "path"), "a pkcs11: key needs keys.pkcs11_pin_env (the environment variable with the PIN)"
        )
    module = (hsm or {}).get("pkcs11_module")
    if module is not None and (not isinstance(module, str) or not module):
        reader.problem(("keys", "pkcs11_module"), "must be a path string")
    reader.check()
    assert isinstance(pin_env, str)
    return SigningKeyRef(
        kid=table.kid,
        path=None,
        token=TokenKeyRef(
            uri=table.path,
            pin_env=pin_env,
            module=resolve_path(module, base_dir) if isinstance(module, str) else None,
        ),
    )


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
            service = replace(
                service,
                oidc=OidcServiceSettings(
                    client_id=client.client_id,
                    redirect_uris=client.redirect_uris,
                    client_secret_hash=client.client_secret_hash,
                    jwks_uri=None,
                    public_client=client.public_client,
                ),
            )
        updated.append(service)
    return ServiceRegistry(tuple(updated))
