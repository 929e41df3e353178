"""Result codes of the eID-Interface and what each means for the citizen.

TR-03130 has its own ResultMinor codes for server-side problems only; card and user problems (cancel,
wrong PIN, blocked card) arrive as the eCard-API codes the eID-Client reported, passed through by the
server. :func:`failure_kind` folds both vocabularies into the gateway's :class:`FailureKind`.
"""

from __future__ import annotations

from typing import Final

from eid_gateway.core.port import FailureKind

# --- ResultMajor -------------------------------------------------------------------------------------
_MAJOR: Final = "http://www.bsi.bund.de/ecard/api/1.1/resultmajor"
MAJOR_OK: Final = f"{_MAJOR}#ok"
MAJOR_ERROR: Final = f"{_MAJOR}#error"
MAJOR_WARNING: Final = f"{_MAJOR}#warning"
MAJORS: Final = frozenset({MAJOR_OK, MAJOR_ERROR, MAJOR_WARNING})

# --- ResultMinor of the eID-Server (TR-03130) -------------------------------------------------------
_SERVER: Final = "http://www.bsi.bund.de/eid/server/2.0/resultminor"
INTERNAL_ERROR: Final = f"{_SERVER}/common#internalError"
SCHEMA_VIOLATION: Final = f"{_SERVER}/common#schemaViolation"
INVALID_PSK: Final = f"{_SERVER}/useID#invalidPSK"
TOO_MANY_OPEN_SESSIONS: Final = f"{_SERVER}/useID#tooManyOpenSessions"
MISSING_ARGUMENT: Final = f"{_SERVER}/useID#missingArgument"
MISSING_TERMINAL_RIGHTS: Final = f"{_SERVER}/useID#missingTerminalRights"
NO_RESULT_YET: Final = f"{_SERVER}/getResult#noResultYet"
INVALID_SESSION: Final = f"{_SERVER}/getResult#invalidSession"
INVALID_COUNTER: Final = f"{_SERVER}/getResult#invalidCounter"
DENIED_DOCUMENT: Final = f"{_SERVER}/getResult#deniedDocument"
INVALID_DOCUMENT: Final = f"{_SERVER}/getResult#invalidDocument"

# --- ResultMinor of the eCard-API, as AusweisApp reports them -----------------------------------------
_ECARD: Final = "http://www.bsi.bund.de/ecard/api/1.1/resultminor"
CANCELLATION_BY_USER: Final = f"{_ECARD}/sal#cancellationByUser"
COMMUNICATION_ERROR: Final = f"{_ECARD}/al/common#communicationError"  # wrong PIN / CAN / PUK
NO_PERMISSION: Final = f"{_ECARD}/al/common#noPermission"  # PIN deactivated, PUK blocked
UNKNOWN_ERROR: Final = f"{_ECARD}/al/common#unknownError"  # no card, input timeout
DOCUMENT_VALIDITY_FAILED: Final = f"{_ECARD}/sal/mEAC#DocumentValidityVerificationFailed"
TRUSTED_CHANNEL_FAILED: Final = f"{_ECARD}/dp#trustedChannelEstablishmentFailed"
DP_TIMEOUT: Final = f"{_ECARD}/dp#timeout"

_KIND: Final[dict[str, FailureKind]] = {
    CANCELLATION_BY_USER: FailureKind.CANCELLED,
    COMMUNICATION_ERROR: FailureKind.WRONG_PIN,
    NO_PERMISSION: FailureKind.CARD_BLOCKED,
    UNKNOWN_ERROR: FailureKind.TIMEOUT,
    DP_TIMEOUT: FailureKind.TIMEOUT,
    DOCUMENT_VALIDITY_FAILED: FailureKind.DOCUMENT_INVALID,
    DENIED_DOCUMENT: FailureKind.DOCUMENT_INVALID,
    INVALID_DOCUMENT: FailureKind.DOCUMENT_INVALID,
    TRUSTED_CHANNEL_FAILED: FailureKind.COMMUNICATION,
}


def failure_kind(result_minor: str | None) -> FailureKind:
    """The citizen-facing kind of an error ResultMinor; unknown or server-side codes are server errors."""
    if result_minor is None:
        return FailureKind.SERVER_ERROR
    return _KIND.get(result_minor.strip(), FailureKind.SERVER_ERROR)


# --- the short ResultMinor values AusweisApp appends to the RefreshAddress (TR-03124) ---------------
REFRESH_OK: Final = "ok"
REFRESH_ERROR: Final = "error"
REFRESH_MINORS: Final = frozenset(
    {"trustedChannelEstablishmentFailed", "communicationError", "cancellationByUser", "serverError", "clientError"}
)

_REFRESH_KIND: Final[dict[str, FailureKind]] = {
    "cancellationByUser": FailureKind.CANCELLED,
    "trustedChannelEstablishmentFailed": FailureKind.COMMUNICATION,
    "communicationError": FailureKind.COMMUNICATION,
    "serverError": FailureKind.SERVER_ERROR,
    "clientError": FailureKind.COMMUNICATION,
}


def refresh_minor(result_minor: str | None) -> str:
    """The short refresh-URL code a client reports for a full ResultMinor of a failed card step."""
    if result_minor == CANCELLATION_BY_USER:
        return "cancellationByUser"
    if result_minor == TRUSTED_CHANNEL_FAILED:
        return "trustedChannelEstablishmentFailed"
    if result_minor is not None and result_minor.startswith(_SERVER):
        return "serverError"
    return "clientError"


def refresh_failure_kind(short_minor: str | None) -> FailureKind:
    """The kind behind a short refresh-URL ResultMinor (the gateway may show it before getResult)."""
    return _REFRESH_KIND.get(short_minor or "", FailureKind.SERVER_ERROR)
