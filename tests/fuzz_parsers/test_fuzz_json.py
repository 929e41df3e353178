"""Fuzzing the JSON parsers of outside input: the kiosk API's state and heartbeat documents (body ->
JSON -> envelope -> reader snapshot, as :func:`eid_gateway.kiosks.api.post_state` runs them) and the
OIDC ``claims`` request parameter. Only the declared error types may come out."""

from __future__ import annotations

from typing import Any

from cardreader.model import (
    CardInfo,
    KioskSnapshot,
    ModelError,
    PaceOption,
    ReaderState,
    ReaderStatus,
    ServiceState,
    snapshot_from_json,
    snapshot_to_json,
)
from eid_gateway.frontends.oidc.claims import ClaimsParameterError, parse_claims_parameter
from eid_gateway.kiosks.api import BadMessage, parse_envelope, parse_json_body
from eid_gateway.kiosks.auth import parse_basic

from .mutate import binary_mutants, fuzz, json_mutants

SNAPSHOT = KioskSnapshot(
    service=ServiceState.OK,
    readers=(
        ReaderStatus(
            "Virtual PCD 00 00",
            ReaderState.ID_CARD,
            CardInfo(
                atr="3B8A80018031F873F741E082900075",
                atr_known_eid=True,
                pace=(
                    PaceOption("0.4.0.127.0.7.2.2.4.2.2", "id-PACE-ECDH-GM-AES-CBC-CMAC-128", 2, 13, "brainpoolP256r1"),
                ),
                chip_authentication=("id-CA-ECDH-AES-CBC-CMAC-128",),
                terminal_authentication=True,
            ),
            reader_pace=("eID",),
            detail="ok",
        ),
        ReaderStatus("Virtual PCD 00 01", ReaderState.EMPTY),
    ),
)


def _state_document(body: bytes) -> object:
    doc = parse_json_body(body)
    envelope = parse_envelope(doc)
    return envelope, snapshot_from_json(doc.get("status"))


def test_kiosk_documents() -> None:
    state: dict[str, Any] = {
        "instance": "kiosk-0001-a",
        "seq": 7,
        "queue": 0,
        "dropped": 0,
        "status": snapshot_to_json(SNAPSHOT),
    }
    heartbeat = {"instance": "kiosk-0001-a", "seq": 8, "queue": 2, "dropped": 1}
    tally = fuzz(
        "kiosks.api state document", _state_document, json_mutants([state], 2000, seed=51), (BadMessage, ModelError)
    )
    tally.check(min_inputs=2000)

    def heartbeat_document(body: bytes) -> object:
        return parse_envelope(parse_json_body(body))

    tally = fuzz(
        "kiosks.api heartbeat document", heartbeat_document, json_mutants([heartbeat], 1000, seed=52), (BadMessage,)
    )
    tally.check(min_inputs=1000)


def test_oidc_claims_parameter() -> None:
    samples = [
        {
            "userinfo": {"given_name": {"essential": True}, "family_name": None},
            "id_token": {"birthdate": {"essential": False}, "address": None},
        }
    ]
    inputs = [b.decode("utf-8", "replace") for b in json_mutants(samples, 1500, seed=53)]
    tally = fuzz("oidc.claims.parse_claims_parameter", parse_claims_parameter, inputs, (ClaimsParameterError,))
    tally.check(min_inputs=1500)


def test_staff_basic_auth_header() -> None:
    """The dashboard's Authorization header (anyone can send one): parse_basic answers None for anything
    unusable and declares no exception. Headers reach it as str, non-ASCII included."""
    samples = [b"Basic c3RhZmY6Z2VoZWlt", b"Basic w6TDtsO8OsOf", b"basic YTpi"]
    inputs = [b.decode("latin-1") for b in binary_mutants(samples, 1500, seed=54)]
    inputs += [h + "\u00e9" for h in inputs[:100]] + ["Basic \u00e9", "Basic \U0001f600=="]
    tally = fuzz("kiosks.auth.parse_basic", parse_basic, inputs, ())
    tally.check(min_inputs=1500, refusals=False)
