"""A verified PID -> the one internal :class:`~eid_gateway.identity.Identity` (claim names: :mod:`.pid`).

The pseudonym: the PID carries no identifier meant for services, so the gateway derives one from the
holder key the wallet proves possession of (``cnf.jwk``, its RFC 7638 thumbprint). :func:`restricted_id_for`
turns it into the hex "RestrictedID" the existing per-service derivation (``pseudonym.derive_pseudonym``
via ``flow.release_identity``) expects, domain-separated from card RestrictedIDs. It is stable while the
wallet presents the same credential key; a re-issued PID with a new key, or batch-issued one-time
credentials, give a new pseudonym; services cannot link it with each other (docs/wallet.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from eid_gateway.identity import Attribute, Identity, LevelOfAssurance, PartialDate, Place
from eid_gateway.wallet.jose import JoseFormatError, b64url_decode
from eid_gateway.wallet.pid import AGE_OVER_CLAIM
from eid_gateway.wallet.sdjwt import VerifiedPid

_HOLDER_KEY_DOMAIN = b"eid-gateway wallet holder key v1\x00"
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


class MappingError(ValueError):
    """A claim has a shape the PID rulebook does not allow."""


def restricted_id_for(holder_jwk_thumbprint: str) -> str:
    """64 hex characters: SHA-256 over a domain label and the holder key's thumbprint."""
    try:
        thumbprint = b64url_decode(holder_jwk_thumbprint)
    except JoseFormatError:
        raise MappingError("the holder key thumbprint is not base64url") from None
    return hashlib.sha256(_HOLDER_KEY_DOMAIN + thumbprint).hexdigest()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MappingError("a text claim is not a string")
    return value or None


def _date(value: Any) -> PartialDate | None:
    text = _text(value)
    if text is None:
        return None
    match = _DATE.fullmatch(text)
    if match is None:
        raise MappingError("birthdate is not an ISO 8601 full date")
    year, month, day = match.groups()
    return PartialDate(int(year), int(month) if month else None, int(day) if day else None)


def _object(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MappingError("a place claim is not an object")
    return value


def _place_of_birth(value: Any) -> Place | None:
    place = _object(value)
    if not place:
        return None
    return Place(
        city=_text(place.get("locality")), state=_text(place.get("region")), country=_text(place.get("country"))
    )


def _address(value: Any) -> Place | None:
    address = _object(value)
    if not address:
        return None
    street = _text(address.get("street_address"))
    number = _text(address.get("house_number"))
    if street and number:
        street = f"{street} {number}"
    return Place(
        street=street,
        city=_text(address.get("locality")),
        state=_text(address.get("region")),
        country=_text(address.get("country")),
        zip_code=_text(address.get("postal_code")),
        freetext=_text(address.get("formatted")),
    )


def _nationalities(value: Any) -> str | None:
    """The PID's list of ISO 3166-1 alpha-2 codes, comma-separated (the card has one ICAO code)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MappingError("nationalities is not a list of country codes")
    return ",".join(value) or None


def _age_over(value: Any, minimum_age: int | None) -> bool | None:
    if minimum_age is None or value is None:
        return None
    if not isinstance(value, dict):
        raise MappingError("age_equal_or_over is not an object")
    answer = value.get(str(minimum_age))
    if answer is not None and not isinstance(answer, bool):
        raise MappingError("an age_equal_or_over answer is not a boolean")
    return answer


def identity_from_pid(
    pid: VerifiedPid,
    *,
    level_of_assurance: LevelOfAssurance,
    authenticated_at: datetime,
    minimum_age: int | None = None,
) -> Identity:
    """The Identity of a verified PID; ``minimum_age`` picks the age-over answer (the request's age).

    Attributes the PID did not carry or the wallet did not disclose are ``None`` and listed in
    ``not_on_chip`` (the card's name for "not available from this credential").
    """
    claims = pid.claims
    expiry = claims.get("date_of_expiry", claims.get("expiry_date"))
    identity = Identity(
        restricted_id=restricted_id_for(pid.holder_jwk_thumbprint),
        document_type=None,
        issuing_state=_text(claims.get("issuing_country")),
        date_of_expiry=_text(expiry),
        given_names=_text(claims.get("given_name")),
        family_names=_text(claims.get("family_name")),
        date_of_birth=_date(claims.get("birthdate")),
        place_of_birth=_place_of_birth(claims.get("place_of_birth")),
        nationality=_nationalities(claims.get("nationalities")),
        birth_name=_text(claims.get("birth_family_name")),
        address=_address(claims.get("address")),
        age_verification=_age_over(claims.get(AGE_OVER_CLAIM), minimum_age),
        level_of_assurance=level_of_assurance,
        authenticated_at=authenticated_at,
    )
    missing = frozenset(a for a in Attribute if a is not Attribute.PSEUDONYM and identity.value(a) is None)
    return replace(identity, not_on_chip=missing)
