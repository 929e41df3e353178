"""The ``EidServer`` port: what the gateway needs from any eID-Server (TR-03130, SAML, simulator).

The flow code above this port never sees SOAP or SAML; a backend turns the eID-Server's answers into
these types and its failures into exactly one of the exception types below.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from eid_gateway.identity import Attribute, Identity, LevelOfAssurance


@dataclass(frozen=True)
class EidRequest:
    """What one sign-in asks of the card (already minimised to the service's registration)."""

    required: frozenset[Attribute]
    optional: frozenset[Attribute] = frozenset()
    minimum_age: int | None = None
    community_id: str | None = None
    level_of_assurance: LevelOfAssurance = LevelOfAssurance.HIGH
    transaction_info: str | None = None


@dataclass(frozen=True)
class EidSession:
    """An eID-Server session, as needed for the TC Token and for fetching the result."""

    session_id: str
    server_address: str
    psk_id: str | None
    psk_key: str | None


class FailureKind(enum.Enum):
    """Why a card step ended without an identity; drives the citizen page and the service error."""

    CANCELLED = "cancelled"
    WRONG_PIN = "wrong_pin"
    CARD_BLOCKED = "card_blocked"
    TIMEOUT = "timeout"
    DOCUMENT_INVALID = "document_invalid"
    COMMUNICATION = "communication"
    SERVER_ERROR = "server_error"
    #: After the card step a browser other than the one that began the sign-in opened its refresh
    #: address: the mark of a relayed sign-in (see eid_gateway.web.navigation), so the flow ends.
    OTHER_BROWSER = "other_browser"
    #: The EUDI wallet (eid_gateway.wallet): the citizen declined in the wallet; the presented PID was
    #: refused by a check (signature, trust, key binding, disclosures, type); it has expired; it was
    #: revoked on its status list; its status list could not be fetched or checked (never an accept).
    WALLET_CANCELLED = "wallet_cancelled"
    CREDENTIAL_REJECTED = "credential_rejected"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_REVOKED = "credential_revoked"
    CREDENTIAL_STATUS_UNKNOWN = "credential_status_unknown"


class EidError(Exception):
    """Base of backend errors."""


class EidServerUnavailable(EidError):
    """The eID-Server cannot be reached, refused the connection or did not answer in time."""


class EidProtocolError(EidError):
    """The eID-Server answered with something we must not trust: malformed, unsigned or forged."""


class EidResultError(EidError):
    """The eID-Server answered properly with an error result (cancel, wrong PIN, ...)."""

    def __init__(self, kind: FailureKind, result_minor: str | None, message: str | None = None):
        super().__init__(f"{kind.value}: {result_minor or '-'}")
        self.kind = kind
        self.result_minor = result_minor
        self.message = message


class ResultNotReady(EidError):
    """getResult answered noResultYet: the card step has not finished."""


@dataclass(frozen=True)
class ServerInfo:
    """getServerInfo: the health probe."""

    version: str
    rights: dict[str, bool]


class EidServer(Protocol):
    """One eID-Server, whatever it speaks."""

    async def start_session(self, request: EidRequest) -> EidSession:
        """useID: open a session; called exactly once per flow (never retried)."""
        ...

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        """getResult: the identity, or :class:`EidResultError` / :class:`ResultNotReady`."""
        ...

    async def server_info(self) -> ServerInfo:
        """getServerInfo: version and document verification rights."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
