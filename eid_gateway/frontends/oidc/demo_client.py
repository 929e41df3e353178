"""A minimal OpenID Connect relying party for the demo (DEVELOPMENT ONLY): "sign in with the ID card".

It does what a city service must do and nothing more: state bound to the browser by a cookie,
``nonce``, PKCE S256, the ``iss`` of the authorization response checked (RFC 9207), the code
exchanged over the back channel, the ID token verified against the provider's JWKS with the
algorithms the discovery document names (never ``none``, never HMAC), then the userinfo call.
Pending sign-ins (state -> nonce, PKCE verifier) are kept in the gateway's store, under a hash of the
state, for the store's TTL: every process of the gateway sees them, and each is taken once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from eid_gateway.store.base import Store

log = logging.getLogger("eid_gateway.demo")

COOKIE = "demo-oidc-state"
PENDING_TTL = 600.0
PENDING_NAMESPACE: Final = "demo-oidc-pending"
_ASYMMETRIC = {"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}


class DemoClientError(Exception):
    """A step of the sign-in failed. ``reason`` picks the citizen's text: "denied" (cancelled at the
    gateway), "expired" (unknown state, or another browser's), "unavailable" (the gateway did not answer
    as it should), "rejected" (an answer failed verification); the message is for the log (no personal data)."""

    def __init__(self, message: str, reason: str = "rejected") -> None:
        super().__init__(message)
        self.reason = reason


class DemoPages(Protocol):
    """What the demo's pages look like (eid_gateway.demo.pages): this module only runs the protocol."""

    def start(self, request: web.Request, login_url: str) -> web.Response: ...

    def signed_in(self, request: web.Request, claims: dict[str, Any], userinfo: dict[str, Any]) -> web.Response: ...

    def failed(self, request: web.Request, reason: str) -> web.Response: ...


@dataclass(frozen=True)
class DemoClientSettings:
    """``client_secret`` None = public client (PKCE only), else client_secret_basic."""

    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = None
    scope: str = "openid profile address"
    backchannel_origin: str | None = None  # where the server reaches the gateway, if not ``issuer``


def _pending_key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


@dataclass
class DemoRelyingParty:
    """The relying party's settings, where its pending sign-ins live, and its three steps."""

    settings: DemoClientSettings
    store: Store

    def _backchannel(self, url: str) -> str:
        origin = self.settings.backchannel_origin
        if origin and url.startswith(self.settings.issuer):
            return origin + url[len(self.settings.issuer) :]
        return url

    async def metadata(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        url = self._backchannel(self.settings.issuer + "/.well-known/openid-configuration")
        async with http.get(url) as resp:
            if resp.status != 200:
                raise DemoClientError(f"discovery answered HTTP {resp.status}", "unavailable")
            meta: dict[str, Any] = await resp.json()
        if meta.get("issuer") != self.settings.issuer:
            raise DemoClientError("discovery document names another issuer", "unavailable")
        return meta

    async def start(self, authorization_endpoint: str) -> tuple[str, str]:
        """(authorization URL, state); the state also goes into the browser's cookie."""
        state = secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        await self.store.put_value(
            PENDING_NAMESPACE, _pending_key(state), json.dumps({"nonce": nonce, "verifier": verifier}), PENDING_TTL
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_uri,
                "scope": self.settings.scope,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{authorization_endpoint}?{query}", state

    async def complete(
        self, http: aiohttp.ClientSession, params: dict[str, str], cookie_state: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(ID token claims, userinfo) for the authorization response ``params``."""
        state = params.get("state", "")
        if not cookie_state or not hmac.compare_digest(state.encode(), cookie_state.encode()):
            raise DemoClientError("state does not belong to this browser", "expired")
        raw = await self.store.take_value(PENDING_NAMESPACE, _pending_key(state))
        if raw is None:
            raise DemoClientError("unknown or expired sign-in", "expired")
        pending: dict[str, str] = json.loads(raw)
        if params.get("iss") != self.settings.issuer:
            raise DemoClientError("authorization response from an unexpected issuer")
        if "error" in params:
            raise DemoClientError(
                f"the gateway answered {params['error']}",
                "denied" if params["error"] == "access_denied" else "rejected",
            )
        meta = await self.metadata(http)
        form = {
            "grant_type": "authorization_code",
            "code": params.get("code", ""),
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": pending["verifier"],
        }
        headers = {}
        if self.settings.client_secret is None:
            form["client_id"] = self.settings.client_id
        else:  # RFC 6749 §2.3.1: both parts form-urlencoded, then Basic
            headers["Authorization"] = aiohttp.encode_basic_auth(
                quote(self.settings.client_id, safe=""), quote(self.settings.client_secret, safe="")
            )
        async with http.post(self._backchannel(meta["token_endpoint"]), data=form, headers=headers) as resp:
            tokens = await resp.json()
            if resp.status != 200:
                raise DemoClientError(f"token endpoint answered {tokens.get('error', resp.status)}")
        async with http.get(self._backchannel(meta["jwks_uri"])) as resp:
            keys = KeySet.import_key_set(await resp.json())
        algorithms = [a for a in meta.get("id_token_signing_alg_values_supported", []) if a in _ASYMMETRIC]
        try:
            token = jwt.decode(tokens["id_token"], keys, algorithms=algorithms)
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": pending["nonce"]},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError) as e:
            raise DemoClientError(f"ID token rejected: {type(e).__name__}") from None
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with http.get(self._backchannel(meta["userinfo_endpoint"]), headers=bearer) as resp:
            if resp.status != 200:
                raise DemoClientError(f"userinfo answered HTTP {resp.status}", "unavailable")
            userinfo: dict[str, Any] = await resp.json()
        if userinfo.get("sub") != token.claims["sub"]:
            raise DemoClientError("userinfo is about another subject")
        return dict(token.claims), userinfo


def create_oidc_demo_routes(
    settings: DemoClientSettings,
    store: Store,
    pages: DemoPages,
    *,
    prefix: str = "/demo/oidc",
    secure_cookie: bool = False,
) -> list[web.RouteDef]:
    """``GET {prefix}/`` (button), ``{prefix}/login``, ``{prefix}/callback`` (= the redirect_uri)."""
    rp = DemoRelyingParty(settings, store)

    async def index(request: web.Request) -> web.Response:
        return pages.start(request, f"{prefix}/login")

    async def login(request: web.Request) -> web.StreamResponse:
        async with aiohttp.ClientSession() as http:
            meta = await rp.metadata(http)
        url, state = await rp.start(meta["authorization_endpoint"])
        response = web.Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})
        response.set_cookie(
            COOKIE, state, path=prefix, httponly=True, samesite="Lax", secure=secure_cookie, max_age=int(PENDING_TTL)
        )
        return response

    async def callback(request: web.Request) -> web.Response:
        params = {k: v for k, v in request.query.items()}
        try:
            async with aiohttp.ClientSession() as http:
                claims, userinfo = await rp.complete(http, params, request.cookies.get(COOKIE))
        except DemoClientError as e:
            log.info("demo OIDC sign-in failed reason=%s: %s", e.reason, e)
            return pages.failed(request, e.reason)
        response = pages.signed_in(request, claims, userinfo)
        response.del_cookie(COOKIE, path=prefix)
        return response

    return [
        web.get(prefix + "/", index),
        web.get(prefix + "/login", login),
        web.get(prefix + "/callback", callback),
    ]
