"""The simulator itself: production refusal, sessions (TTL, cap), SOAP error answers, the browser page."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from lxml import etree

from eid_gateway.core.port import EidRequest
from eid_gateway.eid import messages, results
from eid_gateway.eid.wssec import sign_envelope, verify_envelope
from eid_gateway.identity import Attribute as A
from eid_gateway.simulator import (
    SimulatedEidServer,
    SimulatorConfig,
    SimulatorRefused,
    default_identities,
    simulator_routes,
)
from eid_gateway.simulator.core import CardStepError
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes

from .conftest import Harness

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACTION = '"http://bsi.bund.de/eID/useID"'


@pytest.fixture(params=["memory", "sqlite"])
def core(
    request: pytest.FixtureRequest, tmp_path: Path, gateway_key: KeyPair, server_key: KeyPair
) -> SimulatedEidServer:
    config = SimulatorConfig(
        public_origin="https://gw.example",
        key=server_key,
        gateway_cert=gateway_key.certificate,
        session_ttl=timedelta(minutes=10),
        max_sessions=3,
        sessions=tmp_path / "sessions.sqlite3" if request.param == "sqlite" else None,
    )
    return SimulatedEidServer(config)


def _req(key: KeyPair, payload: etree._Element, now: datetime = NOW) -> bytes:
    return sign_envelope(messages.soap_envelope(payload), key, now=now)


def _answer(
    core: SimulatedEidServer, data: bytes, server_key: KeyPair, action: str | None = None, now: datetime = NOW
) -> etree._Element:
    ans = core.handle_soap(data, action, now=now)
    assert ans.status == 200
    return messages.body_payload(verify_envelope(parse_xml(ans.body), server_key.certificate, now=now))


USE_ID = messages.UseIDRequest(operations={"GivenNames": messages.Selection.REQUIRED})


def test_production_refused(gateway_key: KeyPair, server_key: KeyPair) -> None:
    config = SimulatorConfig("https://gw.example", server_key, gateway_key.certificate, production=True)
    with pytest.raises(SimulatorRefused):
        simulator_routes(config)
    with pytest.raises(SimulatorRefused):
        SimulatedEidServer(config)


def test_routes(gateway_key: KeyPair, server_key: KeyPair) -> None:
    routes = simulator_routes(SimulatorConfig("https://gw.example", server_key, gateway_key.certificate), "/sim")
    paths = {(r.method, r.path) for r in routes}
    assert paths == {("POST", "/sim/eID"), ("POST", "/sim/paos"), ("GET", "/sim/client"), ("POST", "/sim/client")}


def test_use_id_answer_signed_and_addressed(
    core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair
) -> None:
    resp = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(USE_ID)), server_key, ACTION)
    )
    assert resp.result.ok and resp.ecard_server_address == "https://gw.example/eid-sim/paos"
    assert resp.session_id is not None and len(resp.session_id) == 64
    assert resp.psk is not None and len(resp.psk.id) >= 16 and len(resp.psk.key) == 64


def test_session_cap(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    for _ in range(3):
        assert messages.parse_use_id_response(
            _answer(core, _req(gateway_key, messages.build_use_id_request(USE_ID)), server_key)
        ).result.ok
    resp = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(USE_ID)), server_key)
    )
    assert resp.result.minor == results.TOO_MANY_OPEN_SESSIONS
    # After the TTL the sessions are gone and there is room again.
    later = NOW + timedelta(minutes=11)
    resp = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(USE_ID), later), server_key, now=later)
    )
    assert resp.result.ok and core.open_sessions() == 1


def test_expired_session_is_invalid(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    resp = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(USE_ID)), server_key)
    )
    assert resp.session_id is not None and resp.psk is not None
    later = NOW + timedelta(minutes=11)
    with pytest.raises(CardStepError) as err:
        core.card_step(resp.psk.id, "erika", "123456", now=later)
    assert err.value.status == 404
    get = messages.build_get_result_request(messages.GetResultRequest(resp.session_id, 1))
    result = messages.parse_get_result_response(_answer(core, _req(gateway_key, get, later), server_key, now=later))
    assert result.result.minor == results.INVALID_SESSION


def test_bad_signature_gets_internal_error(core: SimulatedEidServer, rogue_key: KeyPair, server_key: KeyPair) -> None:
    resp = messages.parse_use_id_response(
        _answer(core, _req(rogue_key, messages.build_use_id_request(USE_ID)), server_key)
    )
    assert resp.result.minor == results.INTERNAL_ERROR and resp.session_id is None
    get = messages.build_get_result_request(messages.GetResultRequest("ab" * 32, 1))
    assert (
        messages.parse_get_result_response(_answer(core, _req(rogue_key, get), server_key)).result.minor
        == results.INTERNAL_ERROR
    )
    assert core.open_sessions() == 0


def test_unsigned_request_gets_internal_error(core: SimulatedEidServer, server_key: KeyPair) -> None:
    data = to_bytes(messages.soap_envelope(messages.build_use_id_request(USE_ID)))
    assert messages.parse_use_id_response(_answer(core, data, server_key)).result.minor == results.INTERNAL_ERROR


def test_stale_request_gets_internal_error(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    data = _req(gateway_key, messages.build_use_id_request(USE_ID), NOW - timedelta(hours=1))
    assert messages.parse_use_id_response(_answer(core, data, server_key)).result.minor == results.INTERNAL_ERROR


def test_schema_violation(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    payload = messages.build_use_id_request(USE_ID)
    payload[0].remove(payload[0][0])  # UseOperations without DocumentType
    resp = messages.parse_use_id_response(_answer(core, _req(gateway_key, payload), server_key))
    assert resp.result.minor == results.SCHEMA_VIOLATION


def test_missing_argument(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    req = messages.UseIDRequest(operations={"AgeVerification": messages.Selection.REQUIRED})
    resp = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(req)), server_key)
    )
    assert resp.result.minor == results.MISSING_ARGUMENT


def test_psk_from_request_is_used(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    psk = messages.Psk("gateway-chosen-id-0001", "cd" * 32)
    req = messages.UseIDRequest(operations={"GivenNames": messages.Selection.REQUIRED}, psk=psk)
    assert (
        messages.parse_use_id_response(
            _answer(core, _req(gateway_key, messages.build_use_id_request(req)), server_key)
        ).psk
        == psk
    )
    again = messages.parse_use_id_response(
        _answer(core, _req(gateway_key, messages.build_use_id_request(req)), server_key)
    )
    assert again.result.minor == results.INVALID_PSK  # a PSK ID names one session only


@pytest.mark.parametrize(
    "data",
    [
        b"not xml",
        b"<x/>",
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a/></s:Body></s:Envelope>',
    ],
)
def test_malformed_requests_get_faults(core: SimulatedEidServer, data: bytes) -> None:
    ans = core.handle_soap(data, None)
    assert ans.status == 400
    assert b"faultcode" in ans.body and b"soapenv:Client" in ans.body


def test_soap_action_mismatch_fault(core: SimulatedEidServer, gateway_key: KeyPair) -> None:
    ans = core.handle_soap(
        _req(gateway_key, messages.build_use_id_request(USE_ID)), '"http://bsi.bund.de/eID/getResult"', NOW
    )
    assert ans.status == 400


def test_server_info(core: SimulatedEidServer, gateway_key: KeyPair, server_key: KeyPair) -> None:
    info = messages.parse_get_server_info_response(
        _answer(core, _req(gateway_key, messages.build_get_server_info_request()), server_key)
    )
    assert info.major == 2 and info.minor == 4 and set(info.rights) == set(messages.OPERATION_NAMES)


def test_server_info_with_bad_signature_is_fault(core: SimulatedEidServer, rogue_key: KeyPair) -> None:
    ans = core.handle_soap(_req(rogue_key, messages.build_get_server_info_request()), None, NOW)
    assert ans.status == 400 and b"soapenv:Client" in ans.body  # the sender's signature: the sender's fault


def test_identities_are_stable_and_complete() -> None:
    one, two = default_identities(), default_identities()
    assert {k: v.data.restricted_id for k, v in one.items()} == {k: v.data.restricted_id for k, v in two.items()}
    ids = [c.data.restricted_id.id for c in one.values() if c.data.restricted_id]
    assert len(ids) == len(set(ids)) == len(one)
    assert {"erika", "andre", "hans", "minor", "abroad", "doctor", "permit",
            "cancelled", "wrong-pin", "blocked", "expired"} <= set(one)  # fmt: skip
    erika = one["erika"].data
    assert (erika.given_names, erika.family_names, erika.date_of_expiry) == ("ERIKA", "MUSTERMANN", "2029-10-31")


# --- the browser page ---------------------------------------------------------------------------------------


async def test_client_page(harness: Harness) -> None:
    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES})))
    page_url = harness.sim.client_page_url(url)
    async with harness.http.get(page_url) as resp:
        assert resp.status == 200
        text = await resp.text()
        # one language per page (German by default): no English line on it
        assert "Simulierte AusweisApp" in text and "Testumgebung" in text and 'lang="de"' in text
        assert "Test environment" not in text and "Error card" not in text and "Fehlerkarte: falsche PIN" in text
        assert "<script" not in text
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert resp.cookies["eid_sim_csrf"]["samesite"] == "Strict"
        assert resp.cookies["eid_sim_csrf"]["httponly"]
    for ident in re.findall(r'<input type="radio" id="([^"]+)"', text):
        assert f'<label for="{ident}">' in text
    assert '<label for="pin">' in text and 'id="pin"' in text
    assert 'value="confirm"' in text and 'value="cancel"' in text
    async with harness.http.get(page_url, headers={"Accept-Language": "en"}) as resp:
        english = await resp.text()
    assert 'lang="en"' in english and "Simulated AusweisApp" in english and "Error card: wrong PIN" in english
    assert "Testumgebung" not in english and "Fehlerkarte" not in english


async def _submit(h: Harness, tc_token_url: str, **fields: str) -> aiohttp.ClientResponse:
    async with h.http.get(h.sim.client_page_url(tc_token_url)) as resp:
        text = await resp.text()
    match = re.search(r'name="csrf" value="([^"]+)"', text)
    assert match
    form = {"tcTokenURL": tc_token_url, "csrf": match.group(1), "identity": "erika", "pin": "123456",
            "action": "confirm"} | fields  # fmt: skip
    return await h.http.post(f"{h.origin}/eid-sim/client", data=form, allow_redirects=False)


async def test_client_page_confirm_redirects_to_refresh(harness: Harness) -> None:
    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES})))
    resp = await _submit(harness, url, identity="andre")
    assert resp.status == 303
    assert resp.headers["Location"] == harness.refresh(url) + "&ResultMajor=ok"
    identity = await harness.client.fetch_result(harness.session_of(url), 1)
    assert identity.family_names == "MUSTERMANN" and identity.given_names is None


async def test_client_page_cancel(harness: Harness) -> None:
    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES})))
    resp = await _submit(harness, url, action="cancel", pin="")
    assert resp.status == 303
    assert resp.headers["Location"].endswith("ResultMajor=error&ResultMinor=cancellationByUser")


async def test_client_page_csrf(harness: Harness) -> None:
    url = harness.begin(EidRequest(required=frozenset({A.FAMILY_NAMES})))
    resp = await _submit(harness, url, csrf="forged")
    assert resp.status == 403
    harness.http.cookie_jar.clear()
    form = {"tcTokenURL": url, "csrf": "x", "identity": "erika", "pin": "123456", "action": "confirm"}
    async with harness.http.post(f"{harness.origin}/eid-sim/client", data=form, allow_redirects=False) as r:
        assert r.status == 403
    assert harness.sessions == {}  # no useID happened


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data", "file:///etc/passwd", ""])
async def test_client_page_refuses_foreign_tc_token_url(harness: Harness, target: str) -> None:
    async with harness.http.get(f"{harness.origin}/eid-sim/client?{urlencode({'tcTokenURL': target})}") as resp:
        assert resp.status == 400


@pytest.mark.parametrize("cancel", [False, True])
def test_sqlite_sessions_keep_every_outcome_exactly(
    tmp_path: Path, gateway_key: KeyPair, server_key: KeyPair, cancel: bool
) -> None:
    """The file holds the useID request and the outcome as TR-03130 messages: every test identity's
    answer comes out of it exactly as the in-memory simulator gives it."""
    base = SimulatorConfig("https://gw.example", server_key, gateway_key.certificate)
    memory = SimulatedEidServer(base)
    shared = SimulatedEidServer(replace(base, sessions=tmp_path / "sessions.sqlite3"))
    req = messages.UseIDRequest(
        operations={name: messages.Selection.ALLOWED for name in messages.OPERATION_NAMES},
        age=18,
        community_id="0276",
        psk=messages.Psk("ab" * 16, "cd" * 32),
    )
    answers = []
    for core in (memory, shared):
        got = []
        for identity in default_identities():
            opened = core.use_id(replace(req, psk=None), NOW)
            assert opened.session_id is not None and opened.psk is not None
            core.card_step(opened.psk.id, identity, "123456", cancel=cancel, deselect=["BirthName"], now=NOW)
            got.append(core.take_result(opened.session_id, NOW))
        answers.append(got)
    assert answers[0] == answers[1]
    assert cancel or any(a.personal_data is not None and a.personal_data.given_names for a in answers[1])
    shared.use_id(req, NOW)  # a PSK the caller chose is not kept in the file
    shared.close()
    assert b"cd" * 32 not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
