"""EidRequest -> useID, getResult -> Identity, and ResultMinor -> FailureKind."""

from __future__ import annotations

import pytest

from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.eid import messages, results
from eid_gateway.eid.mapping import MappingError, identity_from_result, use_id_request
from eid_gateway.identity import Attribute as A
from eid_gateway.identity import LevelOfAssurance, PartialDate, Place


def test_use_id_request_from_eid_request() -> None:
    psk = messages.Psk("p" * 16, "ab" * 16)
    req = use_id_request(
        EidRequest(
            required=frozenset({A.FAMILY_NAMES, A.PSEUDONYM}),
            optional=frozenset({A.DOCTORAL_DEGREE, A.FAMILY_NAMES}),
            minimum_age=18,
            level_of_assurance=LevelOfAssurance.SUBSTANTIAL,
            transaction_info="Antrag 42",
        ),
        psk,
    )
    assert req.selection("FamilyNames") is messages.Selection.REQUIRED  # required wins over optional
    assert req.selection("RestrictedID") is messages.Selection.REQUIRED
    assert req.selection("AcademicTitle") is messages.Selection.ALLOWED
    assert req.selection("AgeVerification") is messages.Selection.REQUIRED and req.age == 18
    assert req.selection("PlaceVerification") is messages.Selection.PROHIBITED and req.community_id is None
    assert req.level_of_assurance == "http://eidas.europa.eu/LoA/substantial"
    assert req.transaction_info == "Antrag 42" and req.psk == psk
    assert sum(req.selection(n) is not messages.Selection.PROHIBITED for n in messages.OPERATION_NAMES) == 4


def test_optional_verification_keeps_allowed() -> None:
    req = use_id_request(
        EidRequest(required=frozenset(), optional=frozenset({A.PLACE_VERIFICATION}), community_id="0276")
    )
    assert req.selection("PlaceVerification") is messages.Selection.ALLOWED and req.community_id == "0276"


@pytest.mark.parametrize("attr", [A.AGE_VERIFICATION, A.PLACE_VERIFICATION])
def test_verification_without_argument_refused(attr: A) -> None:
    with pytest.raises(MappingError):
        use_id_request(EidRequest(required=frozenset({attr})))


RESPONSE = messages.GetResultResponse(
    messages.Result(results.MAJOR_OK),
    messages.PersonalData(
        given_names="ERIKA",
        family_names="MUSTERMANN",
        academic_title="",
        date_of_birth=PartialDate(1964, 8, 12),
        place_of_residence=Place(city="KÖLN", country="D"),
        restricted_id=messages.RestrictedID("AB" * 32),
    ),
    fulfils_age_verification=True,
    operations_allowed_by_user={n: messages.Permission.ALLOWED for n in messages.OPERATION_NAMES}
    | {
        "BirthName": messages.Permission.NOTONCHIP,
        "ArtisticName": messages.Permission.NOTONCHIP,
        "Nationality": messages.Permission.PROHIBITED,
    },
    level_of_assurance="http://bsi.bund.de/eID/LoA/substantiell",
)


def test_identity_from_result() -> None:
    identity = identity_from_result(RESPONSE)
    assert identity.given_names == "ERIKA" and identity.family_names == "MUSTERMANN"
    assert identity.doctoral_degree is None  # empty element = no value
    assert identity.date_of_birth == PartialDate(1964, 8, 12)
    assert identity.address == Place(city="KÖLN", country="D")
    assert identity.restricted_id == "AB" * 32
    assert identity.age_verification is True and identity.place_verification is None
    assert identity.not_on_chip == frozenset({A.BIRTH_NAME, A.ARTISTIC_NAME})
    assert identity.level_of_assurance is LevelOfAssurance.SUBSTANTIAL


def test_identity_minimised_to_request() -> None:
    identity = identity_from_result(RESPONSE, EidRequest(required=frozenset({A.FAMILY_NAMES}), minimum_age=18))
    assert identity.family_names == "MUSTERMANN"
    assert identity.given_names is None and identity.restricted_id is None and identity.address is None
    assert identity.age_verification is True


@pytest.mark.parametrize(
    ("uri", "loa"),
    [
        ("http://bsi.bund.de/eID/LoA/hoch", LevelOfAssurance.HIGH),
        ("http://bsi.bund.de/eID/LoA/normal", LevelOfAssurance.LOW),
        ("http://bsi.bund.de/eID/LoA/undefined", LevelOfAssurance.LOW),
        ("http://eidas.europa.eu/LoA/high", LevelOfAssurance.HIGH),
        (None, LevelOfAssurance.HIGH),
    ],
)
def test_level_of_assurance(uri: str | None, loa: LevelOfAssurance) -> None:
    resp = messages.GetResultResponse(messages.Result(results.MAJOR_OK), level_of_assurance=uri)
    assert identity_from_result(resp).level_of_assurance is loa


def test_error_result_is_not_an_identity() -> None:
    with pytest.raises(MappingError):
        identity_from_result(
            messages.GetResultResponse(messages.Result(results.MAJOR_ERROR, results.CANCELLATION_BY_USER))
        )


@pytest.mark.parametrize(
    ("minor", "kind"),
    [
        (results.CANCELLATION_BY_USER, FailureKind.CANCELLED),
        (results.COMMUNICATION_ERROR, FailureKind.WRONG_PIN),
        (results.NO_PERMISSION, FailureKind.CARD_BLOCKED),
        (results.UNKNOWN_ERROR, FailureKind.TIMEOUT),
        (results.DP_TIMEOUT, FailureKind.TIMEOUT),
        (results.DOCUMENT_VALIDITY_FAILED, FailureKind.DOCUMENT_INVALID),
        (results.DENIED_DOCUMENT, FailureKind.DOCUMENT_INVALID),
        (results.INVALID_DOCUMENT, FailureKind.DOCUMENT_INVALID),
        (results.TRUSTED_CHANNEL_FAILED, FailureKind.COMMUNICATION),
        (results.INTERNAL_ERROR, FailureKind.SERVER_ERROR),
        (results.INVALID_COUNTER, FailureKind.SERVER_ERROR),
        (results.INVALID_SESSION, FailureKind.SERVER_ERROR),
        ("urn:unknown", FailureKind.SERVER_ERROR),
        (None, FailureKind.SERVER_ERROR),
        ("  " + results.CANCELLATION_BY_USER + "\n", FailureKind.CANCELLED),
    ],
)
def test_failure_kind(minor: str | None, kind: FailureKind) -> None:
    assert results.failure_kind(minor) is kind


def test_result_uris() -> None:
    assert results.INTERNAL_ERROR == "http://www.bsi.bund.de/eid/server/2.0/resultminor/common#internalError"
    assert results.NO_RESULT_YET == "http://www.bsi.bund.de/eid/server/2.0/resultminor/getResult#noResultYet"
    assert results.CANCELLATION_BY_USER == "http://www.bsi.bund.de/ecard/api/1.1/resultminor/sal#cancellationByUser"
    assert results.MAJOR_OK == "http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok"


@pytest.mark.parametrize(
    ("minor", "short"),
    [
        (results.CANCELLATION_BY_USER, "cancellationByUser"),
        (results.TRUSTED_CHANNEL_FAILED, "trustedChannelEstablishmentFailed"),
        (results.INTERNAL_ERROR, "serverError"),
        (results.COMMUNICATION_ERROR, "clientError"),
        (None, "clientError"),
    ],
)
def test_refresh_minor(minor: str | None, short: str) -> None:
    assert results.refresh_minor(minor) == short
    assert short in results.REFRESH_MINORS


def test_refresh_failure_kind() -> None:
    assert results.refresh_failure_kind("cancellationByUser") is FailureKind.CANCELLED
    assert results.refresh_failure_kind("bogus") is FailureKind.SERVER_ERROR
