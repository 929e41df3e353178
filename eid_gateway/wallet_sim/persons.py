"""The test wallet's people: PID claims for the eID simulator's test identities (fictitious people only).

One source of test people: the claims are derived from :func:`eid_gateway.simulator.identities.default_identities`
(Erika and André Mustermann), so a card sign-in and a wallet sign-in of the same person can be compared.
Two more hold a PID that must be refused: one expired, one revoked on the provider's status list; a
minor's (valid) PID answers "18 or over" with false.
Claim names follow the EUDI PID rulebook's SD-JWT VC encoding (written out here rather than taken from
the gateway's ``eid_gateway.wallet.pid`` table, so that the verifier is tested against an independent
reading; tests/wallet_sim checks that the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from eid_gateway.eid.messages import PersonalData
from eid_gateway.identity import PartialDate, Place
from eid_gateway.simulator.identities import default_identities

#: ICAO 9303 nationality / state codes of the test identities -> ISO 3166-1 alpha-2 (the PID's encoding).
_COUNTRIES: Final[dict[str, str]] = {"D": "DE", "AZE": "AZ", "TUR": "TR"}

#: The ages the PID answers ``age_equal_or_over`` for (EUDI PID rulebook).
AGES: Final[tuple[int, ...]] = (12, 14, 16, 18, 21, 65)


@dataclass(frozen=True)
class TestPerson:
    """One wallet holder: the key that names them (``person=``), a display name, and their PID claims.

    ``expired``: the PID's validity ended a day ago; ``revoked``: its status-list entry is set.
    ``status_idx`` is the entry on the provider's status list (fixed per person, so a restarted wallet-sim
    and an in-process :class:`~eid_gateway.wallet_sim.wallet.TestWallet` agree).
    """

    __test__ = False  # not a pytest test class

    key: str
    name: str
    claims: dict[str, Any]
    status_idx: int
    expired: bool = False
    revoked: bool = False
    note_de: str = ""
    note_en: str = ""


def _country(code: str | None) -> str | None:
    return None if code is None else _COUNTRIES.get(code, code)


def _iso(d: PartialDate | None) -> str | None:
    if d is None or d.month is None or d.day is None:
        return None
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _street(street: str) -> tuple[str, str | None]:
    """``"HEIDESTRASSE 17"`` -> (``"HEIDESTRASSE"``, ``"17"``): the house number when the last word starts
    with a digit."""
    head, _, last = street.rpartition(" ")
    return (head, last) if head and last[:1].isdigit() else (street, None)


def _address(place: Place) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if place.street:
        street, number = _street(place.street)
        out["street_address"] = street
        if number:
            out["house_number"] = number
    for key, value in (
        ("locality", place.city),
        ("region", place.state),
        ("postal_code", place.zip_code),
        ("country", _country(place.country)),
    ):
        if value:
            out[key] = value
    return out


def _age_over(birth: PartialDate | None, today: date) -> dict[str, bool]:
    if birth is None or birth.month is None or birth.day is None:
        return {}
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return {str(age): years >= age for age in AGES}


def pid_claims(data: PersonalData, today: date) -> dict[str, Any]:
    """The PID claims (rulebook names) of one simulator identity; absent data makes no claim."""
    claims: dict[str, Any] = {}
    if data.given_names:
        claims["given_name"] = data.given_names
    if data.family_names:
        claims["family_name"] = data.family_names
    birthdate = _iso(data.date_of_birth)
    if birthdate:
        claims["birthdate"] = birthdate
    if data.place_of_birth and data.place_of_birth.freetext:
        claims["place_of_birth"] = {"locality": data.place_of_birth.freetext}
    if data.nationality:
        claims["nationalities"] = [_country(data.nationality)]
    if data.birth_name:
        claims["birth_family_name"] = data.birth_name
    if data.place_of_residence:
        address = _address(data.place_of_residence)
        if address:
            claims["address"] = address
    age_over = _age_over(data.date_of_birth, today)
    if age_over:
        claims["age_equal_or_over"] = age_over
    if data.issuing_state:
        claims["issuing_country"] = _country(data.issuing_state)
        claims["issuing_authority"] = _country(data.issuing_state)
    return claims


def _display(data: PersonalData) -> str:
    return f"{(data.given_names or '').title()} {(data.family_names or '').title()}".strip()


def default_persons(today: date | None = None) -> dict[str, TestPerson]:
    """The wallet's holders by key: ``erika``, ``andre`` (valid PIDs), ``expired``, ``revoked`` (Erika's data),
    ``minor`` (Lukas Mustermann, 16 today: ``age_equal_or_over`` 18 is false)."""
    today = today or date.today()
    cards = default_identities(today)
    erika, andre, minor = cards["erika"].data, cards["andre"].data, cards["minor"].data

    def holder(
        key: str,
        data: PersonalData,
        status_idx: int,
        *,
        expired: bool = False,
        revoked: bool = False,
        note: tuple[str, str] = ("", ""),
    ) -> TestPerson:
        """A holder of ``data``'s PID; ``note`` (German, English) stands next to the name on the wallet's page."""
        return TestPerson(key, _display(data), pid_claims(data, today), status_idx, expired, revoked, *note)

    people = [
        holder("erika", erika, 0),
        holder("andre", andre, 1),
        holder("expired", erika, 2, expired=True, note=("abgelaufene PID", "expired PID")),
        holder("revoked", erika, 3, revoked=True, note=("widerrufene PID", "revoked PID")),
        holder("minor", minor, 4, note=("16 Jahre alt", "16 years old")),
    ]
    return {p.key: p for p in people}
