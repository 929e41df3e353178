"""The PAOS/EAC server core end to end against the card and client emulators (no AusweisApp)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from eid_gateway.eid import results
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    GetResultRequest,
    GetResultResponse,
    Permission,
    Selection,
    UseIDRequest,
)
from eid_gateway.eidserver import paos
from eid_gateway.eidserver.eac import auxiliary_data, requested_chats
from eid_gateway.eidserver.emulator import ClientEmulator, EmulatedCard, card_files
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig
from eid_gateway.eidserver.testpki import TestPki
from eid_gateway.simulator.identities import default_identities
from saml.keys import KeyPair
from tr03110 import crypto
from tr03110.cvc import AccessRight

from .conftest import all_required, card_for, run_session


def _result(server: EmbeddedEidServer, sid: str, counter: int = 1) -> GetResultResponse:
    return server.get_result(GetResultRequest(sid, counter))


def test_erika_all_attributes(server: EmbeddedEidServer, pki: TestPki) -> None:
    sid = run_session(server, all_required(), card_for(pki))
    r = _result(server, sid)
    assert r.result.ok
    pd = r.personal_data
    assert pd is not None
    assert (pd.given_names, pd.family_names, pd.birth_name) == ("ERIKA", "MUSTERMANN", "GABLER")
    assert pd.date_of_expiry == "2029-10-31" and pd.community_id == "02760503150000"
    assert pd.place_of_residence is not None and pd.place_of_residence.city == "KÖLN"
    assert pd.place_of_birth is not None and pd.place_of_birth.freetext == "BERLIN"
    assert r.fulfils_age_verification is True and r.fulfils_place_verification is True
    assert pd.restricted_id is not None and len(pd.restricted_id.id) == 64
    ops = r.operations_allowed_by_user
    assert ops is not None and ops["GivenNames"] is Permission.ALLOWED
    assert ops["ArtisticName"] is Permission.NOTONCHIP and ops["ResidencePermitI"] is Permission.NOTONCHIP
    assert r.level_of_assurance == "http://eidas.europa.eu/LoA/high"


def test_only_what_the_chat_allows_is_read(server: EmbeddedEidServer, pki: TestPki) -> None:
    ops = {n: Selection.PROHIBITED for n in OPERATION_NAMES}
    ops.update(GivenNames=Selection.REQUIRED, FamilyNames=Selection.ALLOWED, DateOfBirth=Selection.ALLOWED)
    card = card_for(pki)
    # the citizen switches off the optional date of birth (CHAT bit of DG8)
    sid = run_session(server, UseIDRequest(ops), card, deselect=frozenset({int(AccessRight.read(8))}))
    r = _result(server, sid)
    assert r.personal_data is not None
    assert r.personal_data.given_names == "ERIKA" and r.personal_data.family_names == "MUSTERMANN"
    assert r.personal_data.date_of_birth is None and r.personal_data.place_of_residence is None
    assert r.operations_allowed_by_user is not None
    assert r.operations_allowed_by_user["DateOfBirth"] is Permission.PROHIBITED
    assert r.personal_data.restricted_id is None


def test_minor_and_other_community(server: EmbeddedEidServer, pki: TestPki) -> None:
    minor = default_identities()["minor"].data
    ops = {n: Selection.PROHIBITED for n in OPERATION_NAMES}
    ops.update(AgeVerification=Selection.REQUIRED, PlaceVerification=Selection.REQUIRED)
    sid = run_session(server, UseIDRequest(ops, age=18, community_id="099999"), card_for(pki, data=minor))
    r = _result(server, sid)
    assert r.result.ok
    assert r.fulfils_age_verification is False and r.fulfils_place_verification is False
    assert r.personal_data is not None and r.personal_data.date_of_birth is None  # never read


def test_expired_document_is_an_error_result(server: EmbeddedEidServer, pki: TestPki) -> None:
    data = replace(default_identities()["erika"].data, date_of_expiry="2020-01-31")
    sid = run_session(server, all_required(), card_for(pki, data=data))
    r = _result(server, sid)
    assert not r.result.ok and r.result.minor == results.DOCUMENT_VALIDITY_FAILED


def test_cancel_is_passed_through(server: EmbeddedEidServer, pki: TestPki) -> None:
    sid = run_session(server, all_required(), card_for(pki), cancel=True)
    r = _result(server, sid)
    assert not r.result.ok and r.result.minor == results.CANCELLATION_BY_USER


def test_restricted_id_is_per_sector_and_stable(server: EmbeddedEidServer, pki: TestPki, gateway_key: KeyPair) -> None:
    ops = {n: Selection.PROHIBITED for n in OPERATION_NAMES}
    ops["RestrictedID"] = Selection.REQUIRED

    def rid(srv: EmbeddedEidServer, name: str) -> str:
        r = _result(srv, run_session(srv, UseIDRequest(ops), card_for(pki, name)))
        assert r.personal_data is not None and r.personal_data.restricted_id is not None
        return r.personal_data.restricted_id.id

    other_sector = EmbeddedEidServer(
        EmbeddedServerConfig("https://x/paos", gateway_key, gateway_key.certificate, pki.credentials(b"t" * 32))
    )
    assert rid(server, "erika") == rid(server, "erika")
    assert rid(server, "erika") != rid(other_sector, "erika")
    # the emulator's RI keys are per card model, as in AusweisApp; the data files differ per identity
    sector = crypto.point(pki.credentials(b"s" * 32).sector_key.public_key())
    from eid_gateway.eidserver.emulator import RI_PRIVATE

    expected = crypto.restricted_id(crypto.private_key_from_scalar(RI_PRIVATE[1]), sector).hex().upper()
    assert rid(server, "erika") == expected


def test_wrong_terminal_key_fails_terminal_authentication(server: EmbeddedEidServer, pki: TestPki) -> None:
    bad = replace(server.config.terminal, terminal_key=crypto.generate_key())
    srv = EmbeddedEidServer(replace(server.config, terminal=bad))
    sid = run_session(srv, all_required(), card_for(pki))
    r = _result(srv, sid)
    assert not r.result.ok and r.result.minor == results.UNKNOWN_ERROR


def test_forged_chip_authentication_token_is_refused(server: EmbeddedEidServer, pki: TestPki) -> None:
    resp = server.use_id(all_required())
    assert resp.psk is not None and resp.session_id is not None
    emu = ClientEmulator(card_for(pki), resp.psk.id)
    body = emu.start()
    eac1 = server.handle_paos(body)
    eac2 = server.handle_paos(emu.answer(eac1.body) or b"")
    answer = (emu.answer(eac2.body) or b"").decode()
    start = answer.index("<iso:AuthenticationToken>") + len("<iso:AuthenticationToken>")
    forged = answer[:start] + "0000000000000000" + answer[start + 16 :]
    final = server.handle_paos(forged.encode())
    assert b"StartPAOSResponse" in final.body and b"resultmajor#error" in final.body
    r = _result(server, resp.session_id)
    assert r.result.minor == results.INVALID_DOCUMENT


def test_card_security_of_another_chip_is_refused(server: EmbeddedEidServer, pki: TestPki) -> None:
    """A CardSecurity whose CA key is not the chip's: the token cannot verify."""
    import eid_gateway.eidserver.emulator as em

    card = card_for(pki)
    other = crypto.generate_key()
    original = em.CA_PRIVATE
    try:
        em.CA_PRIVATE = other.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[misc]
        foreign = em.card_security()
    finally:
        em.CA_PRIVATE = original  # type: ignore[misc]
    card.files = [f if f.short_id != 0x1D else replace(f, content=foreign) for f in card.files]
    sid = run_session(server, all_required(), card)
    assert _result(server, sid).result.minor == results.INVALID_DOCUMENT


def test_sessions_and_counters(server: EmbeddedEidServer, pki: TestPki) -> None:
    resp = server.use_id(all_required())
    assert resp.session_id is not None
    assert _result(server, resp.session_id, 1).result.minor == results.NO_RESULT_YET
    assert _result(server, resp.session_id, 1).result.minor == results.INVALID_COUNTER
    assert _result(server, resp.session_id, 2).result.minor == results.INVALID_SESSION
    # PAOS for an unknown session, a second StartPAOS, garbage
    emu = ClientEmulator(card_for(pki), "no-such-session-id")
    assert server.handle_paos(emu.start()).status == 404
    resp2 = server.use_id(all_required())
    assert resp2.psk is not None
    emu2 = ClientEmulator(card_for(pki), resp2.psk.id)
    assert server.handle_paos(emu2.start()).status == 200
    assert server.handle_paos(emu2.start()).status in (404, 409)
    assert server.handle_paos(b"<not-soap/>").status == 400
    assert server.handle_paos(emu2.start(), request_id="other").status == 404


def test_session_expiry(server: EmbeddedEidServer) -> None:
    now = datetime.now(UTC)
    resp = server.use_id(all_required(), now)
    assert resp.session_id is not None
    later = now + timedelta(minutes=11)
    assert server.get_result(GetResultRequest(resp.session_id, 1), later).result.minor == results.INVALID_SESSION


def test_use_id_checks(server: EmbeddedEidServer, pki: TestPki, gateway_key: KeyPair) -> None:
    none = UseIDRequest({n: Selection.PROHIBITED for n in OPERATION_NAMES})
    assert server.use_id(none).result.minor == results.MISSING_ARGUMENT
    ops = {n: Selection.PROHIBITED for n in OPERATION_NAMES}
    ops["AgeVerification"] = Selection.REQUIRED
    assert server.use_id(UseIDRequest(ops)).result.minor == results.MISSING_ARGUMENT
    from tr03110.cvc import Chat

    narrow = replace(server.config.terminal, chat=Chat.authentication_terminal({AccessRight.read(4)}))
    srv = EmbeddedEidServer(replace(server.config, terminal=narrow))
    assert srv.use_id(all_required()).result.minor == results.MISSING_TERMINAL_RIGHTS


def test_chats_and_auxiliary_data() -> None:
    from datetime import date

    req = all_required()
    required, optional = requested_chats(req)
    assert required.grants(AccessRight.read(4)) and required.grants(AccessRight.RESTRICTED_IDENTIFICATION)
    assert optional.mask == 0
    aux = auxiliary_data(req, date(2026, 11, 25))
    assert aux.startswith(b"\x67")
    assert b"20081125" in aux and b"20261125" in aux and bytes.fromhex("0276") in aux


def test_paos_messages_from_the_server_are_well_formed(server: EmbeddedEidServer, pki: TestPki) -> None:
    resp = server.use_id(all_required(transaction_info="Antrag 42"))
    assert resp.psk is not None
    emu = ClientEmulator(card_for(pki), resp.psk.id)
    start = emu.start()
    eac1 = server.handle_paos(start)
    text = eac1.body.decode()
    assert "iso:EAC1InputType" in text and "<iso:RequiredCHAT>7F4C" in text
    assert "<iso:TransactionInfo>Antrag 42</iso:TransactionInfo>" in text
    assert "urn:uuid:client-1" in text  # RelatesTo the client's MessageID
    assert text.count("<iso:Certificate>") == 2


@pytest.mark.parametrize("name", ["andre", "hans", "permit", "doctor", "abroad"])
def test_other_identities(server: EmbeddedEidServer, pki: TestPki, name: str) -> None:
    data = default_identities()[name].data
    sid = run_session(server, all_required(), EmulatedCard(card_files(data)))
    r = _result(server, sid)
    assert r.result.ok and r.personal_data is not None
    expected = replace(data, restricted_id=None)
    got = replace(r.personal_data, restricted_id=None)
    assert got == expected


def test_parse_client_messages_strictly() -> None:
    with pytest.raises(paos.PaosError, match="XML"):
        paos.parse(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    with pytest.raises(paos.PaosError, match="SOAP"):
        paos.parse(b"<x/>")
    env = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        b'<TransmitResponse xmlns="urn:iso:std:iso-iec:24727:tech:schema"><OutputAPDU>9000</OutputAPDU>'
        b"</TransmitResponse></s:Body></s:Envelope>"
    )
    with pytest.raises(paos.PaosError, match="Result"):
        paos.parse(env)
    bad_hex = env.replace(
        b"<OutputAPDU>9000",
        b'<Result xmlns="urn:oasis:names:tc:dss:1.0:core:schema">'
        b"<ResultMajor>http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok</ResultMajor>"
        b"</Result><OutputAPDU>90G0",
    )
    with pytest.raises(paos.PaosError, match="hexadecimal"):
        paos.parse(bad_hex)
