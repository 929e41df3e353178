"""The TR-03130 client against the simulator over real HTTP on loopback, and against broken servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from lxml import etree

from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.core.port import (
    EidProtocolError,
    EidRequest,
    EidResultError,
    EidServerUnavailable,
    EidSession,
    FailureKind,
    ResultNotReady,
)
from eid_gateway.eid import results
from eid_gateway.eid.messages import (
    GetResultResponse,
    GetServerInfoResponse,
    PersonalData,
    Psk,
    Result,
    build_get_result_response,
    build_get_server_info_response,
    build_use_id_request,
    parse_use_id_request,
    soap_envelope,
)
from eid_gateway.eid.wssec import sign_envelope
from eid_gateway.identity import Attribute as A
from eid_gateway.identity import LevelOfAssurance, PartialDate, Place
from eid_gateway.simulator import Simulator, SimulatorConfig, run_simulated_client
from eid_gateway.simulator.identities import stable_restricted_id
from saml.keys import KeyPair
from saml.xml import to_bytes

from .conftest import Harness, start_server

ALL_DATA = frozenset(
    {
        A.DOCUMENT_TYPE,
        A.ISSUING_STATE,
        A.DATE_OF_EXPIRY,
        A.GIVEN_NAMES,
        A.FAMILY_NAMES,
        A.DATE_OF_BIRTH,
        A.PLACE_OF_BIRTH,
        A.NATIONALITY,
        A.ADDRESS,
        A.PSEUDONYM,
    }
)
EXTRA = frozenset({A.ARTISTIC_NAME, A.DOCTORAL_DEGREE, A.BIRTH_NAME, A.COMMUNITY_ID, A.RESIDENCE_PERMIT})


async def _sign_in(h: Harness, request: EidRequest, **card: object) -> tuple[str, EidSession, str]:
    url = h.begin(request)
    target = await run_simulated_client(h.http, url, **card)  # type: ignore[arg-type]
    return url, h.session_of(url), target


async def test_erika_full_flow(harness: Harness) -> None:
    req = EidRequest(required=ALL_DATA, optional=EXTRA, minimum_age=18, community_id="027605")
    url, session, target = await _sign_in(harness, req)
    assert target == harness.refresh(url) + "&ResultMajor=ok"
    assert session.server_address == harness.sim.core.ecard_server_address
    assert len(session.session_id) >= 32 and session.psk_key and len(session.psk_key) >= 32

    identity = await harness.client.fetch_result(session, 1)
    assert (identity.given_names, identity.family_names) == ("ERIKA", "MUSTERMANN")
    assert identity.date_of_birth == PartialDate(1964, 8, 12)
    assert identity.place_of_birth == Place(freetext="BERLIN")
    assert identity.address == Place(street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147")
    assert identity.document_type == "ID" and identity.issuing_state == "D" and identity.nationality == "D"
    assert identity.date_of_expiry == "2029-10-31"
    assert identity.birth_name == "GABLER"
    assert identity.community_id == "02760503150000"
    assert identity.age_verification is True and identity.place_verification is True
    assert identity.restricted_id == stable_restricted_id("erika").id
    assert identity.level_of_assurance is LevelOfAssurance.HIGH
    assert identity.authenticated_at is not None
    # Not on Erika's card: artistic name, doctoral degree, residence permit.
    assert identity.not_on_chip == frozenset({A.ARTISTIC_NAME, A.DOCTORAL_DEGREE, A.RESIDENCE_PERMIT})
    assert identity.artistic_name is None

    # The session is over after the final answer.
    with pytest.raises(EidResultError) as err:
        await harness.client.fetch_result(session, 2)
    assert err.value.result_minor == results.INVALID_SESSION


async def test_only_requested_attributes_are_released(harness: Harness) -> None:
    req = EidRequest(required=frozenset({A.PSEUDONYM}), optional=frozenset({A.GIVEN_NAMES, A.FAMILY_NAMES}))
    _, session, _ = await _sign_in(harness, req, deselect=["GivenNames", "RestrictedID"])
    identity = await harness.client.fetch_result(session, 1)
    assert identity.restricted_id == stable_restricted_id("erika").id  # REQUIRED: cannot be deselected
    assert identity.family_names == "MUSTERMANN"  # ALLOWED, kept
    assert identity.given_names is None  # ALLOWED, deselected by the citizen
    assert identity.date_of_birth is None and identity.address is None  # never asked


@pytest.mark.parametrize(
    ("card", "check"),
    [
        (
            "andre",
            lambda i: (
                i.given_names == "ANDRÉ"
                and i.nationality == "AZE"
                and i.document_type == "TA"
                and i.address.city == "LÜBBENAU/SPREEWALD"
                and i.date_of_birth == PartialDate(1981, 6, 17)
            ),
        ),
        (
            "hans",
            lambda i: (
                i.given_names == "HANS-GÜNTHER"
                and i.date_of_birth == PartialDate(1946)
                and i.family_names == "VON DREBENBUSCH-DALGOßEN"
            ),
        ),
        ("abroad", lambda i: i.address == Place(no_place_info="keine Hauptwohnung in Deutschland")),
        (
            "doctor",
            lambda i: i.artistic_name == "ANNA LIEDER" and i.doctoral_degree == "DR." and i.address.state == "BAYERN",
        ),
        ("permit", lambda i: i.residence_permit == "Erwerbstätigkeit gestattet." and i.document_type == "AR"),
    ],
)
async def test_identities(harness: Harness, card: str, check: object) -> None:
    _, session, target = await _sign_in(harness, EidRequest(required=ALL_DATA | EXTRA), identity=card)
    assert target.endswith("ResultMajor=ok")
    identity = await harness.client.fetch_result(session, 1)
    assert callable(check) and check(identity)
    assert identity.restricted_id == stable_restricted_id(card).id


async def test_identities_have_distinct_stable_pseudonyms(harness: Harness) -> None:
    seen = []
    for card in ("erika", "andre", "erika"):
        _, session, _ = await _sign_in(harness, EidRequest(required=frozenset({A.PSEUDONYM})), identity=card)
        seen.append((await harness.client.fetch_result(session, 1)).restricted_id)
    assert seen[0] == seen[2] != seen[1]


async def test_minor_fails_age_verification_without_error(harness: Harness) -> None:
    _, session, _ = await _sign_in(harness, EidRequest(required=frozenset(), minimum_age=18), identity="minor")
    identity = await harness.client.fetch_result(session, 1)
    assert identity.age_verification is False
    assert identity.given_names is None  # only the check was asked for

    _, session, _ = await _sign_in(harness, EidRequest(required=frozenset(), minimum_age=16), identity="minor")
    assert (await harness.client.fetch_result(session, 1)).age_verification is True


async def test_partial_birth_date_age_check_is_conservative(harness: Harness) -> None:
    age = date.today().year - 1946
    _, session, _ = await _sign_in(harness, EidRequest(required=frozenset(), minimum_age=age), identity="hans")
    # Born "1946" (month and day unknown): counted as born on 31 December, so not yet `age` for sure.
    assert (await harness.client.fetch_result(session, 1)).age_verification is False


async def test_place_verification_false_for_other_community(harness: Harness) -> None:
    _, session, _ = await _sign_in(harness, EidRequest(required=frozenset(), community_id="02760901"))
    assert (await harness.client.fetch_result(session, 1)).place_verification is False


@pytest.mark.parametrize(
    ("card", "kwargs", "kind", "minor", "refresh_minor"),
    [
        ("cancelled", {}, FailureKind.CANCELLED, results.CANCELLATION_BY_USER, "cancellationByUser"),
        ("erika", {"cancel": True}, FailureKind.CANCELLED, results.CANCELLATION_BY_USER, "cancellationByUser"),
        ("wrong-pin", {}, FailureKind.WRONG_PIN, results.COMMUNICATION_ERROR, "clientError"),
        ("erika", {"pin": "654321"}, FailureKind.WRONG_PIN, results.COMMUNICATION_ERROR, "clientError"),
        ("blocked", {}, FailureKind.CARD_BLOCKED, results.NO_PERMISSION, "clientError"),
        ("expired", {}, FailureKind.DOCUMENT_INVALID, results.DOCUMENT_VALIDITY_FAILED, "clientError"),
    ],
)
async def test_error_cards(
    harness: Harness, card: str, kwargs: dict[str, object], kind: FailureKind, minor: str, refresh_minor: str
) -> None:
    url, session, target = await _sign_in(harness, EidRequest(required=ALL_DATA), identity=card, **kwargs)
    assert target == harness.refresh(url) + f"&ResultMajor=error&ResultMinor={refresh_minor}"
    with pytest.raises(EidResultError) as err:
        await harness.client.fetch_result(session, 1)
    assert err.value.kind is kind
    assert err.value.result_minor == minor


async def test_result_not_ready_then_counter_reuse_refused(harness: Harness) -> None:
    url = harness.begin(EidRequest(required=ALL_DATA))
    async with harness.http.get(url) as resp:  # AusweisApp fetched the token, the card step is pending
        assert resp.status == 200
    session = harness.session_of(url)
    with pytest.raises(ResultNotReady):
        await harness.client.fetch_result(session, 1)
    with pytest.raises(ResultNotReady):
        await harness.client.fetch_result(session, 2)
    with pytest.raises(EidResultError) as err:
        await harness.client.fetch_result(session, 2)  # replayed counter
    assert err.value.result_minor == results.INVALID_COUNTER
    assert err.value.kind is FailureKind.SERVER_ERROR
    with pytest.raises(EidResultError) as err:
        await harness.client.fetch_result(session, 3)  # the server ended the session
    assert err.value.result_minor == results.INVALID_SESSION


async def test_card_step_only_once(harness: Harness) -> None:
    url, session, _ = await _sign_in(harness, EidRequest(required=ALL_DATA))
    form = {"SessionIdentifier": session.psk_id or "", "identity": "andre", "pin": "123456", "action": "confirm"}
    async with harness.http.post(session.server_address, data=form) as resp:
        assert resp.status == 409
    assert (await harness.client.fetch_result(session, 1)).given_names == "ERIKA"


async def test_card_step_unknown_session(harness: Harness) -> None:
    form = {"SessionIdentifier": "0" * 32, "identity": "erika", "pin": "123456", "action": "confirm"}
    async with harness.http.post(harness.sim.core.ecard_server_address, data=form) as resp:
        assert resp.status == 404


async def test_server_info(harness: Harness) -> None:
    info = await harness.client.server_info()
    assert "simulator" in info.version
    assert set(info.rights) >= {"GivenNames", "RestrictedID"} and all(info.rights.values())


async def test_wrong_gateway_key_gets_internal_error(harness: Harness, rogue_key: KeyPair, server_key: KeyPair) -> None:
    stranger = Tr03130Client(harness.sim.eid_url, rogue_key, server_key.certificate, timeout=5)
    try:
        with pytest.raises(EidResultError) as err:
            await stranger.start_session(EidRequest(required=ALL_DATA))
        assert err.value.result_minor == results.INTERNAL_ERROR
    finally:
        await stranger.close()
    assert harness.sim.core.open_sessions() == 0


async def test_use_id_refusal_is_a_result_error(harness: Harness) -> None:
    with pytest.raises(EidResultError) as err:
        await harness.client.start_session(EidRequest(required=frozenset()))
    assert err.value.result_minor == results.MISSING_ARGUMENT


# --- broken servers -------------------------------------------------------------------------------------


async def test_connection_refused_is_unavailable(gateway_key: KeyPair, server_key: KeyPair) -> None:
    client = Tr03130Client(f"http://127.0.0.1:{unused_port()}/eID", gateway_key, server_key.certificate, timeout=2)
    try:
        with pytest.raises(EidServerUnavailable):
            await client.start_session(EidRequest(required=ALL_DATA))
        with pytest.raises(EidServerUnavailable):
            await client.server_info()
    finally:
        await client.close()


@asynccontextmanager
async def _client_against(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    gateway_key: KeyPair,
    server_key: KeyPair,
    timeout: float = 2,
) -> AsyncIterator[Tr03130Client]:
    """A Tr03130Client whose eID-Server is ``handler`` on a loopback port; both closed afterwards."""
    app = web.Application()
    app.router.add_post("/eID", handler)
    server = await start_server(app)
    client = Tr03130Client(f"http://127.0.0.1:{server.port}/eID", gateway_key, server_key.certificate, timeout=timeout)
    try:
        yield client
    finally:
        await client.close()
        await server.close()


#: A session as useID left it, for getResult against a fake server.
SESSION = EidSession("ab" * 32, "https://x/paos", None, None)


async def test_slow_server_is_unavailable_and_use_id_not_retried(gateway_key: KeyPair, server_key: KeyPair) -> None:
    """The server never answers: the client's own timeout ends the call (no wall-clock bound on the machine's
    speed: the guard is 30 times the timeout), and useID is sent once."""
    calls = 0
    answer = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await answer.wait()
        return web.Response(text="late")

    async with _client_against(slow, gateway_key, server_key, timeout=0.3) as client:
        try:
            async with asyncio.timeout(9):
                with pytest.raises(EidServerUnavailable):
                    await client.start_session(EidRequest(required=ALL_DATA))
        finally:
            answer.set()
        assert calls == 1


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (200, "text/xml", b"<soapenv:Envelope", EidProtocolError),  # not well-formed
        (200, "text/xml", b"<html/>", EidProtocolError),  # not SOAP
        (200, "text/html", b"<html/>", EidProtocolError),
        (200, "text/xml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>', EidProtocolError),
        (
            500,
            "text/xml",
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
            b"<faultcode>s:Server</faultcode><faultstring>boom</faultstring></s:Fault></s:Body></s:Envelope>",
            EidProtocolError,
        ),
        (503, "text/plain", b"maintenance", EidServerUnavailable),
    ],
)
async def test_malformed_answers(
    gateway_key: KeyPair, server_key: KeyPair, status: int, content_type: str, body: bytes, expected: type
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    async with _client_against(handler, gateway_key, server_key) as client:
        with pytest.raises(expected):
            await client.fetch_result(SESSION, 1)


def _answer(key: KeyPair | None, personal: PersonalData) -> bytes:
    payload = build_get_result_response(GetResultResponse(Result(results.MAJOR_OK), personal_data=personal))
    env = soap_envelope(payload)
    return sign_envelope(env, key) if key is not None else to_bytes(env)


@pytest.mark.parametrize("who", ["rogue", "unsigned", "tampered"])
async def test_forged_or_unsigned_answers_refused(
    gateway_key: KeyPair, server_key: KeyPair, rogue_key: KeyPair, who: str
) -> None:
    async def handler(request: web.Request) -> web.Response:
        if who == "rogue":
            body = _answer(rogue_key, PersonalData(given_names="MALLORY"))
        elif who == "unsigned":
            body = _answer(None, PersonalData(given_names="MALLORY"))
        else:  # genuinely signed, then the name changed in transit
            body = _answer(server_key, PersonalData(given_names="ERIKA")).replace(b"ERIKA", b"MALLO")
        return web.Response(body=body, content_type="text/xml")

    async with _client_against(handler, gateway_key, server_key) as client:
        with pytest.raises(EidProtocolError):
            await client.fetch_result(SESSION, 1)


async def test_genuine_answer_from_fake_server_is_accepted(gateway_key: KeyPair, server_key: KeyPair) -> None:
    """Control for the test above: the same handler with the right key passes (so refusals are real)."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=_answer(server_key, PersonalData(given_names="ERIKA")), content_type="text/xml")

    async with _client_against(handler, gateway_key, server_key) as client:
        identity = await client.fetch_result(SESSION, 1)
        assert identity.given_names == "ERIKA"


async def test_psk_swapped_by_server_refused(gateway_key: KeyPair, server_key: KeyPair) -> None:
    """useIDResponse with a PSK other than the one sent must abort the flow."""
    origin = "http://127.0.0.1:1"
    sim = Simulator(SimulatorConfig(public_origin=origin, key=server_key, gateway_cert=gateway_key.certificate))

    async def handler(request: web.Request) -> web.Response:
        data = await request.read()
        tree = etree.fromstring(data)
        key_el = tree.find(".//{http://bsi.bund.de/eID/}PSK/{http://bsi.bund.de/eID/}Key")
        assert key_el is not None and key_el.text
        # Re-sign a request carrying another PSK key: the simulator then answers with that PSK.
        body = tree.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        assert body is not None
        req = parse_use_id_request(body[0])
        swapped = replace(req, psk=Psk(req.psk.id if req.psk else "x" * 16, "ff" * 32))
        resigned = sign_envelope(soap_envelope(build_use_id_request(swapped)), gateway_key)
        answer = sim.core.handle_soap(resigned, request.headers.get("SOAPAction"))
        return web.Response(status=answer.status, body=answer.body, content_type="text/xml")

    async with _client_against(handler, gateway_key, server_key) as client:
        with pytest.raises(EidProtocolError):
            await client.start_session(EidRequest(required=ALL_DATA))


async def test_signed_answer_of_the_wrong_kind_refused(gateway_key: KeyPair, server_key: KeyPair) -> None:
    """A genuine, signed getServerInfoResponse is not an answer to getResult."""

    async def handler(request: web.Request) -> web.Response:
        payload = build_get_server_info_response(GetServerInfoResponse("x", 1, 0))
        return web.Response(body=sign_envelope(soap_envelope(payload), server_key), content_type="text/xml")

    async with _client_against(handler, gateway_key, server_key) as client:
        with pytest.raises(EidProtocolError):
            await client.fetch_result(SESSION, 1)


async def test_replayed_old_answer_refused(gateway_key: KeyPair, server_key: KeyPair) -> None:
    """A genuine answer recorded an hour ago fails the signed Timestamp check."""

    old = sign_envelope(
        soap_envelope(
            build_get_result_response(GetResultResponse(Result(results.MAJOR_OK), PersonalData(given_names="ERIKA")))
        ),
        server_key,
        now=datetime.now(UTC) - timedelta(hours=1),
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=old, content_type="text/xml")

    async with _client_against(handler, gateway_key, server_key) as client:
        with pytest.raises(EidProtocolError):
            await client.fetch_result(SESSION, 1)


async def test_no_personal_data_in_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for card, kwargs in (("erika", {}), ("andre", {"pin": "999999"}), ("hans", {"cancel": True})):
        _, session, _ = await _sign_in(harness, EidRequest(required=ALL_DATA), identity=card, **kwargs)
        try:
            await harness.client.fetch_result(session, 1)
        except EidResultError:
            pass
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "getResult error" in text  # the backend does log; what it logs is checked below
    for value in (
        "ERIKA",
        "MUSTERMANN",
        "ANDRÉ",
        "HANS",
        "1964-08-12",
        "19640812",
        "12.08.1964",
        "KÖLN",
        "HEIDESTRASSE",
        stable_restricted_id("erika").id,
    ):
        assert value not in text
