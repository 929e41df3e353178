"""Sample TR-03130 data the message, schema and fuzzing tests share: one complete citizen record (the BSI's
example Erika Mustermann, every field set) and the PSK and session ID of a useID exchange."""

from __future__ import annotations

from typing import Final

from eid_gateway.eid.messages import PersonalData, Psk, RestrictedID
from eid_gateway.identity import PartialDate, Place

PSK: Final = Psk("0123456789abcdef0123", "00112233445566778899aabbccddeeff")
SESSION_ID: Final = "0a" * 32

#: Every PersonalData field set (artistic name present but empty, as cards report it).
ERIKA: Final = PersonalData(
    document_type="ID",
    issuing_state="D",
    date_of_expiry="2029-10-31",
    given_names="ERIKA",
    family_names="MUSTERMANN",
    artistic_name="",
    academic_title="DR.",
    date_of_birth=PartialDate(1964, 8, 12),
    place_of_birth=Place(freetext="BERLIN"),
    nationality="D",
    birth_name="GABLER",
    place_of_residence=Place(street="HEIDESTRASSE 17", city="KÖLN", state="NRW", country="D", zip_code="51147"),
    community_id="02760503150000",
    residence_permit_i="Erwerbstätigkeit gestattet.",
    restricted_id=RestrictedID("01A4FB509CEBC6595151A4FB5F9C75C6", "5C6FE01A4FB59CB655A4FB5F9C75C6FE"),
)
