"""Fixtures of the embedded eID-Server tests: one test PKI per session, the sans-I/O server, the emulators.

Tests marked ``ausweisapp`` drive the real AusweisApp (Debian's ``ausweisapp2``); they are skipped only
when its binary is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from eid_gateway.eid.messages import OPERATION_NAMES, PersonalData, Selection, UseIDRequest
from eid_gateway.eidserver.emulator import ClientEmulator, EmulatedCard, card_files
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig
from eid_gateway.eidserver.testpki import TestPki, generate_test_pki
from eid_gateway.simulator.identities import default_identities
from saml.keys import KeyPair, generate_key_pair


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ausweisapp: drives the real AusweisApp (skipped when not installed)")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki") / "eid-test-pki", "http://127.0.0.1:8080")


@pytest.fixture(scope="session")
def gateway_key() -> KeyPair:
    return generate_key_pair("ec-p256")


@pytest.fixture
def server(pki: TestPki, gateway_key: KeyPair) -> EmbeddedEidServer:
    return EmbeddedEidServer(
        EmbeddedServerConfig(
            "https://127.0.0.1:8443/paos", gateway_key, gateway_key.certificate, pki.credentials(b"s" * 32)
        )
    )


def all_required(**extra: object) -> UseIDRequest:
    ops = {n: Selection.REQUIRED for n in OPERATION_NAMES}
    return UseIDRequest(ops, age=18, community_id="0276", **extra)  # type: ignore[arg-type]


def card_for(pki: TestPki, name: str = "erika", data: PersonalData | None = None) -> EmulatedCard:
    holder = data if data is not None else default_identities()[name].data
    return EmulatedCard(card_files(holder), pki.cvca.public_key.to_cryptography(None))  # type: ignore[arg-type]


Run = Callable[..., tuple[str, ClientEmulator]]


def run_session(server: EmbeddedEidServer, request: UseIDRequest, card: EmulatedCard, **client: object) -> str:
    """useID, then the whole PAOS conversation; returns the session ID for getResult."""
    resp = server.use_id(request)
    assert resp.result.ok and resp.psk is not None and resp.session_id is not None
    emu = ClientEmulator(card, resp.psk.id, **client)  # type: ignore[arg-type]
    body: bytes | None = emu.start()
    while body is not None:
        answer = server.handle_paos(body, resp.psk.id)
        assert answer.status == 200, answer
        body = emu.answer(answer.body)
    return resp.session_id


@pytest.fixture
def pki_dir(pki: TestPki) -> Path:
    return pki.directory
