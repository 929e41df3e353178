"""The wallet verifier's exception types: one per way a wallet response ends without an identity.

The gateway turns each into a citizen page and a protocol error for the service; the
:class:`RejectReason` says which check failed (for the audit log and the tests), never with personal data.
"""

from __future__ import annotations

import enum


class RejectReason(enum.Enum):
    """Which check refused a presentation (stable names: audit events and metrics use ``value``)."""

    ISSUER_SIGNATURE = "issuer_signature"
    UNTRUSTED_ISSUER = "untrusted_issuer"
    NONCE = "nonce"
    AUDIENCE = "audience"
    KB_SIGNATURE = "kb_signature"
    KB_STALE = "kb_stale"
    SD_HASH = "sd_hash"
    DISCLOSURE_UNKNOWN = "disclosure_unknown"
    DISCLOSURE_DUPLICATE = "disclosure_duplicate"
    CRITICAL = "critical"
    VCT = "vct"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    STATUS_UNAVAILABLE = "status_unavailable"
    MALFORMED = "malformed"
    STATE = "state"
    REPLAY = "replay"


class WalletError(Exception):
    """Base of every wallet verifier error."""


class PresentationRejected(WalletError):
    """The wallet's response was received but refused; ``reason`` names the failed check."""

    def __init__(self, reason: RejectReason, message: str = "") -> None:
        super().__init__(f"{reason.value}: {message}" if message else reason.value)
        self.reason = reason
        self.message = message


class WalletCancelled(WalletError):
    """The wallet answered with an OAuth error (``error``: e.g. ``access_denied`` when the citizen declined)."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error if description is None else f"{error}: {description}")
        self.error = error
        self.description = description


class StatusUnavailable(WalletError):
    """The credential names a status list that could not be fetched or trusted: never an accept."""
