"""The authorization request (OIDC Core §3.1.2.1, RFC 6749 §4.1.1, RFC 7636), checked without I/O.

Errors come in two kinds, and the difference is a security property: while the client or its
redirect_uri is not established, nothing is redirected (:class:`AuthorizationPageError`, shown to the
citizen); afterwards errors go back to the client (:class:`AuthorizationRedirectError`, with ``iss``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from eid_gateway.frontends.oidc.claims import (
    ClaimsParameterError,
    ClaimsRequest,
    parse_claims_parameter,
    scope_attributes,
)
from eid_gateway.frontends.oidc.settings import ClientSettings
from eid_gateway.identity import Attribute
from eid_gateway.services import Service

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url(SHA-256), no padding
MAX_STATE = 1024
MAX_NONCE = 512
_SINGLE = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "claims",
    "prompt",
    "max_age",
    "response_mode",
    "ui_locales",
    "request",
    "request_uri",
    "registration",
    "acr_values",
    "login_hint",
    "id_token_hint",
)


class AuthorizationPageError(Exception):
    """Unknown client or unusable redirect_uri: answer with a page, never a redirect."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # one of PAGE_REASONS' keys


class AuthorizationRedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error sent back to the (established) redirect_uri."""

    def __init__(self, error: str, description: str, redirect_uri: str, state: str | None, client_id: str):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state
        self.client_id = client_id  # whose registration decides on ``iss`` in the error


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked request; ``claims`` is already cut down to the service's registration."""

    client: ClientSettings
    service: Service
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str | None
    claims: ClaimsRequest
    max_age: int | None
    ui_locales: tuple[str, ...]

    def attributes(self) -> frozenset[Attribute]:
        """Everything to read from the card for this request (within the registration)."""
        return self.claims.all


ClientLookup = Callable[[str], "tuple[ClientSettings, Service] | None"]


def parse_authorization_request(params: Sequence[tuple[str, str]], lookup: ClientLookup) -> AuthorizationRequest:
    """Check one request given as (name, value) pairs from the query or the POST body."""
    values: dict[str, str] = {}
    duplicated: set[str] = set()
    for name, value in params:
        if name in values and name in _SINGLE:
            duplicated.add(name)
        values.setdefault(name, value)

    # 1. Establish the client and the redirect_uri; until then errors are pages.
    client_id = values.get("client_id")
    if not client_id or "client_id" in duplicated:
        raise AuthorizationPageError("missing_client")
    found = lookup(client_id)
    if found is None:
        raise AuthorizationPageError("unknown_client")
    client, service = found
    redirect_uri = values.get("redirect_uri")
    if not redirect_uri or "redirect_uri" in duplicated:
        raise AuthorizationPageError("missing_redirect_uri")
    if redirect_uri not in client.redirect_uris:  # exact string comparison, RFC 9700 §4.1.3
        raise AuthorizationPageError("unregistered_redirect_uri")

    state = values.get("state")
    if state is not None and len(state) > MAX_STATE:
        state = None  # too long to echo safely; the request fails below

    def fail(error: str, description: str) -> AuthorizationRedirectError:
        return AuthorizationRedirectError(error, description, redirect_uri, state, client.client_id)

    # 2. Everything else is answered at the redirect_uri.
    if duplicated:
        raise fail("invalid_request", f"parameter {sorted(duplicated)[0]} given more than once")
    if "state" in values and state is None:
        raise fail("invalid_request", f"state longer than {MAX_STATE} characters")
    if "request" in values:
        raise fail("request_not_supported", "request objects are not supported")
    if "request_uri" in values:
        raise fail("request_uri_not_supported", "request_uri is not supported")
    if "registration" in values:
        raise fail("registration_not_supported", "registration parameter is not supported")
    response_type = values.get("response_type")
    if not response_type:
        raise fail("invalid_request", "response_type is missing")
    if response_type != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if values.get("response_mode", "query") != "query":
        raise fail("invalid_request", "only response_mode=query is supported")
    scopes = tuple(values.get("scope", "").split())
    if "openid" not in scopes:
        raise fail("invalid_scope", "scope must contain openid")
    nonce = values.get("nonce")
    if nonce is not None and (not nonce or len(nonce) > MAX_NONCE):
        raise fail("invalid_request", f"nonce must be 1 to {MAX_NONCE} characters")

    prompt = values.get("prompt", "").split()
    if "none" in prompt:
        if len(prompt) > 1:
            raise fail("invalid_request", "prompt=none cannot be combined with other values")
        # Every sign-in reads the ID card: there is no session to answer silently from.
        raise fail("login_required", "every sign-in needs the ID card")
    max_age: int | None = None
    if "max_age" in values:
        try:
            max_age = int(values["max_age"])
        except ValueError:
            max_age = -1
        if max_age < 0:
            raise fail("invalid_request", "max_age must be a non-negative integer")

    challenge = values.get("code_challenge")
    method = values.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise fail("invalid_request", "code_challenge_method without code_challenge")
        if client.public_client:
            raise fail("invalid_request", "PKCE (code_challenge, S256) is required for this client")
    else:
        if method != "S256":
            raise fail("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.fullmatch(challenge):
            raise fail("invalid_request", "code_challenge must be 43 base64url characters")

    try:
        requested = parse_claims_parameter(values.get("claims"))
    except ClaimsParameterError as e:
        raise fail("invalid_request", str(e)) from None
    scoped = scope_attributes(scopes)
    claims = ClaimsRequest(
        id_token=requested.id_token,
        userinfo=requested.userinfo | scoped,
        essential=requested.essential,
    ).within(service.allowed_attributes)

    return AuthorizationRequest(
        client=client,
        service=service,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        claims=claims,
        max_age=max_age,
        ui_locales=tuple(values.get("ui_locales", "").split()),
    )


def add_query(uri: str, params: Sequence[tuple[str, str]]) -> str:
    """Append parameters to a registered redirect_uri, keeping its own query exactly as registered."""
    return uri + ("&" if "?" in uri else "?") + urlencode(params)
