"""The embedded eID-Server, sans-I/O: the TR-03130 eID-Interface for the gateway and PAOS for the client.

It answers useID / getResult / getServerInfo exactly like the simulator (signed SOAP, WS-Security
verified against the one configured gateway certificate, RequestCounter rules), but the result of a
session is produced by a real EAC conversation (:mod:`.eac`) with whatever eID-Client joins it with the
session's identifier. PAOS messages after StartPAOS are tied to their session by the random WS-Addressing
MessageID the server issued (``RelatesTo``), and the ``requestid`` header when the client sends one.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
from eid_gateway.eidserver import paos
from eid_gateway.eidserver.eac import EacSession, TerminalCredentials, missing_rights, operation_right
from saml.errors import XmlSecurityError
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes

log = logging.getLogger(__name__)

VERSION: Final = "eid-gateway embedded eID-Server (PAOS, EAC) 1.0"


@dataclass(frozen=True)
class EmbeddedServerConfig:
    """``paos_url``: the TC Token's ServerAddress (https); ``key``: signs eID-Interface answers."""

    paos_url: str
    key: KeyPair
    gateway_cert: x509.Certificate
    terminal: TerminalCredentials
    session_ttl: timedelta = timedelta(minutes=10)
    max_sessions: int = 1000
    signature_algorithm: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status and body (content type is the adapter's business)."""

    status: int
    body: bytes


@dataclass
class _Session:
    session_id: str
    psk: Psk
    request: UseIDRequest
    expires: datetime
    last_counter: int = 0
    eac: EacSession | None = None
    outcome: GetResultResponse | None = None
    expected_message: str | None = None  # the MessageID our last PAOS message carried


def _error(minor: str) -> Result:
    return Result(results.MAJOR_ERROR, minor)


class EmbeddedEidServer:
    """Sessions in memory with TTL and a cap; every entry point takes ``now`` so tests control time."""

    def __init__(self, config: EmbeddedServerConfig):
        self.config = config
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._by_psk: dict[str, str] = {}
        self._by_message: dict[str, str] = {}
        self._lock = threading.RLock()

    def open_sessions(self) -> int:
        return len(self._sessions)

    def _prune(self, now: datetime) -> None:
        for sid in [s for s, sess in self._sessions.items() if sess.expires <= now]:
            self._drop(sid)

    def _drop(self, sid: str) -> None:
        sess = self._sessions.pop(sid, None)
        if sess is not None:
            self._by_psk.pop(sess.psk.id, None)
            if sess.expected_message is not None:
                self._by_message.pop(sess.expected_message, None)

    # --- eID-Interface (TR-03130) ---------------------------------------------------------------------

    def handle_soap(self, data: bytes, soap_action: str | None, now: datetime | None = None) -> Answer:
        now = now or datetime.now(timezone.utc)
        try:
            root = parse_xml(data)
            env = split_envelope(root)
            claimed = body_payload(env.body)
        except (XmlSecurityError, EidMessageError):
            return Answer(500, to_bytes(build_fault("soapenv:Client", "malformed SOAP request")))
        operation = etree.QName(claimed).localname
        if operation not in SOAP_ACTIONS:
            return Answer(500, to_bytes(build_fault("soapenv:Client", "unknown operation")))
        if soap_action is not None and soap_action.strip().strip('"') not in ("", SOAP_ACTIONS[operation]):
            return Answer(500, to_bytes(build_fault("soapenv:Client", "SOAPAction does not match the payload")))
        try:
            body = verify_envelope(root, self.config.gateway_cert, now=now)
        except (WsSecurityError, TimestampError) as exc:
            log.warning("eID-Interface refused a request signature: %s", type(exc).__name__)
            return self._error_answer(operation, results.INTERNAL_ERROR, now)
        try:
            request = parse_request(body_payload(body))
        except EidMessageError as exc:
            log.info("eID-Interface schema violation in %s: %s", operation, exc.code)
            return self._error_answer(operation, results.SCHEMA_VIOLATION, now)
        with self._lock:
            if isinstance(request, UseIDRequest):
                payload = build_use_id_response(self.use_id(request, now))
            elif isinstance(request, GetResultRequest):
                payload = build_get_result_response(self.get_result(request, now))
            else:
                payload = build_get_server_info_response(self._server_info(request))
        return Answer(200, self._sign(payload, now))

    def _sign(self, payload: etree._Element, now: datetime) -> bytes:
        return sign_envelope(soap_envelope(payload), self.config.key, now=now,
                             algorithm=self.config.signature_algorithm)

    def _error_answer(self, operation: str, minor: str, now: datetime) -> Answer:
        if operation == "useIDRequest":
            return Answer(200, self._sign(build_use_id_response(UseIDResponse(_error(minor))), now))
        if operation == "getResultRequest":
            return Answer(200, self._sign(build_get_result_response(GetResultResponse(_error(minor))), now))
        return Answer(500, to_bytes(build_fault("soapenv:Server", "request refused")))

    def use_id(self, req: UseIDRequest, now: datetime | None = None) -> UseIDResponse:
        """useID, already verified: open a session whose PAOS endpoint is :attr:`config.paos_url`."""
        with self._lock:
            return self._use_id(req, now or datetime.now(timezone.utc))

    def get_result(self, req: GetResultRequest, now: datetime | None = None) -> GetResultResponse:
        """getResult, already verified (RequestCounter rules of TR-03130)."""
        with self._lock:
            return self._get_result(req, now or datetime.now(timezone.utc))

    def _use_id(self, req: UseIDRequest, now: datetime) -> UseIDResponse:
        asked = {n for n in OPERATION_NAMES if req.selection(n) is not Selection.PROHIBITED}
        if not asked:
            return UseIDResponse(_error(results.MISSING_ARGUMENT))
        if ("AgeVerification" in asked) != (req.age is not None) or (
            ("PlaceVerification" in asked) != (req.community_id is not None)
        ):
            return UseIDResponse(_error(results.MISSING_ARGUMENT))
        if missing_rights(req, self.config.terminal.chat):
            return UseIDResponse(_error(results.MISSING_TERMINAL_RIGHTS))
        self._prune(now)
        if len(self._sessions) >= self.config.max_sessions:
            return UseIDResponse(_error(results.TOO_MANY_OPEN_SESSIONS))
        psk = req.psk or Psk(secrets.token_hex(16), secrets.token_hex(32))
        if psk.id in self._by_psk:
            return UseIDResponse(_error(results.INVALID_PSK))
        sid = secrets.token_hex(32)
        self._sessions[sid] = _Session(sid, psk, req, now + self.config.session_ttl)
        self._by_psk[psk.id] = sid
        return UseIDResponse(Result(results.MAJOR_OK), session_id=sid,
                             ecard_server_address=self.config.paos_url, psk=psk)

    def _get_result(self, req: GetResultRequest, now: datetime) -> GetResultResponse:
        self._prune(now)
        sess = self._sessions.get(req.session_id)
        if sess is None:
            return GetResultResponse(_error(results.INVALID_SESSION))
        if req.request_counter <= sess.last_counter:
            self._drop(req.session_id)
            return GetResultResponse(_error(results.INVALID_COUNTER))
        sess.last_counter = req.request_counter
        if sess.outcome is None:
            return GetResultResponse(_error(results.NO_RESULT_YET))
        self._drop(req.session_id)
        return sess.outcome

    def _server_info(self, _: GetServerInfoRequest) -> GetServerInfoResponse:
        chat = self.config.terminal.chat
        return GetServerInfoResponse(VERSION, 2, 4, 0,
                                     {n: chat.grants(operation_right(n)) for n in OPERATION_NAMES})

    # --- PAOS (the eID-Client) ----------------------------------------------------------------------------

    def handle_paos(self, data: bytes, request_id: str | None = None, now: datetime | None = None) -> Answer:
        """One PAOS POST; the answer body is the next server message (or a 4xx for unusable input)."""
        now = now or datetime.now(timezone.utc)
        try:
            message = paos.parse(data)
        except paos.PaosError as exc:
            log.info("PAOS: unusable client message: %s", exc)
            return Answer(400, b"")
        with self._lock:
            self._prune(now)
            sess = self._session_for(message, request_id)
            if sess is None:
                log.info("PAOS: message for no open session refused")
                return Answer(404, b"")
            if sess.eac is None:
                if not isinstance(message, paos.StartPaos):
                    return Answer(400, b"")
                sess.eac = EacSession(sess.request, self.config.terminal, now.date())
            elif isinstance(message, paos.StartPaos):
                return Answer(409, b"")  # a session is joined once
            answer = sess.eac.handle(message)
            if sess.expected_message is not None:
                self._by_message.pop(sess.expected_message, None)
            mid = f"urn:uuid:{uuid.uuid4()}"
            if sess.eac.done:
                sess.outcome = sess.eac.outcome
                sess.expected_message = None
            else:
                sess.expected_message = mid
                self._by_message[mid] = sess.session_id
            body = paos.build(answer, relates_to=message.message_id, slot_handle=sess.eac.slot_handle,
                              message_id=mid)
        return Answer(200, body)

    def _session_for(self, message: paos.ClientMessage, request_id: str | None) -> _Session | None:
        if isinstance(message, paos.StartPaos):
            sid = self._by_psk.get(message.session_identifier)
            if sid is None or (request_id is not None and request_id != message.session_identifier):
                return None
            sess = self._sessions.get(sid)
            return sess if sess is not None and sess.outcome is None else None
        relates = _relates_to(message)
        sid = self._by_message.get(relates) if relates else None
        sess = self._sessions.get(sid) if sid else None
        if sess is None or (request_id is not None and request_id != sess.psk.id):
            return None
        return sess


def _relates_to(message: paos.ClientMessage) -> str | None:
    return getattr(message, "relates_to", None)
