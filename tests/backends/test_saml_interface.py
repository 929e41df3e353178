"""The SAML interface, sans-I/O core and the backend against the simulator's SAML interface: what is
refused (tampered query signatures, foreign ACS URLs, answers to another request, replays, unknown
attributes) and what round-trips exactly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from eid_gateway.backends.saml_backend import SamlEidServer
from eid_gateway.backends.saml_interface import (
    SamlInterfaceError,
    SessionRef,
    build_request_extension,
    parse_request_extension,
    result_attributes,
    result_from_attributes,
)
from eid_gateway.core.port import EidProtocolError, EidRequest, EidResultError, EidSession, FailureKind
from eid_gateway.eid.mapping import use_id_request
from eid_gateway.eid.messages import Selection, UseIDRequest
from eid_gateway.identity import Attribute, PartialDate, Place
from eid_gateway.simulator import Simulator, SimulatorConfig
from eid_gateway.simulator.saml_interface import SamlInterfaceConfig, SimulatorSamlInterface
from helpers.gateway import Servers
from helpers.ports import bound_socket
from saml.keys import KeyPair, generate_key_pair

from .harness import saml_encryption_key

REQUEST = EidRequest(
    required=frozenset(
        {Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.DATE_OF_BIRTH, Attribute.ADDRESS, Attribute.PSEUDONYM}
    ),
    optional=frozenset({Attribute.BIRTH_NAME}),
    minimum_age=18,
)


# --- the sans-I/O core ---------------------------------------------------------------------------------------


def test_request_extension_round_trip() -> None:
    use_id = use_id_request(REQUEST)
    parsed = parse_request_extension(build_request_extension(use_id))
    assert dict(parsed.operations) == dict(use_id.operations)
    assert parsed.operations["BirthName"] is Selection.ALLOWED
    assert parsed.age == 18 and parsed.operations["AgeVerification"] is Selection.REQUIRED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda xml: xml.replace(b'Name="GivenNames"', b'Name="ShoeSize"'), "unknown or repeated"),
        (lambda xml: xml.replace(b"<saml2:AttributeValue>18</saml2:AttributeValue>", b""), "needs one age"),
        (lambda xml: xml.replace(b'eid:RequiredAttribute="true"', b'eid:RequiredAttribute="yes"', 1), "true or false"),
        (lambda xml: xml.replace(b'Version="2"', b'Version="1"'), "version 2"),
    ],
)
def test_request_extension_refusals(change: object, message: str) -> None:
    from lxml import etree

    from saml.xml import parse_xml

    xml = etree.tostring(build_request_extension(use_id_request(REQUEST)))
    assert callable(change)
    with pytest.raises(SamlInterfaceError, match=message):
        parse_request_extension(parse_xml(change(xml)))


def _attributes_of(sim: Simulator, card: str, request: UseIDRequest) -> dict[str, list[str]]:
    opened = sim.core.open_session(request)
    assert opened.psk is not None and opened.session_id is not None
    sim.core.card_step(opened.psk.id, card, "123456")
    outcome = sim.core.take_result(opened.session_id)
    return {a.name: list(a.values) for a in result_attributes(outcome)}


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    key = generate_key_pair("ec-p256")
    return Simulator(SimulatorConfig(public_origin="http://127.0.0.1:1", key=key, gateway_cert=key.certificate))


def test_result_attributes_round_trip(simulator: Simulator) -> None:
    attrs = _attributes_of(simulator, "erika", use_id_request(REQUEST))
    assert attrs["DocumentValidity"] == ["valid"]
    assert attrs["GivenNames"] == ["ERIKA"] and attrs["DateOfBirth"] == ["19640812"]
    assert attrs["AgeVerification"] == ["true"]
    result = result_from_attributes(attrs)
    assert result.personal_data is not None
    assert result.personal_data.date_of_birth == PartialDate(1964, 8, 12)
    assert result.personal_data.place_of_residence == Place(
        street="HEIDESTRASSE 17", city="KÖLN", country="D", zip_code="51147"
    )
    assert result.fulfils_age_verification is True
    assert result.personal_data.restricted_id is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("DocumentValidity"), "DocumentValidity"),
        (lambda a: a.update(ShoeSize=["44"]), "unexpected attribute"),
        (lambda a: a.update(GivenNames=["A", "B"]), "exactly one value"),
        (lambda a: a.update(RestrictedID=["zz"]), "hex"),
        (lambda a: a.update(PlaceOfResidence=['{"city": 5}']), "place object"),
        (lambda a: a.update(PlaceOfResidence=['{"planet": "Mars"}']), "place object"),
        (lambda a: a.update(AgeVerification=["maybe"]), "true or false"),
        (lambda a: a.update(DateOfBirth=["1964-13-01"]), "not a date"),
        (lambda a: a.update(AttributeNotOnChip=["ShoeSize"]), "unknown attribute"),
    ],
)
def test_result_attribute_refusals(simulator: Simulator, change: object, message: str) -> None:
    attrs = _attributes_of(simulator, "erika", use_id_request(REQUEST))
    assert callable(change)
    change(attrs)
    with pytest.raises(SamlInterfaceError, match=message):
        result_from_attributes(attrs)


def test_session_reference() -> None:
    ref = SessionRef("A" * 32, "https://eid.example/refresh?s=x", "_abc")
    assert SessionRef.decode(ref.encode()) == ref
    for bad in ("nope", "saml1.!!!", "saml1." + "e30"):
        with pytest.raises(SamlInterfaceError):
            SessionRef.decode(bad)


# --- the backend against the simulator's SAML interface ------------------------------------------------------


@dataclass
class Env:
    sim: Simulator
    interface: SimulatorSamlInterface
    backend: SamlEidServer
    sp: KeyPair
    origin: str

    def backend_with(self, **changes: object) -> SamlEidServer:
        options: dict[str, object] = dict(
            sso_url=self.interface.sso_url,
            server_entity_id="urn:sim",
            server_cert=self.sim.config.key.certificate,
            encryption_cert=self.interface.config.encryption_key.certificate,
            sp_entity_id="urn:gateway",
            acs_url="http://gateway.example/eid/saml/acs",
            sp_key=self.sp,
            require_https=False,
        )
        options.update(changes)
        return SamlEidServer(**options)  # type: ignore[arg-type]


_SP: list[KeyPair] = []


@pytest.fixture
async def env(servers: Servers, tmp_path: Path) -> AsyncIterator[Env]:
    if not _SP:
        _SP.append(generate_key_pair("rsa-3072", "gateway SP"))
    sock = bound_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    signing = generate_key_pair("ec-p256", "simulator")
    sim = Simulator(SimulatorConfig(public_origin=origin, key=signing, gateway_cert=signing.certificate))
    interface = SimulatorSamlInterface(
        sim,
        SamlInterfaceConfig(
            entity_id="urn:sim",
            signing_key=signing,
            encryption_key=saml_encryption_key(),
            sp_entity_id="urn:gateway",
            sp_cert=_SP[0].certificate,
            acs_url="http://gateway.example/eid/saml/acs",
        ),
    )
    app = web.Application()
    app.add_routes(sim.routes() + interface.routes())
    await servers.serve(app, sock)
    environment = Env(
        sim,
        interface,
        SamlEidServer(
            sso_url=interface.sso_url,
            server_entity_id="urn:sim",
            server_cert=signing.certificate,
            encryption_cert=saml_encryption_key().certificate,
            sp_entity_id="urn:gateway",
            acs_url="http://gateway.example/eid/saml/acs",
            sp_key=_SP[0],
            require_https=False,
        ),
        _SP[0],
        origin,
    )
    yield environment
    await environment.backend.close()


async def _session(env: Env, card: str = "erika", **step: object) -> EidSession:
    session = await env.backend.start_session(REQUEST)
    assert session.psk_id is not None
    env.sim.core.card_step(session.psk_id, card, "123456", **step)  # type: ignore[arg-type]
    return session


async def test_identity_and_one_time_refresh(env: Env) -> None:
    session = await _session(env)
    identity = await env.backend.fetch_result(session, 1)
    assert identity.family_names == "MUSTERMANN" and identity.age_verification is True
    assert identity.address is not None and identity.address.city == "KÖLN"
    with pytest.raises(EidProtocolError, match="HTTP 404"):  # the refresh is consumed on the server
        await env.backend.fetch_result(session, 2)


async def test_error_status_carries_the_result_minor(env: Env) -> None:
    session = await _session(env, cancel=True)
    with pytest.raises(EidResultError) as caught:
        await env.backend.fetch_result(session, 1)
    assert caught.value.kind is FailureKind.CANCELLED
    session = await _session(env, "blocked")
    with pytest.raises(EidResultError) as caught:
        await env.backend.fetch_result(session, 1)
    assert caught.value.kind is FailureKind.CARD_BLOCKED


async def test_answer_to_another_request_is_refused(env: Env) -> None:
    first, second = await _session(env), await _session(env)
    a, b = SessionRef.decode(first.session_id), SessionRef.decode(second.session_id)
    crossed = EidSession(
        SessionRef(a.session_identifier, a.refresh_address, b.request_id).encode(),
        first.server_address,
        first.psk_id,
        None,
    )
    with pytest.raises(EidProtocolError, match="in_response_to"):
        await env.backend.fetch_result(crossed, 1)


async def test_untrusted_signer_and_foreign_acs_are_refused(env: Env) -> None:
    session = await _session(env)
    stranger = env.backend_with(server_cert=generate_key_pair("ec-p256").certificate)
    try:
        with pytest.raises(EidProtocolError, match="binding_signature_invalid"):
            await stranger.fetch_result(session, 1)
    finally:
        await stranger.close()
    session = await _session(env)
    elsewhere = env.backend_with(acs_url="http://gateway.example/other/acs")
    try:
        with pytest.raises(EidProtocolError, match="other than our ACS"):
            await elsewhere.fetch_result(session, 1)
    finally:
        await elsewhere.close()


async def test_unsigned_or_foreign_authn_request_is_refused(env: Env) -> None:
    other = env.backend_with(sp_key=generate_key_pair("rsa-3072", "not the gateway"))
    try:
        with pytest.raises(EidProtocolError, match="HTTP 400"):
            await other.start_session(REQUEST)
    finally:
        await other.close()
    assert env.sim.core.open_sessions() == 0
