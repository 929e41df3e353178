import json

import pytest

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

SNAP = KioskSnapshot(
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
        ),
        ReaderStatus("Virtual PCD 00 01", ReaderState.EMPTY),
    ),
)


def test_round_trip_through_json_text():
    assert snapshot_from_json(json.loads(json.dumps(snapshot_to_json(SNAP)))) == SNAP


def test_summary_prefers_most_useful_fact():
    assert SNAP.summary == "id_card"
    assert KioskSnapshot(ServiceState.PCSC_UNAVAILABLE, detail="SCARD_E_NO_SERVICE").summary == "pcsc_unavailable"
    assert KioskSnapshot(ServiceState.OK, (ReaderStatus("r", ReaderState.EMPTY),)).summary == "empty"
    assert KioskSnapshot(ServiceState.OK, ()).summary == "unavailable"


def _doc(**changes):
    d = snapshot_to_json(SNAP)
    d.update(changes)
    return d


@pytest.mark.parametrize(
    "doc, reason",
    [
        ([], "status must be an object"),
        (_doc(service="bogus"), "service has an unknown value"),
        (_doc(readers={}), "readers must be a list"),
        (_doc(readers=[{"name": "r", "state": "empty"}] * 17), "more than 16"),
        (_doc(readers=[{"name": 5, "state": "empty"}]), r"readers\[0\].name must be a string"),
        (_doc(readers=[{"name": "a\nb", "state": "empty"}]), "control characters"),
        (_doc(readers=[{"name": "x" * 201, "state": "empty"}]), "longer than 200"),
        (_doc(readers=[{"name": "r", "state": "on_fire"}]), "unknown value"),
        (
            _doc(readers=[{"name": "r", "state": "id_card", "card": {"atr": "3b8a", "atr_known_eid": True}}]),
            "upper-case hex",
        ),
        (_doc(readers=[{"name": "r", "state": "id_card", "card": {"atr": "3B", "atr_known_eid": 1}}]), "boolean"),
        (
            _doc(
                readers=[
                    {
                        "name": "r",
                        "state": "id_card",
                        "card": {
                            "atr": "3B",
                            "atr_known_eid": True,
                            "pace": [{"protocol": "p", "name": "n", "version": -1}],
                        },
                    }
                ]
            ),
            "non-negative integer",
        ),
        (_doc(detail=7), "detail must be a string"),
    ],
)
def test_untrusted_documents_are_refused_precisely(doc, reason):
    with pytest.raises(ModelError, match=reason):
        snapshot_from_json(doc)
