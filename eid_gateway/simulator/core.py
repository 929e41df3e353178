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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509

from eid_gateway.eid import interface_server, results
from eid_gateway.eid.interface_server import InterfaceKeys, use_id_refusal
from eid_gateway.eid.interface_server import SoapAnswer as SoapAnswer  # public: handle_soap returns it
from eid_gateway.eid.interface_server import error_result as _error
from eid_gateway.eid.interface_sessions import InterfaceSession, SessionRules, SessionTable
from eid_gateway.eid.interface_sessions_sqlite import sqlite_session_rules
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    PERSONAL_DATA_FIELDS,
    GetResultRequest,
    GetResultResponse,
    GetServerInfoResponse,
    Permission,
    PersonalData,
    Result,
    Selection,
    UseIDRequest,
    UseIDResponse,
)
from eid_gateway.identity import PartialDate
from eid_gateway.simulator.identities import TestCard, default_identities
from saml.keys import KeyPair

log = logging.getLogger(__name__)

VERSION: Final = "eid-gateway eID-Server simulator 1.0 (TEST FACILITY)"


#: UseOperations name -> the PersonalData field it releases (the two checks read a field too).
_DATA_FIELDS: Final[dict[str, str]] = {**PERSONAL_DATA_FIELDS, "RestrictedID": "restricted_id"}
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
    #: A SQLite file holding the sessions, shared by every process of the server; None: in memory.
    sessions: Path | None = None


class CardStepError(Exception):
    """The card step cannot run (unknown session, already finished, unknown identity); ``status`` is HTTP."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _age_on(born: PartialDate, today: date) -> int:
    """Age in full years; unknown month/day count as the latest possible (the conservative answer)."""
    month = born.month or 12
    day = born.day or 31
    if born.day is None and born.month is not None:
        day = 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31
    return today.year - born.year - ((today.month, today.day) < (month, day))


class SimulatedEidServer:
    """Sessions with TTL and a cap, in memory or in ``config.sessions`` (a SQLite file several processes
    share); every method takes ``now`` so tests control time."""

    def __init__(self, config: SimulatorConfig, prefix: str = "/eid-sim"):
        if config.production:
            raise SimulatorRefused("the eID-Server simulator is a test facility and refuses production mode")
        self.config = config
        #: The TC Token's ServerAddress: where the (stand-in) eID-Client performs the card step.
        self.ecard_server_address = config.public_origin.rstrip("/") + prefix + "/paos"
        self._sessions: SessionRules
        if config.sessions is None:
            self._sessions = SessionTable(InterfaceSession, config.session_ttl, config.max_sessions)
        else:
            self._sessions = sqlite_session_rules(config.sessions, config.session_ttl, config.max_sessions)

    # --- sessions ---------------------------------------------------------------------------------------

    def open_sessions(self) -> int:
        return len(self._sessions)

    def open_session(self, req: UseIDRequest, now: datetime | None = None) -> UseIDResponse:
        """useID without SOAP (the SAML interface receives the same request in its AuthnRequest)."""
        return self.use_id(req, now)

    def use_id(self, req: UseIDRequest, now: datetime | None = None) -> UseIDResponse:
        """useID, already verified (the eID-Interface and the SAML interface both come here)."""
        refusal = use_id_refusal(req)
        if refusal is not None:
            return UseIDResponse(_error(refusal))
        return self._sessions.open(req, now or datetime.now(UTC), self.ecard_server_address)

    def get_result(self, req: GetResultRequest, now: datetime | None = None) -> GetResultResponse:
        """getResult, already verified (RequestCounter rules of TR-03130)."""
        return self._sessions.result(req, now or datetime.now(UTC))

    def take_result(self, session_id: str, now: datetime | None = None) -> GetResultResponse:
        """getResult without SOAP, with the next counter (the SAML interface's refresh)."""
        return self._sessions.result_next(session_id, now or datetime.now(UTC))

    def close(self) -> None:
        """Close the sessions file, if any (the sessions in it stay for the next start)."""
        self._sessions.close()

    # --- SOAP ---------------------------------------------------------------------------------------------

    def handle_soap(self, data: bytes, soap_action: str | None, now: datetime | None = None) -> SoapAnswer:
        """One request to ``/eID``: verify, dispatch, sign the answer (see :mod:`.interface_server`)."""
        keys = InterfaceKeys(self.config.key, self.config.gateway_cert, self.config.signature_algorithm)
        return interface_server.handle_soap(self, keys, data, soap_action, now or datetime.now(UTC), log, "simulator")

    def server_info(self) -> GetServerInfoResponse:
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

        REQUIRED attributes are always released, ALLOWED ones unless listed in ``deselect``. The
        outcome is decided without a lock and then set only if the session has none yet, so of two
        card steps racing for one session (in any process sharing the sessions) exactly one counts.
        """
        now = now or datetime.now(UTC)
        pending = self._sessions.card_step_of(session_identifier, now)
        if pending is None:
            raise CardStepError(404, "unknown or expired session")
        if pending.done:
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
            outcome = GetResultResponse(_error(minor))
        else:
            outcome = self._release(pending.request, card, frozenset(deselect), now.date())
        if not self._sessions.settle(pending.session_id, outcome, now):
            raise CardStepError(409, "the card step of this session is already done")
        return outcome.result

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
        personal = replace(PersonalData(), **{_SOURCE[n]: getattr(data, _SOURCE[n]) for n in keep if n in _DATA_FIELDS})
        age: bool | None = None
        if "AgeVerification" in keep and req.age is not None and data.date_of_birth is not None:
            age = _age_on(data.date_of_birth, today) >= req.age
        place: bool | None = None
        if "PlaceVerification" in keep and req.community_id is not None and data.community_id is not None:
            place = data.community_id.startswith(req.community_id)
        return GetResultResponse.card_read(personal, ops, age=age, place=place)
