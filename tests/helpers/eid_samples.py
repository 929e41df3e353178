"""Sample TR-03130 data the message, schema, fuzzing and frontend tests share: one complete citizen record
(the BSI's example Erika Mustermann, every field set), the PSK and session ID of a useID exchange, a useID
request and the successful getResult that answers it, a complete TC Token (TR-03124), and the Identity the
gateway makes of a record."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from eid_gateway.eid import messages, results
from eid_gateway.eid.mapping import identity_from_result
from eid_gateway.eid.tctoken import TcToken
from eid_gateway.identity import Identity, Place
from eid_gateway.simulator import identities

PSK: Final = messages.Psk("0123456789abcdef0123", "00112233445566778899aabbccddeeff")
SESSION_ID: Final = "0a" * 32

#: Every PersonalData field set (artistic name present but empty, as cards report it): the simulator's
#: Erika with the fields her card lacks filled in.
ERIKA: Final = replace(
    identities.ERIKA,
    artistic_name="",
    academic_title="DR.",
    place_of_residence=Place(street="HEIDESTRASSE 17", city="KÖLN", state="NRW", country="D", zip_code="51147"),
    residence_permit_i="Erwerbstätigkeit gestattet.",
    restricted_id=messages.RestrictedID("01A4FB509CEBC6595151A4FB5F9C75C6", "5C6FE01A4FB59CB655A4FB5F9C75C6FE"),
)

#: A service's useID request: names, both verifications, a transaction text, a level, the PSK.
USE_ID_REQUEST: Final = messages.UseIDRequest(
    operations={
        "GivenNames": messages.Selection.REQUIRED,
        "ArtisticName": messages.Selection.ALLOWED,
        "AgeVerification": messages.Selection.REQUIRED,
    },
    age=18,
    community_id="027605",
    transaction_info="Wohnsitzanmeldung",
    level_of_assurance="http://eidas.europa.eu/LoA/high",
    psk=PSK,
)

#: A successful getResult with :data:`ERIKA`: every operation allowed but the birth name (not on chip).
ERIKA_RESULT: Final = messages.GetResultResponse(
    messages.Result(results.MAJOR_OK),
    personal_data=ERIKA,
    fulfils_age_verification=True,
    fulfils_place_verification=False,
    operations_allowed_by_user={n: messages.Permission.ALLOWED for n in messages.OPERATION_NAMES}
    | {"BirthName": messages.Permission.NOTONCHIP},
    level_of_assurance="http://bsi.bund.de/eID/LoA/hoch",
    eid_type_used="CardCertified",
)

#: A TC Token with every element set.
TC_TOKEN: Final = TcToken(
    server_address="https://eid.example.de/paos",
    session_identifier="5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
    refresh_address="https://gateway.example.de/eid/refresh?ref=abc",
    communication_error_address="https://gateway.example.de/eid/error",
    psk="00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
)


def identity_of(data: messages.PersonalData, **changes: Any) -> Identity:
    """The Identity the gateway makes of a successful getResult carrying ``data`` (``eid.mapping``), with
    ``changes`` (the attributes a test sets beyond the record: verifications, time, level, ...)."""
    return replace(identity_from_result(messages.GetResultResponse(messages.Result(results.MAJOR_OK), data)), **changes)
