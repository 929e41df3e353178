"""One eID session on the server side of PAOS: EAC1 -> EAC2 (TA) -> CA check -> Secure Messaging reads.

Sans-I/O: :class:`EacSession` takes parsed client messages and returns the next server message; when the
conversation ends, :attr:`EacSession.outcome` holds the TR-03130 getResult answer for the gateway. The
session never trusts what the client says about the card: the data come only through the Secure
Messaging channel keyed by Chip Authentication, whose token is verified against the chip key from
EF.CardSecurity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from eid_gateway.eid import results
from eid_gateway.eid.chat import ATTRIBUTE_RIGHTS
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    PERSONAL_DATA_FIELDS,
    GetResultResponse,
    Permission,
    RestrictedID,
    Result,
    Selection,
    UseIDRequest,
)
from eid_gateway.eidserver import datagroups
from eid_gateway.eidserver.cardsecurity import CardSecurityError, parse_card_security
from eid_gateway.eidserver.paos import (
    ClientMessage,
    ClientResult,
    Eac1Input,
    Eac1Output,
    Eac2Input,
    Eac2Output,
    ServerMessage,
    StartPaos,
    StartPaosResponse,
    TransmitInput,
    TransmitOutput,
)
from eid_gateway.eidserver.sm import SecureMessaging, SecureMessagingError
from eid_gateway.identity import TR03130_NAMES, Attribute
from tr03110 import crypto, oids, tlv
from tr03110.apdu import ApduError, CommandApdu, ResponseApdu
from tr03110.cvc import AccessRight, Chat, CvcError

log = logging.getLogger(__name__)

EID_AID: Final = bytes.fromhex("E80704007F00070302")
SW_VERIFY_FAILED: Final = 0x6300
SW_FILE_NOT_FOUND: Final = (0x6A82, 0x6A88)
_NAME_ATTRIBUTE: Final = {name: attr for attr, name in TR03130_NAMES.items()}
#: Operation name -> PersonalData field (the operations that are data, not checks).
_FIELDS: Final = PERSONAL_DATA_FIELDS
RI_KEY_ID: Final = 1
_CHECKS: Final = {"AgeVerification": oids.ID_DATE_OF_BIRTH, "PlaceVerification": oids.ID_COMMUNITY_ID}


class EacProtocolError(Exception):
    """The client or card broke the protocol; the session ends with an error result."""


@dataclass(frozen=True)
class TerminalCredentials:
    """The eID-Server's authorization: CV chain (DV, terminal), description, terminal key, RI sector."""

    dv_certificate: bytes
    terminal_certificate: bytes
    certificate_description: bytes
    terminal_key: ec.EllipticCurvePrivateKey
    chat: Chat
    sector_key: ec.EllipticCurvePrivateKey


def operation_right(name: str) -> AccessRight:
    return ATTRIBUTE_RIGHTS[_NAME_ATTRIBUTE[name]]


def requested_chats(request: UseIDRequest) -> tuple[Chat, Chat]:
    """(required, optional) CHAT from the useID selection: REQUIRED -> required, ALLOWED -> optional."""
    req = frozenset(operation_right(n) for n in OPERATION_NAMES if request.selection(n) is Selection.REQUIRED)
    opt = frozenset(operation_right(n) for n in OPERATION_NAMES if request.selection(n) is Selection.ALLOWED)
    return Chat.authentication_terminal(req), Chat.authentication_terminal(opt - req)


def missing_rights(request: UseIDRequest, terminal: Chat) -> tuple[str, ...]:
    """Operations asked for that the terminal certificate does not grant (useID#missingTerminalRights)."""
    return tuple(
        n
        for n in OPERATION_NAMES
        if request.selection(n) is not Selection.PROHIBITED and not terminal.grants(operation_right(n))
    )


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def auxiliary_data(request: UseIDRequest, today: date) -> bytes:
    """The 67 template: document validity always; age and community ID when the service asks."""
    items = [
        tlv.encode(0x73, oids.oid_der(oids.ID_DATE_OF_EXPIRY) + tlv.encode(0x53, today.strftime("%Y%m%d").encode()))
    ]
    if request.age is not None and request.selection("AgeVerification") is not Selection.PROHIBITED:
        born_by = _years_before(today, request.age)
        items.insert(
            0,
            tlv.encode(
                0x73, oids.oid_der(oids.ID_DATE_OF_BIRTH) + tlv.encode(0x53, born_by.strftime("%Y%m%d").encode())
            ),
        )
    if request.community_id is not None and request.selection("PlaceVerification") is not Selection.PROHIBITED:
        items.append(
            tlv.encode(0x73, oids.oid_der(oids.ID_COMMUNITY_ID) + tlv.encode(0x53, bytes.fromhex(request.community_id)))
        )
    return tlv.encode(0x67, b"".join(items))


@dataclass
class _Pending:
    """A command in flight: what it is for and the SSC it was protected with."""

    purpose: str  # "select", "dg:<n>", "verify:<oid>", "ri-mse", "ri"
    ssc: int
    offset: int = 0


@dataclass
class EacSession:
    """The server side of one PAOS conversation. Create at StartPAOS; feed every later client message."""

    request: UseIDRequest
    terminal: TerminalCredentials
    today: date
    state: str = "start"
    slot_handle: str | None = None
    outcome: GetResultResponse | None = None
    _aux: bytes = b""
    _required: Chat | None = None
    _optional: Chat | None = None
    _effective: Chat | None = None
    _id_picc: bytes = b""
    _ephemeral: ec.EllipticCurvePrivateKey | None = None
    _sm: SecureMessaging | None = None
    _pending: list[_Pending] = field(default_factory=list)
    _files: dict[int, bytes] = field(default_factory=dict)
    _absent: set[int] = field(default_factory=set)
    _checks: dict[str, bool] = field(default_factory=dict)
    _restricted_id: bytes | None = None

    @property
    def done(self) -> bool:
        return self.state == "done"

    # --- dispatch -----------------------------------------------------------------------------------------

    def handle(self, message: ClientMessage) -> ServerMessage:
        """The answer to one client message; afterwards :attr:`outcome` is set once :attr:`done`."""
        try:
            if self.state == "start" and isinstance(message, StartPaos):
                return self._start(message)
            if self.state == "eac1" and isinstance(message, Eac1Output):
                return self._eac1(message)
            if self.state == "eac2" and isinstance(message, (Eac2Output, Eac1Output)):
                return self._eac2(message)
            if self.state == "read" and isinstance(message, TransmitOutput):
                return self._read(message)
            raise EacProtocolError(f"unexpected {type(message).__name__} in state {self.state}")
        except (
            EacProtocolError,
            CardSecurityError,
            SecureMessagingError,
            crypto.EacCryptoError,
            ApduError,
            tlv.TlvError,
            datagroups.DataGroupError,
            CvcError,
        ) as exc:
            log.warning("eID session aborted in state %s: %s", self.state, type(exc).__name__)
            log.debug("eID session abort detail: %s", exc)
            return self._fail(
                results.INTERNAL_ERROR
                if not isinstance(exc, crypto.AuthenticationTokenMismatch)
                else results.INVALID_DOCUMENT
            )

    def _fail(self, minor: str, client: ClientResult | None = None) -> StartPaosResponse:
        self.state = "done"
        self.outcome = GetResultResponse(Result(results.MAJOR_ERROR, minor))
        return StartPaosResponse(client or ClientResult(results.MAJOR_ERROR, results.INTERNAL_ERROR))

    def _client_failed(self, result: ClientResult) -> StartPaosResponse:
        """The client reported an error (cancel, PIN, card): pass its minor through (TR-03130 has none)."""
        self.state = "done"
        self.outcome = GetResultResponse(Result(results.MAJOR_ERROR, result.minor or results.UNKNOWN_ERROR))
        return StartPaosResponse(ClientResult(results.MAJOR_ERROR, result.minor))

    # --- steps ---------------------------------------------------------------------------------------------

    def _start(self, msg: StartPaos) -> Eac1Input:
        self.slot_handle = msg.slot_handle
        self._required, self._optional = requested_chats(self.request)
        self._aux = auxiliary_data(self.request, self.today)
        self.state = "eac1"
        return Eac1Input(
            certificates=(self.terminal.dv_certificate, self.terminal.terminal_certificate),
            certificate_description=self.terminal.certificate_description,
            required_chat=self._required.encode(),
            optional_chat=self._optional.encode() if self._optional.mask else None,
            auxiliary_data=self._aux,
            transaction_info=self.request.transaction_info,
        )

    def _eac1(self, msg: Eac1Output) -> ServerMessage:
        if not msg.result.ok:
            return self._client_failed(msg.result)
        assert self._required is not None and self._optional is not None
        effective = (
            Chat.decode(msg.chat)
            if msg.chat
            else Chat.authentication_terminal(self._required.rights | self._optional.rights)
        )
        if not self._required.rights <= effective.rights:
            raise EacProtocolError("the effective CHAT lacks required rights")
        if not effective.rights <= (self._required.rights | self._optional.rights):
            raise EacProtocolError("the effective CHAT grants rights that were not asked for")
        if len(msg.challenge) != 8 or not msg.id_picc:
            raise EacProtocolError("EAC1 output lacks the challenge or ID_PICC")
        self._effective = effective
        self._id_picc = msg.id_picc
        self._ephemeral = crypto.generate_key()
        eph = crypto.point(self._ephemeral.public_key())
        signature = crypto.ta_sign(
            self.terminal.terminal_key, crypto.ta_data(msg.id_picc, msg.challenge, eph, self._aux)
        )
        self.state = "eac2"
        return Eac2Input(eph, signature)

    def _eac2(self, msg: Eac1Output | Eac2Output) -> ServerMessage:
        if not msg.result.ok:
            return self._client_failed(msg.result)
        if not isinstance(msg, Eac2Output):
            raise EacProtocolError("EAC1 output where EAC2 output was expected")
        assert self._ephemeral is not None
        security = parse_card_security(msg.ef_card_security)
        ca_info = security.ca_infos[0] if security.ca_infos else None
        protocol = ca_info.protocol if ca_info is not None else oids.ID_CA_ECDH_AES_CBC_CMAC_128
        if protocol not in crypto.CA_KEY_LENGTH:
            raise EacProtocolError("unsupported Chip Authentication protocol")
        chip_key = security.key(ca_info.key_id if ca_info is not None and len(security.keys) > 1 else None)
        if len(msg.nonce) != 8:
            raise EacProtocolError("CA nonce must be 8 octets")
        secret = crypto.ecdh_x(self._ephemeral, chip_key.point)
        length = crypto.CA_KEY_LENGTH[protocol]
        k_enc, k_mac = crypto.kdf_enc(secret, msg.nonce, length), crypto.kdf_mac(secret, msg.nonce, length)
        crypto.verify_authentication_token(
            k_mac, protocol, crypto.point(self._ephemeral.public_key()), msg.authentication_token
        )
        self._ephemeral = None  # forward secrecy: the session keys are all that is kept
        self._sm = SecureMessaging(k_enc, k_mac)
        self.state = "read"
        return self._first_batch()

    # --- reading ---------------------------------------------------------------------------------------------

    def _wanted(self, name: str) -> bool:
        assert self._effective is not None
        return self.request.selection(name) is not Selection.PROHIBITED and self._effective.grants(
            operation_right(name)
        )

    def _protect(self, apdu: CommandApdu, purpose: str, offset: int = 0) -> bytes:
        assert self._sm is not None
        wrapped = self._sm.wrap_command(apdu)
        self._pending.append(_Pending(purpose, self._sm.ssc, offset))
        self._sm.ssc += 1  # the response to this command takes the next counter value
        return wrapped.encode()

    def _first_batch(self) -> TransmitInput:
        apdus = [self._protect(CommandApdu(0x00, 0xA4, 0x04, 0x0C, EID_AID), "select")]
        for name, fld in _FIELDS.items():
            if self._wanted(name):
                n = datagroups.FIELD_DG[fld]
                apdus.append(self._protect(CommandApdu(0x00, 0xB0, 0x80 | n, 0x00, b"", 256), f"dg:{n}"))
        checks = [("AgeVerification", oids.ID_DATE_OF_BIRTH), ("PlaceVerification", oids.ID_COMMUNITY_ID)]
        for name, oid in checks:
            if self._wanted(name):
                apdus.append(self._protect(CommandApdu(0x80, 0x20, 0x80, 0x00, oids.oid_der(oid)), f"verify:{oid}"))
        apdus.append(
            self._protect(
                CommandApdu(0x80, 0x20, 0x80, 0x00, oids.oid_der(oids.ID_DATE_OF_EXPIRY)),
                f"verify:{oids.ID_DATE_OF_EXPIRY}",
            )
        )
        if self._wanted("RestrictedID"):
            mse = tlv.encode(0x80, oids.oid_value(oids.ID_RI_ECDH_SHA_256)) + tlv.encode(0x84, bytes([RI_KEY_ID]))
            apdus.append(self._protect(CommandApdu(0x00, 0x22, 0x41, 0xA4, mse), "ri-mse"))
            sector = crypto.point(self.terminal.sector_key.public_key())
            # A0: the sector public key as a public-key data object (protocol OID, 86 point).
            ga = tlv.encode(0x7C, tlv.encode(0xA0, oids.oid_der(oids.ID_RI_ECDH_SHA_256) + tlv.encode(0x86, sector)))
            apdus.append(self._protect(CommandApdu(0x00, 0x86, 0x00, 0x00, ga, 256), "ri"))
        return TransmitInput(tuple(apdus))

    def _read(self, msg: TransmitOutput) -> ServerMessage:
        if not msg.result.ok:
            return self._client_failed(msg.result)
        assert self._sm is not None
        if len(msg.apdus) != len(self._pending):
            raise EacProtocolError("TransmitResponse has a different number of APDUs than were sent")
        follow_up: list[tuple[int, int]] = []
        for pending, raw in zip(self._pending, msg.apdus, strict=True):
            self._sm.ssc = pending.ssc
            response = self._sm.unwrap_response(ResponseApdu.decode(raw))
            more = self._interpret(pending, response)
            if more is not None:
                follow_up.append(more)
        self._pending = []
        if follow_up:
            apdus: list[bytes] = []
            for n, off in follow_up:  # select the EF by its file ID, then read on from the offset
                apdus.append(self._protect(CommandApdu(0x00, 0xA4, 0x02, 0x0C, bytes([0x01, n])), "select:ef"))
                apdus.append(
                    self._protect(CommandApdu(0x00, 0xB0, (off >> 8) & 0x7F, off & 0xFF, b"", 256), f"dg:{n}", off)
                )
            # The SSC after the last response is where the next batch continues.
            return TransmitInput(tuple(apdus))
        return self._finish()

    def _interpret(self, pending: _Pending, response: ResponseApdu) -> tuple[int, int] | None:
        kind, _, arg = pending.purpose.partition(":")
        if kind == "select":
            if not response.ok:
                raise EacProtocolError(f"SELECT failed ({response.sw:04X})")
        elif kind == "dg":
            n = int(arg)
            if response.sw in SW_FILE_NOT_FOUND:
                self._absent.add(n)
                return None
            if response.sw not in (0x9000, 0x6282):
                raise EacProtocolError(f"reading DG{n} failed ({response.sw:04X})")
            data = self._files.get(n, b"") + response.data
            self._files[n] = data
            total = tlv.total_length(data)
            if total is not None and len(data) < total:
                if len(data) > 0x7FFF:
                    raise EacProtocolError(f"DG{n} is too large")
                return n, len(data)
        elif kind == "verify":
            if response.sw in SW_FILE_NOT_FOUND:
                return None  # nothing on the chip to compare with: NOTONCHIP
            if response.sw not in (0x9000, SW_VERIFY_FAILED):
                raise EacProtocolError(f"verification failed with status {response.sw:04X}")
            self._checks[arg] = response.sw == 0x9000
        elif kind == "ri-mse":
            if not response.ok:
                raise EacProtocolError(f"MSE:Set AT for RI failed ({response.sw:04X})")
        elif kind == "ri":
            if not response.ok:
                raise EacProtocolError(f"Restricted Identification failed ({response.sw:04X})")
            dyn = tlv.parse_single(response.data, 0x7C)
            rid = tlv.find(tlv.parse_all(dyn.value), 0x81)
            if rid is None or len(rid) != 32:
                raise EacProtocolError("Restricted Identification answer lacks the identifier")
            self._restricted_id = rid
        return None

    def _finish(self) -> StartPaosResponse:
        self.state = "done"
        self._sm = None
        if not self._checks.get(oids.ID_DATE_OF_EXPIRY, False):
            self.outcome = GetResultResponse(Result(results.MAJOR_ERROR, results.DOCUMENT_VALIDITY_FAILED))
            return StartPaosResponse(ClientResult(results.MAJOR_OK))
        groups = {n: d for n, d in self._files.items() if n not in self._absent}
        data = datagroups.personal_data(groups)
        ops: dict[str, Permission] = {}
        for name in OPERATION_NAMES:
            if not self._wanted(name):
                ops[name] = Permission.PROHIBITED
            elif name in _FIELDS and getattr(data, _FIELDS[name]) is None:
                ops[name] = Permission.NOTONCHIP
            elif name in _CHECKS and _CHECKS[name] not in self._checks:
                ops[name] = Permission.NOTONCHIP
            else:
                ops[name] = Permission.ALLOWED
        if self._restricted_id is not None:
            data = replace(data, restricted_id=RestrictedID(self._restricted_id.hex().upper()))
        age = self._checks.get(oids.ID_DATE_OF_BIRTH) if self._wanted("AgeVerification") else None
        place = self._checks.get(oids.ID_COMMUNITY_ID) if self._wanted("PlaceVerification") else None
        self.outcome = GetResultResponse.card_read(data, ops, age=age, place=place)
        return StartPaosResponse(ClientResult(results.MAJOR_OK))


__all__ = [
    "Attribute",
    "EacProtocolError",
    "EacSession",
    "TerminalCredentials",
    "auxiliary_data",
    "missing_rights",
    "requested_chats",
]
