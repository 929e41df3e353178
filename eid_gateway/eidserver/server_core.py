"""The embedded eID-Server, sans-I/O: the TR-03130 eID-Interface for the gateway and PAOS for the client.

It answers useID / getResult / getServerInfo exactly like the simulator (signed SOAP, WS-Security
verified against the one configured gateway certificate, RequestCounter rules), but the result of a
session is produced by a real EAC conversation (:mod:`.eac`) with whatever eID-Client joins it with the
session's identifier. PAOS messages after StartPAOS are tied to their session by the random WS-Addressing
MessageID the server issued (``RelatesTo``), and the ``requestid`` header when the client sends one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509

from eid_gateway.eid import interface_server, results
from eid_gateway.eid.interface_server import InterfaceKeys, SoapAnswer, use_id_refusal
from eid_gateway.eid.interface_server import error_result as _error
from eid_gateway.eid.interface_sessions import InterfaceSession, SessionTable
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    GetResultRequest,
    GetResultResponse,
    GetServerInfoResponse,
    UseIDRequest,
    UseIDResponse,
)
from eid_gateway.eidserver import paos
from eid_gateway.eidserver.eac import EacSession, TerminalCredentials, missing_rights, operation_right
from saml.keys import KeyPair

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


#: An HTTP answer: status and body (content type is the adapter's business); PAOS answers use it too.
Answer = SoapAnswer


@dataclass
class _Session(InterfaceSession):
    eac: EacSession | None = None
    expected_message: str | None = None  # the MessageID our last PAOS message carried


class EmbeddedEidServer:
    """Sessions in memory with TTL and a cap; every entry point takes ``now`` so tests control time."""

    def __init__(self, config: EmbeddedServerConfig):
        self.config = config
        self._sessions = SessionTable(_Session, config.session_ttl, config.max_sessions, self._forget)
        self._by_message: dict[str, str] = {}
        self._lock = self._sessions.lock  # PAOS state (the MessageID index, EAC) lives next to the sessions

    def open_sessions(self) -> int:
        return len(self._sessions)

    def _forget(self, sess: _Session) -> None:
        """A dropped session's PAOS MessageID must no longer find it."""
        if sess.expected_message is not None:
            self._by_message.pop(sess.expected_message, None)

    # --- eID-Interface (TR-03130) ---------------------------------------------------------------------

    def handle_soap(self, data: bytes, soap_action: str | None, now: datetime | None = None) -> Answer:
        """One request to the eID-Interface: verify, dispatch, sign the answer (see :mod:`.interface_server`)."""
        keys = InterfaceKeys(self.config.key, self.config.gateway_cert, self.config.signature_algorithm)
        return interface_server.handle_soap(
            self, keys, data, soap_action, now or datetime.now(UTC), log, "eID-Interface"
        )

    def use_id(self, req: UseIDRequest, now: datetime | None = None) -> UseIDResponse:
        """useID, already verified: open a session whose PAOS endpoint is :attr:`config.paos_url`."""
        refusal = use_id_refusal(req)
        if refusal is None and missing_rights(req, self.config.terminal.chat):
            refusal = results.MISSING_TERMINAL_RIGHTS
        if refusal is not None:
            return UseIDResponse(_error(refusal))
        return self._sessions.open(req, now or datetime.now(UTC), self.config.paos_url)

    def get_result(self, req: GetResultRequest, now: datetime | None = None) -> GetResultResponse:
        """getResult, already verified (RequestCounter rules of TR-03130)."""
        return self._sessions.result(req, now or datetime.now(UTC))

    def server_info(self) -> GetServerInfoResponse:
        chat = self.config.terminal.chat
        return GetServerInfoResponse(VERSION, 2, 4, 0, {n: chat.grants(operation_right(n)) for n in OPERATION_NAMES})

    # --- PAOS (the eID-Client) ----------------------------------------------------------------------------

    def handle_paos(self, data: bytes, request_id: str | None = None, now: datetime | None = None) -> Answer:
        """One PAOS POST; the answer body is the next server message (or a 4xx for unusable input)."""
        now = now or datetime.now(UTC)
        try:
            message = paos.parse(data)
        except paos.PaosError as exc:
            log.info("PAOS: unusable client message: %s", exc)
            return Answer(400, b"")
        with self._lock:
            self._sessions.prune(now)
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
            body = paos.build(answer, relates_to=message.message_id, slot_handle=sess.eac.slot_handle, message_id=mid)
        return Answer(200, body)

    def _session_for(self, message: paos.ClientMessage, request_id: str | None) -> _Session | None:
        if isinstance(message, paos.StartPaos):
            if request_id is not None and request_id != message.session_identifier:
                return None
            sess = self._sessions.by_psk_id(message.session_identifier)
            return sess if sess is not None and sess.outcome is None else None
        relates = message.relates_to
        sid = self._by_message.get(relates) if relates else None
        sess = self._sessions.get(sid) if sid else None
        if sess is None or (request_id is not None and request_id != sess.psk.id):
            return None
        return sess
