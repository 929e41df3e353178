"""How the SAML IdP frontend writes identity attributes as SAML ``AttributeValue`` strings.

Every value is a plain ``xs:string`` so that any SAML stack can read it without schema extensions.
The encoding of each kind of value is fixed (services parse it, so it must never drift):

* text (names, document type, issuing state, nationality, ...): the value exactly as read from the card;
* dates (``date_of_birth``): ISO 8601 with the precision the card holds — ``YYYY``, ``YYYY-MM`` or
  ``YYYY-MM-DD`` (a card may hold only the year of birth);
* places (``address``, ``place_of_birth``): one compact JSON object with sorted keys and only the parts
  present, keys from ``street``, ``zip_code``, ``city``, ``state``, ``country`` (ISO 3166 alpha-2/3 as on
  the card), ``freetext``, ``no_place_info``; e.g. ``{"city":"KÖLN","country":"D","street":"HEIDESTRASSE 17",
  "zip_code":"51147"}`` (UTF-8, non-ASCII kept as is);
* yes/no results (``age_verification``, ``place_verification``): ``true`` / ``false``;
* ``pseudonym``: the per-service pseudonym (also the Subject's NameID), never the card's RestrictedID.

Attributes the card does not hold are omitted (no empty AttributeValue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

from eid_gateway.identity import SAML_NAMES, Attribute, Identity, PartialDate, Place

NAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"


@dataclass(frozen=True)
class SamlAttribute:
    """One attribute as written into the AttributeStatement."""

    name: str
    friendly_name: str
    values: tuple[str, ...]


def encode_value(value: object) -> str:
    """One internal value as its documented string form (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, PartialDate):
        return value.iso()
    if isinstance(value, Place):
        parts = {f.name: getattr(value, f.name) for f in fields(value)}
        present = {k: v for k, v in parts.items() if v is not None}
        return json.dumps(present, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str):
        return value
    raise TypeError(f"no SAML encoding for values of type {type(value).__name__}")


def decode_place(text: str) -> Place:
    """The inverse of :func:`encode_value` for places (for services written in Python, and tests)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a place must be a JSON object")
    known = {f.name for f in fields(Place)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown place keys: {sorted(unknown)}")
    if not all(isinstance(v, str) for v in data.values()):
        raise ValueError("place parts must be strings")
    return Place(**data)


def released_attributes(identity: Identity, released: frozenset[Attribute], pseudonym: str) -> list[SamlAttribute]:
    """The attributes of ``identity`` restricted to ``released``, in the enum's (stable) order."""
    out: list[SamlAttribute] = []
    for attribute in Attribute:
        if attribute not in released:
            continue
        value: object | None = pseudonym if attribute is Attribute.PSEUDONYM else identity.value(attribute)
        if value is None:
            continue
        out.append(SamlAttribute(SAML_NAMES[attribute], attribute.value, (encode_value(value),)))
    return out
