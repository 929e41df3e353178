"""Fuzzing the embedded eID-Server's side of PAOS: the message parser, and a whole EAC conversation in
which one client message is mutated (EF.CardSecurity, the authentication token, CV certificates' CARs,
Secure Messaging responses and data groups all arrive through it). Seeds are the messages of a real
conversation between the server and the project's card and client emulators."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from eidserver.conftest import all_required, card_for
from lxml import etree

from eid_gateway.eidserver import paos
from eid_gateway.eidserver.emulator import ClientEmulator
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig
from eid_gateway.eidserver.testpki import TestPki, generate_test_pki
from saml.keys import generate_key_pair

from .mutate import binary_mutants, fuzz, xml_mutants

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki") / "p", "http://127.0.0.1:8080", today=NOW.date())


@pytest.fixture(scope="module")
def server(pki: TestPki) -> EmbeddedEidServer:
    key = generate_key_pair("ec-p256", "fuzz gateway")
    return EmbeddedEidServer(
        EmbeddedServerConfig("https://127.0.0.1:8443/paos", key, key.certificate, pki.credentials(b"s" * 32))
    )


def _conversation(
    server: EmbeddedEidServer,
    pki: TestPki,
    replace_at: int | None = None,
    mutate: Callable[[bytes], bytes] | None = None,
    statuses: Counter[int] | None = None,
    **client: object,
) -> list[bytes]:
    """The client's messages of one session; with ``replace_at``, message number ``replace_at`` is
    replaced by ``mutate`` of it (it carries this session's RelatesTo) and the conversation ends with the
    server's answer to it (its HTTP status counted in ``statuses``)."""
    resp = server.use_id(all_required(), now=NOW)
    assert resp.psk is not None
    emu = ClientEmulator(card_for(pki), resp.psk.id, **client)  # type: ignore[arg-type]
    sent: list[bytes] = []
    body: bytes | None = emu.start()
    while body is not None:
        if len(sent) == replace_at and mutate is not None:
            replacement = mutate(body)
            answer = server.handle_paos(replacement, resp.psk.id, now=NOW)
            assert answer.status in (200, 400, 404, 409), answer.status
            if statuses is not None:
                statuses[answer.status] += 1
            return sent + [replacement]
        sent.append(body)
        answer = server.handle_paos(body, resp.psk.id, now=NOW)
        assert answer.status == 200
        body = emu.answer(answer.body)
    return sent


def _card_data_mutants(message: bytes, count: int, seed: int) -> Iterator[bytes]:
    """``message`` with the bytes of one hex element (EF.CardSecurity, a token, an APDU) mutated: what a
    card or a client can send once the XML is right."""
    root = etree.fromstring(message)
    slots = [
        el
        for el in root.iter()
        if isinstance(el.tag, str) and len(el) == 0 and len(el.text or "") >= 4 and _HEX.fullmatch(el.text or "")
    ]
    if not slots:
        return
    rng = random.Random(seed)
    for _ in range(count):
        index = rng.randrange(len(slots))
        data = bytes.fromhex(slots[index].text or "")
        mutant = list(binary_mutants([data], 2, seed=rng.randrange(2**32)))[-1]
        copy = etree.fromstring(message)
        target = [
            el
            for el in copy.iter()
            if isinstance(el.tag, str) and len(el) == 0 and len(el.text or "") >= 4 and _HEX.fullmatch(el.text or "")
        ][index]
        target.text = mutant.hex().upper()
        yield etree.tostring(copy)


def test_paos_parser(server: EmbeddedEidServer, pki: TestPki) -> None:
    samples = _conversation(server, pki) + _conversation(server, pki, cancel=True)
    assert len(samples) == 6
    tally = fuzz("eidserver.paos.parse", paos.parse, xml_mutants(samples, 2000, seed=41), (paos.PaosError,))
    tally.check(min_inputs=2000)


def test_eac_conversation_with_one_mutated_message(server: EmbeddedEidServer, pki: TestPki) -> None:
    """handle_paos declares no exception at all: unusable input is a 4xx answer or a failed session."""
    steps = len(_conversation(server, pki))
    per_step = 8
    statuses: Counter[int] = Counter()

    def mutate(seed: int) -> Callable[[bytes], bytes]:
        def apply(message: bytes) -> bytes:
            if seed % 4 == 0:  # a quarter: the XML itself
                return list(xml_mutants([message], 2, seed=seed, raw_share=0))[-1]
            return next(_card_data_mutants(message, 1, seed), message)

        return apply

    def converse(item: tuple[int, int]) -> object:
        step, seed = item
        return _conversation(server, pki, step, mutate(seed), statuses)

    inputs = [(step, 1000 * step + i) for step in range(steps) for i in range(per_step)]

    tally = fuzz("eidserver EAC conversation (handle_paos)", converse, inputs, ())
    print("  answers by HTTP status:", dict(statuses))
    tally.check(min_inputs=per_step * steps, refusals=False)
    assert statuses[200] and statuses[400], statuses  # mutants reach the EAC session, and the parser refuses some
