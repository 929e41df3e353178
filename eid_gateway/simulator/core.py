"""The simulator's eID-Server, sans-I/O: TR-03130 SOAP in, signed SOAP out; and the simulated card step.

TEST FACILITY. It answers the same eID-Interface a real eID-Server does (useID, getResult with
RequestCounter checks, getServerInfo), verifies the caller's WS-Security signature against the one
configured gateway certificate, and signs every answer. The card step (what AusweisApp and the card do
between useID and getResult) is reduced to: choose a test identity, type a PIN, confirm or cancel.
"""

from __future__ import annotations

import logging
import secrets
import ssl
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Final

from cryptography import x509
from lxml import etree

from eid_gateway.eid import results
from eid_gateway.eid.errors import EidMessageError, TimestampError, WsSecurityError
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    SOAP_ACTIONS,
    GetResultRequest,
    GetResultResponse,
    GetServerInfoRequest,
    GetServerInfoResponse,
    Permission,
    PersonalData,
    Psk,
    Result,
    Selection,
    UseIDRequest,
    UseIDResponse,
    body_payload,
    build_fault,
    build_get_result_response,
    build_get_server_info_response,
    build_use_id_response,
    parse_request,
    soap_envelope,
    split_envelope,
)
from eid_gateway.eid.wssec import sign_envelope, verify_envelope
from eid_gateway.identity import PartialDate
from eid_gateway.simulator.identities import TestCard, default_identities
from saml.errors import XmlSecurityError
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes

log = logging.getLogger(__name__)

VERSION: Final = "eid-gateway eID-Server simulator 1.0 (TEST FACILITY)"
LOA_HIGH: Final = "http://eidas.europa.eu/LoA/high"


#: UseOperations name -> the PersonalData field it releases (the two checks read a field too).
_DATA_FIELDS: Final[dict[str, str]] = {
    "DocumentType": "document_type",
    "IssuingState": "issuing_state",
    "DateOfExpiry": "date_of_expiry",
    "GivenNames": "given_names",
    "FamilyNames": "family_names",
    "ArtisticName": "artistic_name",
    "AcademicTitle": "academic_title",
    "DateOfBirth": "date_of_birth",
    "PlaceOfBirth": "place_of_birth",
    "Nationality": "nationality",
    "BirthName": "birth_name",
    "PlaceOfResidence": "place_of_residence",
    "CommunityID": "community_id",
    "ResidencePermitI": "residence_permit_i",
    "RestrictedID": "restricted_id",
}
_SOURCE: Final[dict[str, str]] = {
    **_DATA_FIELDS,
    "AgeVerification": "date_of_birth",
    "PlaceVerification": "community_id",
}


class SimulatorRefused(RuntimeError):
    """The simulator must not run here (production mode)."""


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulator needs. ``public_origin`` is where browsers and AusweisApp reach it.

    ``tc_token_origins``: the only origins whose tcTokenURL the browser stand-in page will fetch (the
    page makes the server issue requests; an open list would be a server-side request forgery);
    empty means ``public_origin`` only.
    """

    public_origin: str
    key: KeyPair
    gateway_cert: x509.Certificate
    identities: Mapping[str, TestCard] = field(default_factory=default_identities)
    session_ttl: timedelta = timedelta(minutes=10)
    max_sessions: int = 1000
    production: bool = False
    tc_token_origins: frozenset[str] = frozenset()
    signature_algorithm: str | None = None
    client_ssl: ssl.SSLContext | None = None  # for the stand-in page fetching the tcTokenURL


@dataclass
class _Session:
    session_id: str
    psk: Psk
    request: UseIDRequest
    expires: datetime
    last_counter: int = 0
    outcome: GetResultResponse | None = None


@dataclass(frozen=True)
class SoapAnswer:
    """An HTTP answer for the eID endpoint: status (200, or 500 for a SOAP Fault) and the body."""

    status: int
    body: bytes


class CardStepError(Exception):
    """The card step cannot run (unknown session, already finished, unknown identity); ``status`` is HTTP."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error(minor: str) -> Result:
    return Result(results.MAJOR_ERROR, minor)


def _age_on(born: PartialDate, today: date) -> int:
    """Age in full years; unknown month/day count as the latest possible (the conservative answer)."""
    month = born.month or 12
    day = born.day or 31
    if born.day is None and born.month is not None:
        day = 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
    return today.year - born.year - ((today.month, today.day) < (month, day))


class SimulatedEidServer:
    """In-memory sessions with TTL and a cap; every method takes ``now`` so tests control time."""

    def __init__(self, config: SimulatorConfig, prefix: str = "/eid-sim"):
        if config.production:
            raise SimulatorRefused("the eID-Server simulator is a test facility and refuses production mode")
        self.config = config
        #: The TC Token's ServerAddress: where the (stand-in) eID-Client performs the card step.
        self.ecard_server_address = config.public_origin.rstrip("/") + prefix + "/paos"
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    # --- sessions ---------------------------------------------------------------------------------------

    def _prune(self, now: datetime) -> None:
        for sid in [s for s, sess in self._sessions.items() if sess.expires <= now]:
            del self._sessions[sid]

    def _by_psk_id(self, psk_id: str, now: datetime) -> _Session | None:
        self._prune(now)
        for sess in self._sessions.values():
            if secrets.compare_digest(sess.psk.id, psk_id):
                return sess
        return None

    def open_sessions(self) -> int:
        return len(self._sessions)

    def open_session(self, req: UseIDRequest, now: datetime | None = None) -> UseIDResponse:
        """useID without SOAP (the SAML interface receives the same request in its AuthnRequest)."""
        with self._lock:
            return self._use_id(req, now or datetime.now(timezone.utc))

    def take_result(self, session_id: str, now: datetime | None = None) -> GetResultResponse:
        """getResult without SOAP, with the next counter (the SAML interface's refresh)."""
        now = now or datetime.now(timezone.utc)
        with self._lock:
            sess = self._sessions.get(session_id)
            counter = sess.last_counter + 1 if sess is not None else 1
            return self._get_result(GetResultRequest(session_id, counter), now)

    # --- SOAP ---------------------------------------------------------------------------------------------

    def handle_soap(self, data: bytes, soap_action: str | None, now: datetime | None = None) -> SoapAnswer:
        """One request to ``/eID``: verify, dispatch, sign the answer."""
        now = now or datetime.now(timezone.utc)
        try:
            root = parse_xml(data)
            env = split_envelope(root)
            claimed = body_payload(env.body)  # unverified: used only to pick the response type
        except (XmlSecurityError, EidMessageError):
            return self._fault("soapenv:Client", "malformed SOAP request")
        operation = etree.QName(claimed).localname
        if operation not in SOAP_ACTIONS:
            return self._fault("soapenv:Client", "unknown operation")
        if soap_action is not None and soap_action.strip().strip('"') not in ("", SOAP_ACTIONS[operation]):
            return self._fault("soapenv:Client", "SOAPAction does not match the payload")
        try:
            body = verify_envelope(root, self.config.gateway_cert, now=now)
        except (WsSecurityError, TimestampError) as exc:
            log.warning("simulator refused a request signature: %s", type(exc).__name__)
            return self._error_answer(operation, results.INTERNAL_ERROR, now)
        try:
            request = parse_request(body_payload(body))
        except EidMessageError as exc:
            log.info("simulator: schema violation in %s: %s", operation, exc.code)
            return self._error_answer(operation, results.SCHEMA_VIOLATION, now)
        with self._lock:
            if isinstance(request, UseIDRequest):
                payload = build_use_id_response(self._use_id(request, now))
            elif isinstance(request, GetResultRequest):
                payload = build_get_result_response(self._get_result(request, now))
            else:
                payload = build_get_server_info_response(self._server_info(request))
        return SoapAnswer(200, self._sign(payload, now))

    def _sign(self, payload: etree._Element, now: datetime) -> bytes:
        return sign_envelope(
            soap_envelope(payload), self.config.key, now=now, algorithm=self.config.signature_algorithm
        )

    def _fault(self, code: str, reason: str) -> SoapAnswer:
        return SoapAnswer(500, to_bytes(build_fault(code, reason)))

    def _error_answer(self, operation: str, minor: str, now: datetime) -> SoapAnswer:
        if operation == "useIDRequest":
            return SoapAnswer(200, self._sign(build_use_id_response(UseIDResponse(_error(minor))), now))
        if operation == "getResultRequest":
            return SoapAnswer(200, self._sign(build_get_result_response(GetResultResponse(_error(minor))), now))
        return self._fault("soapenv:Server", "request refused")  # getServerInfoResponse has no Result

    def _use_id(self, req: UseIDRequest, now: datetime) -> UseIDResponse:
        asked = {name for name in OPERATION_NAMES if req.selection(name) is not Selection.PROHIBITED}
        if not asked:
            return UseIDResponse(_error(results.MISSING_ARGUMENT))
        if ("AgeVerification" in asked) != (req.age is not None) or (
            ("PlaceVerification" in asked) != (req.community_id is not None)
        ):
            return UseIDResponse(_error(results.MISSING_ARGUMENT))
        self._prune(now)
        if len(self._sessions) >= self.config.max_sessions:
            return UseIDResponse(_error(results.TOO_MANY_OPEN_SESSIONS))
        psk = req.psk or Psk(secrets.token_hex(16), secrets.token_hex(32))
        if any(secrets.compare_digest(s.psk.id, psk.id) for s in self._sessions.values()):
            return UseIDResponse(_error(results.INVALID_PSK))
        sid = secrets.token_hex(32)
        self._sessions[sid] = _Session(sid, psk, req, now + self.config.session_ttl)
        return UseIDResponse(
            Result(results.MAJOR_OK), session_id=sid, ecard_server_address=self.ecard_server_address, psk=psk
        )

    def _get_result(self, req: GetResultRequest, now: datetime) -> GetResultResponse:
        self._prune(now)
        sess = self._sessions.get(req.session_id)
        if sess is None:
            return GetResultResponse(_error(results.INVALID_SESSION))
        if req.request_counter <= sess.last_counter:
            del self._sessions[req.session_id]  # as poseidas does: a replayed counter ends the session
            return GetResultResponse(_error(results.INVALID_COUNTER))
        sess.last_counter = req.request_counter
        if sess.outcome is None:
            return GetResultResponse(_error(results.NO_RESULT_YET))
        del self._sessions[req.session_id]  # any final answer ends the session
        return sess.outcome

    def _server_info(self, _: GetServerInfoRequest) -> GetServerInfoResponse:
        return GetServerInfoResponse(VERSION, 2, 4, 0, {name: True for name in OPERATION_NAMES})

    # --- the card step --------------------------------------------------------------------------------

    def card_step(
        self,
        session_identifier: str,
        identity: str,
        pin: str,
        *,
        cancel: bool = False,
        deselect: Collection[str] = (),
        now: datetime | None = None,
    ) -> Result:
        """What AusweisApp + card would do for the session named in the TC Token; returns the outcome.

        REQUIRED attributes are always released, ALLOWED ones unless listed in ``deselect``.
        """
        now = now or datetime.now(timezone.utc)
        with self._lock:
            sess = self._by_psk_id(session_identifier, now)
            if sess is None:
                raise CardStepError(404, "unknown or expired session")
            if sess.outcome is not None:
                raise CardStepError(409, "the card step of this session is already done")
            card = self.config.identities.get(identity)
            if card is None:
                raise CardStepError(400, "unknown test identity")
            if cancel:
                minor: str | None = results.CANCELLATION_BY_USER
            elif card.forced_minor is not None:
                minor = card.forced_minor
            elif not secrets.compare_digest(pin.encode(), card.pin.encode()):
                minor = results.COMMUNICATION_ERROR
            elif card.data.date_of_expiry is not None and card.data.date_of_expiry < now.date().isoformat():
                minor = results.DOCUMENT_VALIDITY_FAILED
            else:
                minor = None
            if minor is not None:
                sess.outcome = GetResultResponse(_error(minor))
            else:
                sess.outcome = self._release(sess.request, card, frozenset(deselect), now.date())
            return sess.outcome.result

    def _release(self, req: UseIDRequest, card: TestCard, deselect: frozenset[str], today: date) -> GetResultResponse:
        released = {
            name
            for name in OPERATION_NAMES
            if req.selection(name) is Selection.REQUIRED
            or (req.selection(name) is Selection.ALLOWED and name not in deselect)
        }
        data = card.data
        ops: dict[str, Permission] = {}
        for name in OPERATION_NAMES:
            if name not in released:
                ops[name] = Permission.PROHIBITED
            elif getattr(data, _SOURCE[name]) is None:
                ops[name] = Permission.NOTONCHIP
            else:
                ops[name] = Permission.ALLOWED
        keep = {n for n, p in ops.items() if p is Permission.ALLOWED}
        personal = replace(
            PersonalData(), **{_SOURCE[n]: getattr(data, _SOURCE[n]) for n in keep if n in _DATA_FIELDS}
        )
        age: bool | None = None
        if "AgeVerification" in keep and req.age is not None and data.date_of_birth is not None:
            age = _age_on(data.date_of_birth, today) >= req.age
        place: bool | None = None
        if "PlaceVerification" in keep and req.community_id is not None and data.community_id is not None:
            place = data.community_id.startswith(req.community_id)
        return GetResultResponse(
            Result(results.MAJOR_OK),
            personal_data=personal,
            fulfils_age_verification=age,
            fulfils_place_verification=place,
            operations_allowed_by_user=ops,
            level_of_assurance=LOA_HIGH,
        )
