"""Test identities of the embedded eID-Server simulator (TEST FACILITY: fictitious people only).

ERIKA MUSTERMANN carries the example values of BSI TR-03130; ANDRÉ MUSTERMANN and Hans-Günther von
Drebenbusch-Dalgoßen follow AusweisApp's public test fixtures; the others cover cases a city service
must handle (a minor, an address abroad, artistic name and doctoral degree, a residence permit) and
the error cards. Each identity has a stable RestrictedID derived from its key, so pseudonyms derived
from it stay the same across runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import date
from typing import Final

from eid_gateway.eid import results
from eid_gateway.eid.messages import PersonalData, RestrictedID
from eid_gateway.identity import PartialDate, Place

DEFAULT_PIN: Final = "123456"


def stable_restricted_id(key: str) -> RestrictedID:
    """A fixed pair of 32-byte identifiers per test identity (sector-specific on a real card)."""
    one = hashlib.sha256(f"eid-gateway simulator restricted id 1 {key}".encode()).hexdigest().upper()
    two = hashlib.sha256(f"eid-gateway simulator restricted id 2 {key}".encode()).hexdigest().upper()
    return RestrictedID(one, two)


@dataclass(frozen=True)
class TestCard:
    """A simulated ID card: its data, its PIN, and how it misbehaves (if it does).

    ``forced_minor`` makes every card step with this card fail with that eCard-API ResultMinor (the
    error cards); otherwise the outcome follows from the input (cancel, PIN) and the card's data
    (an expiry date in the past fails document validity).
    """

    __test__ = False  # not a pytest test class

    key: str
    label: str
    data: PersonalData
    pin: str = DEFAULT_PIN
    forced_minor: str | None = None
    #: The label on a German page, where it differs (the error cards); names read the same in both.
    label_de: str | None = None

    def label_in(self, lang: str) -> str:
        return self.label_de if lang == "de" and self.label_de else self.label


def _card(key: str, label: str, data: PersonalData, **kw: str | None) -> TestCard:
    return TestCard(key, label, replace(data, restricted_id=stable_restricted_id(key)), **kw)  # type: ignore[arg-type]


def _years_ago(years: int, today: date) -> PartialDate:
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return PartialDate(born.year, born.month, born.day)


ERIKA: Final = PersonalData(
    document_type="ID",
    issuing_state="D",
    date_of_expiry="2029-10-31",
    given_names="ERIKA",
    family_names="MUSTERMANN",
    date_of_birth=PartialDate(1964, 8, 12),
    place_of_birth=Place(freetext="BERLIN"),
    nationality="D",
    birth_name="GABLER",
    place_of_residence=Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"),
    community_id="02760503150000",
)


def default_identities(today: date | None = None) -> dict[str, TestCard]:
    """The built-in test cards by key. The minor's birth date is relative to ``today``."""
    today = today or date.today()
    cards = [
        _card("erika", "ERIKA MUSTERMANN", ERIKA),
        _card(
            "andre",
            "ANDRÉ MUSTERMANN",
            PersonalData(
                document_type="TA",
                issuing_state="D",
                date_of_expiry="2031-06-30",
                given_names="ANDRÉ",
                family_names="MUSTERMANN",
                date_of_birth=PartialDate(1981, 6, 17),
                place_of_birth=Place(freetext="FRANKFURT (ODER)"),
                nationality="AZE",
                place_of_residence=Place(
                    street="EHM-WELK-STRAßE 33", city="LÜBBENAU/SPREEWALD", country="D", zip_code="03222"
                ),
                community_id="02761200660196",
            ),
        ),
        _card(
            "hans",
            "Hans-Günther von Drebenbusch-Dalgoßen (partial birth date)",
            PersonalData(
                document_type="ID",
                issuing_state="D",
                date_of_expiry="2030-01-14",
                given_names="HANS-GÜNTHER",
                family_names="VON DREBENBUSCH-DALGOßEN",
                date_of_birth=PartialDate(1946),
                place_of_birth=Place(freetext="BREMERHAVEN"),
                nationality="D",
                place_of_residence=Place(street="WEG NR. 12 8E", city="BREMEN", country="D", zip_code="22043"),
                community_id="02760400110000",
            ),
            label_de="Hans-Günther von Drebenbusch-Dalgoßen (unvollständiges Geburtsdatum)",
        ),
        _card(
            "minor",
            "LUKAS MUSTERMANN (16 years old)",
            PersonalData(
                document_type="ID",
                issuing_state="D",
                date_of_expiry="2032-03-31",
                given_names="LUKAS",
                family_names="MUSTERMANN",
                date_of_birth=_years_ago(16, today),
                place_of_birth=Place(freetext="KÖLN"),
                nationality="D",
                place_of_residence=Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"),
                community_id="02760503150000",
            ),
            label_de="LUKAS MUSTERMANN (16 Jahre alt)",
        ),
        _card(
            "abroad",
            "KARL HILLEBRANDT (lives abroad)",
            PersonalData(
                document_type="ID",
                issuing_state="D",
                date_of_expiry="2030-08-31",
                given_names="KARL",
                family_names="HILLEBRANDT",
                date_of_birth=PartialDate(1970, 2, 3),
                place_of_birth=Place(freetext="HAMBURG"),
                nationality="D",
                place_of_residence=Place(no_place_info="keine Hauptwohnung in Deutschland"),
            ),
            label_de="KARL HILLEBRANDT (wohnt im Ausland)",
        ),
        _card(
            "doctor",
            "DR. ANNA SCHMIDT (artistic name, doctoral degree)",
            PersonalData(
                document_type="ID",
                issuing_state="D",
                date_of_expiry="2033-05-31",
                given_names="ANNA MARIA",
                family_names="SCHMIDT",
                artistic_name="ANNA LIEDER",
                academic_title="DR.",
                date_of_birth=PartialDate(1979, 11, 30),
                place_of_birth=Place(freetext="MÜNCHEN"),
                nationality="D",
                birth_name="KRAUSE",
                place_of_residence=Place(
                    street="MARIENPLATZ 8", city="MÜNCHEN", state="BAYERN", country="D", zip_code="80331"
                ),
                community_id="02760901620000",
            ),
            label_de="DR. ANNA SCHMIDT (Künstlername, Doktorgrad)",
        ),
        _card(
            "permit",
            "AYŞE YILMAZ (residence permit)",
            PersonalData(
                document_type="AR",
                issuing_state="D",
                date_of_expiry="2028-12-31",
                given_names="AYŞE",
                family_names="YILMAZ",
                date_of_birth=PartialDate(1990, 4, 1),
                place_of_birth=Place(freetext="IZMIR"),
                nationality="TUR",
                place_of_residence=Place(street="KARL-MARX-STRAßE 1", city="BERLIN", country="D", zip_code="12043"),
                community_id="02761100000000",
                residence_permit_i="Erwerbstätigkeit gestattet.",
            ),
            label_de="AYŞE YILMAZ (Aufenthaltstitel)",
        ),
        _card(
            "cancelled",
            "Error card: citizen cancels",
            ERIKA,
            forced_minor=results.CANCELLATION_BY_USER,
            label_de="Fehlerkarte: Abbruch durch die Bürgerin",
        ),
        _card("wrong-pin", "Error card: wrong PIN", ERIKA, pin="000000", label_de="Fehlerkarte: falsche PIN"),
        _card(
            "blocked",
            "Error card: PIN blocked",
            ERIKA,
            forced_minor=results.NO_PERMISSION,
            label_de="Fehlerkarte: PIN gesperrt",
        ),
        _card(
            "expired",
            "Error card: expired document",
            replace(ERIKA, date_of_expiry="2021-10-31"),
            label_de="Fehlerkarte: abgelaufener Ausweis",
        ),
        # the remaining failure kinds a citizen's page can show (eid_gateway.eid.results.failure_kind)
        _card(
            "timeout",
            "Error card: time ran out",
            ERIKA,
            forced_minor=results.DP_TIMEOUT,
            label_de="Fehlerkarte: Zeit abgelaufen",
        ),
        _card(
            "connection",
            "Error card: connection broken",
            ERIKA,
            forced_minor=results.TRUSTED_CHANNEL_FAILED,
            label_de="Fehlerkarte: Verbindung abgebrochen",
        ),
        _card(
            "server-error",
            "Error card: eID-Server error",
            ERIKA,
            forced_minor=results.INTERNAL_ERROR,
            label_de="Fehlerkarte: Fehler des eID-Servers",
        ),
    ]
    return {card.key: card for card in cards}
