"""A verified PID -> the one Identity, and the per-service pseudonym from the holder key
(eid_gateway/wallet/mapping.py, with flow.release_identity unchanged)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from eid_gateway.core.port import EidRequest
from eid_gateway.flow import release_identity
from eid_gateway.identity import Attribute, LevelOfAssurance, PartialDate, Place
from eid_gateway.services import Service
from eid_gateway.wallet.mapping import MappingError, identity_from_pid, restricted_id_for
from eid_gateway.wallet.sdjwt import VerifiedPid, verify_presentation

from .builder import AUDIENCE, NONCE, VCT, Holder, issue, present
from .conftest import Pki

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SECRET = b"s" * 32


def pid_of(claims: dict, thumbprint: str = "Ks0rYXlCqYElFeK3zTKSVESZIVINxmwmPjCWWNpXu6E") -> VerifiedPid:
    return VerifiedPid(claims, VCT, "https://pid-provider.test", None, None, None, thumbprint)


def test_every_pid_claim_lands_in_its_attribute(pki: Pki) -> None:
    holder = Holder()
    pid = verify_presentation(
        present(issue(pki.issuer, holder), holder),
        trust=pki.trust,
        vct_values=[VCT],
        nonce=NONCE,
        audience=AUDIENCE,
        now=int(time.time()),
    )
    identity = identity_from_pid(
        pid, level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=AT, minimum_age=18
    )
    assert identity.given_names == "ERIKA" and identity.family_names == "MUSTERMANN" and identity.birth_name == "GABLER"
    assert identity.date_of_birth == PartialDate(1964, 8, 12)
    assert identity.place_of_birth == Place(city="BERLIN", country="DE")
    assert identity.address == Place(street="HEIDESTRASSE 17", city="KÖLN", zip_code="51147", country="DE")
    assert identity.nationality == "DE" and identity.issuing_state == "DE" and identity.date_of_expiry == "2031-10-31"
    assert identity.age_verification is True
    assert identity.level_of_assurance is LevelOfAssurance.SUBSTANTIAL and identity.authenticated_at == AT
    assert identity.restricted_id == restricted_id_for(holder.key.thumbprint())
    assert identity.not_on_chip == {
        Attribute.DOCUMENT_TYPE,
        Attribute.ARTISTIC_NAME,
        Attribute.DOCTORAL_DEGREE,
        Attribute.COMMUNITY_ID,
        Attribute.RESIDENCE_PERMIT,
        Attribute.PLACE_VERIFICATION,
    }


def test_the_age_answer_is_the_one_for_the_asked_age_only() -> None:
    claims = {"age_equal_or_over": {"16": True, "18": False}}
    at = dict(level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=AT)
    assert identity_from_pid(pid_of(claims), minimum_age=18, **at).age_verification is False  # type: ignore[arg-type]
    assert identity_from_pid(pid_of(claims), minimum_age=16, **at).age_verification is True  # type: ignore[arg-type]
    assert identity_from_pid(pid_of(claims), minimum_age=21, **at).age_verification is None  # type: ignore[arg-type]
    assert identity_from_pid(pid_of(claims), **at).age_verification is None  # type: ignore[arg-type]


def test_partial_dates_formatted_addresses_and_several_nationalities() -> None:
    at = dict(level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=AT)
    identity = identity_from_pid(
        pid_of(
            {
                "birthdate": "1964",
                "address": {"formatted": "Heidestr. 17, 51147 Köln"},
                "nationalities": ["DE", "FR"],
                "expiry_date": "2030-01-01",
            }
        ),
        **at,  # type: ignore[arg-type]
    )
    assert identity.date_of_birth == PartialDate(1964)
    assert identity.address == Place(freetext="Heidestr. 17, 51147 Köln")
    assert identity.nationality == "DE,FR" and identity.date_of_expiry == "2030-01-01"
    assert identity.given_names is None and Attribute.GIVEN_NAMES in identity.not_on_chip


@pytest.mark.parametrize(
    "claims",
    [
        {"given_name": 1},
        {"birthdate": "12.08.1964"},
        {"address": "Köln"},
        {"nationalities": [1]},
        {"age_equal_or_over": {"18": "yes"}},
    ],
)
def test_claims_of_the_wrong_shape_are_a_mapping_error(claims: dict) -> None:
    with pytest.raises(MappingError):
        identity_from_pid(
            pid_of(claims), level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=AT, minimum_age=18
        )


def test_the_pseudonym_is_per_service_and_per_holder_key() -> None:
    """Through the flow's unchanged release_identity: stable for one key at one service, different at
    another service, different for another key (a re-issued credential)."""
    services = [
        Service(id=s, name_de=s, name_en=s, allowed_attributes=frozenset({Attribute.PSEUDONYM})) for s in ("a", "b")
    ]
    req = EidRequest(required=frozenset({Attribute.PSEUDONYM}))
    at = dict(level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=AT)
    first, second = Holder().key.thumbprint(), Holder().key.thumbprint()

    def pseudonym(service: Service, thumbprint: str) -> str:
        identity = identity_from_pid(pid_of({"given_name": "ERIKA"}, thumbprint), **at)  # type: ignore[arg-type]
        released, value = release_identity(identity, service, req, SECRET)
        assert released.restricted_id == value and released.given_names is None  # minimised
        return value

    a1 = pseudonym(services[0], first)
    assert pseudonym(services[0], first) == a1
    assert pseudonym(services[1], first) != a1
    assert pseudonym(services[0], second) != a1
    assert len(restricted_id_for(first)) == 64 and restricted_id_for(first) != restricted_id_for(second)
    with pytest.raises(MappingError):
        restricted_id_for("not base64url!")
