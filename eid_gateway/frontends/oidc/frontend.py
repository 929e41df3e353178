"""The OpenID Connect provider: thin aiohttp adapters over the checks in the sibling modules.

Endpoints: discovery, JWKS, authorization (code flow only), token, userinfo. The card step in between
belongs to the flow manager (:class:`FlowStarter`), which calls :meth:`OidcFrontend.finish` /
:meth:`OidcFrontend.fail` with the state this frontend handed it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.core.refs import ref_hash
from eid_gateway.frontends.base import FlowContext, FlowStart, FlowStarter
from eid_gateway.frontends.oidc.authorize import (
    AuthorizationPageError,
    AuthorizationRedirectError,
    AuthorizationRequest,
    add_query,
    parse_authorization_request,
)
from eid_gateway.frontends.oidc.claims import SUPPORTED_SCOPES, claim_values, supported_claims
from eid_gateway.frontends.oidc.client_secret import verify_client_secret
from eid_gateway.frontends.oidc.grants import CodeRecord, Grant, GrantStore
from eid_gateway.frontends.oidc.keys import ProviderKeys, load_client_keys, load_provider_keys
from eid_gateway.frontends.oidc.pages import ERROR_PATH, error_page, error_reason_page, pick_language
from eid_gateway.frontends.oidc.settings import (
    ClientAuthMethod,
    ClientSettings,
    OidcSettings,
)
from eid_gateway.frontends.oidc.tokens import (
    CLIENT_ASSERTION_ALGS,
    CLIENT_ASSERTION_TYPE,
    ClientAssertionError,
    access_token_hash,
    pkce_matches,
    sign_id_token,
    verify_client_assertion,
)
from eid_gateway.identity import Attribute, Identity, LevelOfAssurance
from eid_gateway.services import Service, ServiceRegistry
from eid_gateway.settings_base import ConfigError
from eid_gateway.store.base import Store
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.i18n import hint_language, negotiate_language

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/oidc/jwks"
AUTHORIZE_PATH = "/oidc/authorize"
TOKEN_PATH = "/oidc/token"
USERINFO_PATH = "/oidc/userinfo"
MAX_FORM_BYTES = 16 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

#: Why the card step failed -> RFC 6749 error code and a fixed, data-free description.
_FAILURES: dict[FailureKind, tuple[str, str]] = {
    FailureKind.CANCELLED: ("access_denied", "the citizen cancelled the sign-in"),
    FailureKind.WRONG_PIN: ("access_denied", "the ID card sign-in was not completed"),
    FailureKind.CARD_BLOCKED: ("access_denied", "the ID card cannot be used"),
    FailureKind.DOCUMENT_INVALID: ("access_denied", "the ID card is not valid"),
    FailureKind.TIMEOUT: ("access_denied", "the sign-in took too long"),
    FailureKind.COMMUNICATION: ("temporarily_unavailable", "the eID service could not be reached"),
    FailureKind.SERVER_ERROR: ("server_error", "the eID service failed"),
    FailureKind.OTHER_BROWSER: ("access_denied", "the sign-in was continued in another browser and ended"),
    FailureKind.WALLET_CANCELLED: ("access_denied", "the citizen declined in the wallet"),
    FailureKind.CREDENTIAL_REJECTED: ("access_denied", "the wallet's credential was not accepted"),
    FailureKind.CREDENTIAL_EXPIRED: ("access_denied", "the wallet's credential has expired"),
    FailureKind.CREDENTIAL_REVOKED: ("access_denied", "the wallet's credential has been revoked"),
    FailureKind.CREDENTIAL_STATUS_UNKNOWN: ("temporarily_unavailable", "the credential's status could not be checked"),
}


class GatewayView(Protocol):
    """The part of ``GatewayConfig`` this frontend reads."""

    @property
    def public_origin(self) -> str: ...

    @property
    def services(self) -> ServiceRegistry: ...


class TokenError(Exception):
    """An RFC 6749 §5.2 token endpoint error."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(eq=False, kw_only=True)
class OidcFrontend:
    """The gateway as an OpenID Connect provider for the city's services (built by
    :func:`create_oidc_frontend`)."""

    name = "oidc"

    issuer: str
    services: ServiceRegistry
    flows: FlowStarter
    grants: GrantStore
    settings: OidcSettings
    keys: ProviderKeys
    client_keys: Mapping[str, KeySet]
    clock: Callable[[], float] = time.time

    @property
    def token_endpoint(self) -> str:
        return self.issuer + TOKEN_PATH

    # --- the Frontend port ------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get(DISCOVERY_PATH, self.discovery),
            web.get(JWKS_PATH, self.jwks),
            web.get(AUTHORIZE_PATH, self.authorize),
            web.post(AUTHORIZE_PATH, self.authorize),
            web.post(TOKEN_PATH, self.token),
            web.get(USERINFO_PATH, self.userinfo),
            web.post(USERINFO_PATH, self.userinfo),
            web.get(ERROR_PATH + "/{reason}", error_reason_page, allow_head=False),
        ]

    async def finish(
        self, request: web.Request, flow: FlowContext, identity: Identity, pseudonym: str
    ) -> web.StreamResponse:
        """Issue a code bound to client, redirect_uri and PKCE challenge; send the browser back."""
        st = flow.frontend_state
        if not self._still_registered(st):
            return error_page(request, "unregistered_redirect_uri", flow.language)
        now = self.clock()
        id_token_attrs = _attributes(st.get("id_token_claims", ""))
        userinfo_attrs = _attributes(st.get("userinfo_claims", ""))
        # The flow already minimised the identity to the registration; cut again to the request.
        released = identity.minimised(id_token_attrs | userinfo_attrs)
        auth_time = identity.authenticated_at.timestamp() if identity.authenticated_at else now
        record = CodeRecord(
            client_id=st["client_id"],
            redirect_uri=st["redirect_uri"],
            code_challenge=st.get("code_challenge") or None,
            nonce=st.get("nonce") or None,
            sub=pseudonym,
            acr=identity.level_of_assurance.value,
            auth_time=int(auth_time),
            expires_at=now + self.settings.provider.code_lifetime,
            scope=st.get("scope", "openid"),
            id_token_claims=claim_values(released, id_token_attrs),
            userinfo_claims=claim_values(released, userinfo_attrs),
        )
        code = await self.grants.put_code(record, self.settings.provider.code_lifetime)
        log.info("oidc: code issued for client %s (flow %s)", record.client_id, ref_hash(flow.ref))
        params = [("code", code)]
        if "state" in st:
            params.append(("state", st["state"]))
        params.append(("iss", self.issuer))
        return see_other(add_query(record.redirect_uri, params))

    async def fail(self, request: web.Request, flow: FlowContext, failure: FailureKind) -> web.StreamResponse:
        """RFC 6749 §4.1.2.1 error at the redirect_uri (with ``iss``, RFC 9207, unless the client's
        registration turns it off)."""
        st = flow.frontend_state
        if not self._still_registered(st):
            return error_page(request, "unregistered_redirect_uri", flow.language)
        error, description = _FAILURES[failure]
        log.info("oidc: flow %s failed (%s) for client %s", ref_hash(flow.ref), failure.value, st["client_id"])
        return self._error_redirect(st["client_id"], st["redirect_uri"], error, description, st.get("state"))

    def _error_redirect(
        self, client_id: str, redirect_uri: str, error: str, description: str, state: str | None
    ) -> web.Response:
        """The one way an authorization error goes back to a client: ``iss`` (RFC 9207) unless its
        registration says ``error_response_iss = false`` (see :class:`ClientSettings`)."""
        params = [("error", error), ("error_description", description)]
        if state is not None:
            params.append(("state", state))
        client = self.settings.client(client_id)
        if client is None or client.error_response_iss:
            params.append(("iss", self.issuer))
        return see_other(add_query(redirect_uri, params))

    def _still_registered(self, state: Mapping[str, str]) -> bool:
        """The registration may have changed (config reload) while the citizen was at the card step."""
        client = self.settings.client(state.get("client_id", ""))
        return client is not None and state.get("redirect_uri") in client.redirect_uris

    # --- discovery and keys -------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3 / RFC 8414."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + AUTHORIZE_PATH,
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.issuer + USERINFO_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": self.keys.algorithms(),
            "token_endpoint_auth_methods_supported": [m.value for m in ClientAuthMethod],
            "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGS),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "claims_supported": supported_claims(),
            "claims_parameter_supported": True,
            "claim_types_supported": ["normal"],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            # no request_uri at all, so nothing to pre-register (Discovery §3: a true here beside
            # request_uri_parameter_supported = false contradicts itself)
            "require_request_uri_registration": False,
            "authorization_response_iss_parameter_supported": True,
            "acr_values_supported": [loa.value for loa in LevelOfAssurance],
            "ui_locales_supported": ["de", "en"],
        }

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(self.metadata(), headers={"Cache-Control": "max-age=3600"})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.keys.jwks(), headers={"Cache-Control": "max-age=3600"})

    # --- authorization endpoint --------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                pairs = list((await read_form(request, max_bytes=MAX_FORM_BYTES)).items())
            except FormError as exc:
                log.info("oidc: authorization request refused with a page (%s)", exc.reason)
                return error_page(request, "bad_request", negotiate_language(request))
        else:
            pairs = list(request.query.items())
        # the service's ui_locales: for every page of this sign-in (after the citizen's own ?lang=)
        locales = tuple(next((v for k, v in pairs if k == "ui_locales"), "").split())
        hint_language(request, pick_language(locales, ""))
        try:
            req = parse_authorization_request(pairs, self._lookup)
        except AuthorizationPageError as e:
            log.info("oidc: authorization request refused with a page (%s)", e.reason)
            return error_page(request, e.reason, negotiate_language(request))
        except AuthorizationRedirectError as e:
            log.info("oidc: authorization request refused (%s)", e.error)
            return self._error_redirect(e.client_id, e.redirect_uri, e.error, e.description, e.state)
        return await self.flows.begin(
            request, FlowStart(req.service, self.name, self._frontend_state(req), self._eid_request(req))
        )

    def _lookup(self, client_id: str) -> tuple[ClientSettings, Service] | None:
        client = self.settings.client(client_id)
        if client is None:
            return None
        service = self.services.by_id(client.service_id)
        return (client, service) if service is not None else None

    @staticmethod
    def _frontend_state(req: AuthorizationRequest) -> dict[str, str]:
        state = {
            "client_id": req.client.client_id,
            "redirect_uri": req.redirect_uri,
            "scope": " ".join(req.scopes),
            "id_token_claims": " ".join(sorted(a.value for a in req.claims.id_token)),
            "userinfo_claims": " ".join(sorted(a.value for a in req.claims.userinfo)),
        }
        for name, value in (("state", req.state), ("nonce", req.nonce), ("code_challenge", req.code_challenge)):
            if value is not None:
                state[name] = value
        if req.ui_locales:
            state["ui_locales"] = " ".join(req.ui_locales)
        return state

    @staticmethod
    def _eid_request(req: AuthorizationRequest) -> EidRequest:
        """Read only what was asked for and is registered; the pseudonym is always needed for ``sub``."""
        wanted = req.attributes()
        required = (wanted & (req.claims.essential | req.service.required_attributes)) | {Attribute.PSEUDONYM}
        return EidRequest(
            required=frozenset(required),
            optional=frozenset(wanted - required),
            minimum_age=req.service.minimum_age if Attribute.AGE_VERIFICATION in wanted else None,
            community_id=req.service.community_id if Attribute.PLACE_VERIFICATION in wanted else None,
            level_of_assurance=req.service.level_of_assurance,
        )

    # --- token endpoint -----------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        try:
            return await self._token(request)
        except TokenError as e:
            headers = dict(_NO_STORE)
            if e.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="eid-gateway"'
            log.info("oidc: token request refused (%s)", e.error)
            return web.json_response(
                {"error": e.error, "error_description": e.description}, status=e.status, headers=headers
            )

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_length is None or request.content_length > MAX_FORM_BYTES:
            raise TokenError("invalid_request", "body missing or too large")
        try:
            form = await read_form(request, max_bytes=MAX_FORM_BYTES)
        except FormError as exc:  # RFC 6749 §5.2: a malformed request is invalid_request (400)
            raise TokenError("invalid_request", exc.reason) from None
        values: dict[str, str] = {}
        for name, value in form.items():
            if name in values:
                raise TokenError("invalid_request", f"parameter {name} given more than once")
            values[name] = value
        client = await self._authenticate_client(request, values)
        if values.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", "only authorization_code is supported")
        code = values.get("code")
        if not code:
            raise TokenError("invalid_request", "code is missing")
        if len(code) > 128:
            raise TokenError("invalid_grant", "unknown code")
        provider = self.settings.provider
        used_ttl = max(provider.code_lifetime, provider.access_token_lifetime)
        record = await self.grants.redeem_code(code, used_ttl)
        now = self.clock()
        if record is None:
            raise TokenError("invalid_grant", "code unknown, expired or already used")
        if record.client_id != client.client_id:
            raise TokenError("invalid_grant", "code was issued to another client")
        if record.expires_at <= now:
            raise TokenError("invalid_grant", "code expired")
        if values.get("redirect_uri") != record.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = values.get("code_verifier")
        if record.code_challenge is not None:
            if verifier is None or not pkce_matches(verifier, record.code_challenge):
                raise TokenError("invalid_grant", "code_verifier missing or wrong")
        elif verifier is not None:
            raise TokenError("invalid_grant", "code_verifier given but no code_challenge was")

        expires_at = now + provider.access_token_lifetime
        grant = Grant(client.client_id, record.sub, record.scope, record.userinfo_claims, expires_at)
        access_token = await self.grants.issue_access_token(code, grant, provider.access_token_lifetime)
        if access_token is None:
            raise TokenError("invalid_grant", "code already used")
        id_claims: dict[str, Any] = dict(record.id_token_claims)
        id_claims.update(
            iss=self.issuer,
            sub=record.sub,
            aud=client.client_id,
            azp=client.client_id,
            iat=int(now),
            exp=int(now) + provider.id_token_lifetime,
            auth_time=record.auth_time,
            acr=record.acr,
            at_hash=access_token_hash(access_token),
        )
        if record.nonce is not None:
            id_claims["nonce"] = record.nonce
        id_token = sign_id_token(self.keys, client.id_token_signed_response_alg, id_claims)
        log.info("oidc: tokens issued to client %s", client.client_id)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": provider.access_token_lifetime,
                "id_token": id_token,
                "scope": record.scope,
            },
            headers=_NO_STORE,
        )

    async def _authenticate_client(self, request: web.Request, values: Mapping[str, str]) -> ClientSettings:
        """Exactly one method, and the one the client is registered for (RFC 6749 §2.3: a client
        registered for Basic that posts its secret is refused, and the other way round)."""
        header = request.headers.get("Authorization")
        assertion = values.get("client_assertion")
        posted = values.get("client_secret")
        if sum(x is not None for x in (header, assertion, posted)) > 1:
            raise TokenError("invalid_request", "more than one client authentication method")
        if header is not None:
            client_id, secret = _basic_credentials(header)
            if values.get("client_id", client_id) != client_id:
                raise TokenError("invalid_request", "client_id differs from the authenticated client")
            return self._check_secret(client_id, secret, ClientAuthMethod.CLIENT_SECRET_BASIC)
        if posted is not None:  # RFC 6749 §2.3.1: client_id and client_secret in the body
            return self._check_secret(values.get("client_id", ""), posted, ClientAuthMethod.CLIENT_SECRET_POST)
        if assertion is not None:
            return await self._authenticate_assertion(values, assertion)
        public_id = values.get("client_id")
        public = self.settings.client(public_id) if public_id else None
        if public is None or public.auth_method is not ClientAuthMethod.NONE:
            raise TokenError("invalid_client", "client authentication failed", 401)
        return public

    def _check_secret(self, client_id: str, secret: str, method: ClientAuthMethod) -> ClientSettings:
        """The client exists, is registered for ``method`` and the secret matches its hash."""
        client = self.settings.client(client_id) if client_id else None
        if (
            client is None
            or client.auth_method is not method
            or client.client_secret_hash is None
            or not verify_client_secret(secret, client.client_secret_hash)
        ):
            raise TokenError("invalid_client", "client authentication failed", 401)
        return client

    async def _authenticate_assertion(self, values: Mapping[str, str], assertion: str) -> ClientSettings:
        if values.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise TokenError("invalid_request", "client_assertion_type must be jwt-bearer")
        client_id = values.get("client_id") or _unverified_issuer(assertion)
        client = self.settings.client(client_id) if client_id else None
        keys = self.client_keys.get(client_id) if client_id else None
        if client is None or keys is None or client.auth_method is not ClientAuthMethod.PRIVATE_KEY_JWT:
            raise TokenError("invalid_client", "client authentication failed", 401)
        now = int(self.clock())
        try:
            checked = verify_client_assertion(
                assertion,
                keys,
                client.client_id,
                (self.token_endpoint, self.issuer),
                now,
                self.settings.provider.client_assertion_max_lifetime,
            )
        except ClientAssertionError as e:
            log.info("oidc: client %s: %s", client.client_id, e)
            raise TokenError("invalid_client", "client authentication failed", 401) from None
        if not await self.grants.first_use_of_assertion(client.client_id, checked.jti, checked.expires_at - now + 60):
            raise TokenError("invalid_client", "client assertion replayed", 401)
        return client

    # --- userinfo -----------------------------------------------------------------------------------

    async def userinfo(self, request: web.Request) -> web.Response:
        token = None
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        elif request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            try:
                token = (await read_form(request, max_bytes=MAX_FORM_BYTES)).get("access_token")
            except FormError as exc:  # RFC 6750 §3.1: invalid_request is a 400
                return web.json_response(
                    {"error": "invalid_request", "error_description": exc.reason}, status=400, headers=_NO_STORE
                )
        if token is None:
            return web.json_response(
                {"error": "invalid_request", "error_description": "bearer access token required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="eid-gateway"', **_NO_STORE},
            )
        grant = await self.grants.take_grant(token, self.clock())
        if grant is None:
            return web.json_response(
                {"error": "invalid_token", "error_description": "access token unknown, expired, revoked or used"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="eid-gateway", error="invalid_token"', **_NO_STORE},
            )
        body = dict(grant.userinfo_claims)
        body["sub"] = grant.sub
        return web.json_response(body, headers=_NO_STORE)


def see_other(location: str) -> web.Response:
    """303 to the service; never cached (the URL carries a code or an error for one request)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _attributes(names: str) -> frozenset[Attribute]:
    return frozenset(Attribute(n) for n in names.split())


def _basic_credentials(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: Basic with form-urlencoded client_id and secret."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise TokenError("invalid_client", "unsupported Authorization scheme", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("invalid_client", "malformed Basic credentials", 401) from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise TokenError("invalid_client", "malformed Basic credentials", 401)
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


def _unverified_issuer(assertion: str) -> str | None:
    """Only to find which client's keys to verify with; the signature check follows."""
    try:
        claims = extract_compact(assertion.encode("ascii")).payload
        value = json.loads(claims)
    except Exception:  # any malformed assertion simply names no client
        return None
    iss = value.get("iss") if isinstance(value, dict) else None
    return iss if isinstance(iss, str) else None


def create_oidc_frontend(
    config: GatewayView,
    flows: FlowStarter,
    store: Store,
    settings: OidcSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> OidcFrontend:
    """Load keys (the only file access) and check every OIDC client has a registered service."""
    missing = [c.service_id for c in settings.clients.values() if config.services.by_id(c.service_id) is None]
    if missing:
        raise ConfigError([f"services: OIDC client of unknown service {m!r}" for m in missing])
    keys = load_provider_keys(settings.provider)
    client_keys: dict[str, KeySet] = {}
    for client in settings.clients.values():
        loaded = load_client_keys(client)
        if loaded is not None:
            client_keys[client.client_id] = loaded
    return OidcFrontend(
        issuer=config.public_origin,
        services=config.services,
        flows=flows,
        grants=GrantStore(store),
        settings=settings,
        keys=keys,
        client_keys=client_keys,
        clock=clock,
    )
