"""Which claims a request asks for, what the client may receive, and the claim values of an Identity.

The names come from :data:`eid_gateway.identity.OIDC_CLAIMS`; scopes are shorthands for sets of
them. What is released is always *requested ∩ registered* (data minimisation); a ``claims`` request
parameter can narrow or add claims but never reach beyond the service's registration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eid_gateway.identity import OIDC_CLAIMS, OIDC_PLACE_MEMBERS, Attribute, Identity, PartialDate, Place

#: claim name -> Attribute (``sub`` is not an attribute claim: it is always the pairwise pseudonym).
CLAIM_ATTRIBUTES: dict[str, Attribute] = {c: a for a, c in OIDC_CLAIMS.items() if c != "sub"}

#: Scope -> attributes. ``openid`` alone releases only ``sub``.
SCOPE_ATTRIBUTES: dict[str, frozenset[Attribute]] = {
    "profile": frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.DATE_OF_BIRTH}),
    "address": frozenset({Attribute.ADDRESS}),
}
SUPPORTED_SCOPES = ("openid", *SCOPE_ATTRIBUTES)
MAX_CLAIMS_PARAMETER = 4096


class ClaimsParameterError(ValueError):
    """The ``claims`` request parameter is not the JSON object OIDC Core §5.5 defines."""


@dataclass(frozen=True)
class ClaimsRequest:
    """Attributes to put into the ID token and into the UserInfo response, plus the essential ones."""

    id_token: frozenset[Attribute] = frozenset()
    userinfo: frozenset[Attribute] = frozenset()
    essential: frozenset[Attribute] = frozenset()

    @property
    def all(self) -> frozenset[Attribute]:
        return self.id_token | self.userinfo

    def within(self, allowed: frozenset[Attribute]) -> ClaimsRequest:
        """Drop everything the service's registration does not allow."""
        return ClaimsRequest(self.id_token & allowed, self.userinfo & allowed, self.essential & allowed)


def parse_claims_parameter(raw: str | None) -> ClaimsRequest:
    """OIDC Core §5.5: ``{"userinfo": {claim: null | {...}}, "id_token": {...}}``; unknown claims ignored."""
    if raw is None:
        return ClaimsRequest()
    if len(raw) > MAX_CLAIMS_PARAMETER:
        raise ClaimsParameterError("claims parameter too long")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than json's recursion
        raise ClaimsParameterError("claims parameter is not JSON") from None
    if not isinstance(value, dict):
        raise ClaimsParameterError("claims parameter must be a JSON object")
    members: dict[str, frozenset[Attribute]] = {}
    essential: set[Attribute] = set()
    for member in ("id_token", "userinfo"):
        requested = value.get(member, {})
        if not isinstance(requested, dict):
            raise ClaimsParameterError(f"claims.{member} must be a JSON object")
        attrs: set[Attribute] = set()
        for claim, spec in requested.items():
            if spec is not None and not isinstance(spec, dict):
                raise ClaimsParameterError(f"claims.{member}.{claim} must be null or an object")
            if isinstance(spec, dict) and not isinstance(spec.get("essential", False), bool):
                raise ClaimsParameterError(f"claims.{member}.{claim}.essential must be a boolean")
            attribute = CLAIM_ATTRIBUTES.get(claim)
            if attribute is None:
                continue
            attrs.add(attribute)
            if isinstance(spec, dict) and spec.get("essential") is True:
                essential.add(attribute)
        members[member] = frozenset(attrs)
    return ClaimsRequest(members["id_token"], members["userinfo"], frozenset(essential))


def scope_attributes(scopes: Iterable[str]) -> frozenset[Attribute]:
    """The attributes the given scopes stand for (unknown scopes contribute nothing)."""
    out: set[Attribute] = set()
    for scope in scopes:
        out |= SCOPE_ATTRIBUTES.get(scope, frozenset())
    return frozenset(out)


def claim_values(identity: Identity, attributes: Iterable[Attribute]) -> dict[str, Any]:
    """JSON claim values for those ``attributes`` the identity holds (absent ones are left out)."""
    out: dict[str, Any] = {}
    for attribute in attributes:
        if attribute is Attribute.PSEUDONYM:
            continue  # ``sub`` is set from the per-service pseudonym, never from the RestrictedID
        value = _json_value(attribute, identity.value(attribute))
        if value is not None:
            out[OIDC_CLAIMS[attribute]] = value
    return out


def _json_value(attribute: Attribute, value: object) -> Any:
    if value is None:
        return None
    if isinstance(value, PartialDate):
        return value.iso()
    if isinstance(value, Place):
        return _place(attribute, value)
    if attribute is Attribute.NATIONALITY and isinstance(value, str):
        return [value]  # OIDC for Identity Assurance: ``nationalities`` is an array
    if isinstance(value, (str, bool, int)):
        return value
    return str(value)


def _place(attribute: Attribute, place: Place) -> dict[str, str] | None:
    """The claim object for a place, member names from :data:`OIDC_PLACE_MEMBERS` (one table for both
    frontends' vocabularies); ``city`` wins over ``freetext`` should a place ever hold both."""
    if place.no_place_info is not None:
        return None
    out: dict[str, str] = {}
    for part, member in OIDC_PLACE_MEMBERS[attribute].items():
        value = getattr(place, part)
        if value is not None:
            out.setdefault(member, value)
    return out or None


def supported_claims() -> list[str]:
    """For the discovery document."""
    return ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "azp", "at_hash", *sorted(CLAIM_ATTRIBUTES)]
