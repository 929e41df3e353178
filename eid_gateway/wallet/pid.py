"""The PID (person identification data) in SD-JWT VC: which claims carry which gateway attribute.

One table, :data:`PID_CLAIMS`, used three ways: the DCQL query asks for exactly these paths
(:mod:`eid_gateway.wallet.dcql`), the test wallet issues exactly these claims, and
:mod:`eid_gateway.wallet.mapping` reads them back into the one :class:`~eid_gateway.identity.Identity`.
Names follow the EUDI PID rulebook's SD-JWT VC encoding (ARF annex 3.1; ``date_of_expiry`` is the
rulebook's current name, ``expiry_date`` the older one, read as a fallback).

Attributes the PID does not carry (the card's artistic name, doctoral degree, community ID, residence
permit, place verification, document type) have no entry: the wallet is not asked for them and the
identity reports them as not available (``Identity.not_on_chip``). The pseudonym needs no claim: it is
derived from the holder key (``cnf``) every presentation proves (see :mod:`eid_gateway.wallet.mapping`).
"""

from __future__ import annotations

from eid_gateway.identity import Attribute

#: The credential format identifier of SD-JWT VC in OpenID4VP 1.0.
FORMAT = "dc+sd-jwt"

#: The PID types accepted when the configuration names none.
DEFAULT_VCT_VALUES: tuple[str, ...] = ("urn:eudi:pid:1", "urn:eudi:pid:de:1")

#: The claim the age-over answers live under: ``age_equal_or_over: {"18": true, ...}``.
AGE_OVER_CLAIM = "age_equal_or_over"

#: Attribute -> the claim paths (DCQL ``path`` arrays) that carry it. An attribute with several paths
#: asks for all of them. AGE_VERIFICATION is here with its claim only; the path member (the age, e.g.
#: ``"18"``) comes from the service's minimum age (:func:`age_path`).
PID_CLAIMS: dict[Attribute, tuple[tuple[str, ...], ...]] = {
    Attribute.GIVEN_NAMES: (("given_name",),),
    Attribute.FAMILY_NAMES: (("family_name",),),
    Attribute.DATE_OF_BIRTH: (("birthdate",),),
    Attribute.PLACE_OF_BIRTH: (("place_of_birth",),),
    Attribute.NATIONALITY: (("nationalities",),),
    Attribute.BIRTH_NAME: (("birth_family_name",),),
    Attribute.ADDRESS: (("address",),),
    Attribute.ISSUING_STATE: (("issuing_country",),),
    Attribute.DATE_OF_EXPIRY: (("date_of_expiry",),),
    Attribute.AGE_VERIFICATION: ((AGE_OVER_CLAIM,),),
}

#: Members of the ``place_of_birth`` claim object (rulebook: at least one of them).
PLACE_OF_BIRTH_MEMBERS: tuple[str, ...] = ("locality", "region", "country")

#: Members of the ``address`` claim object.
ADDRESS_MEMBERS: tuple[str, ...] = (
    "formatted",
    "street_address",
    "house_number",
    "locality",
    "region",
    "postal_code",
    "country",
)

#: Attributes a PID cannot answer (never asked of the wallet; reported as not available).
NOT_IN_PID: frozenset[Attribute] = frozenset(
    a for a in Attribute if a not in PID_CLAIMS and a is not Attribute.PSEUDONYM
)


def age_path(minimum_age: int) -> tuple[str, ...]:
    """The claim path of the age-over answer for ``minimum_age`` (``age_equal_or_over/18``)."""
    if not 0 < minimum_age < 150:
        raise ValueError(f"minimum age out of range: {minimum_age}")
    return (AGE_OVER_CLAIM, str(minimum_age))
