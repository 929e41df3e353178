"""A kiosk's history: what changed and when, kept ``kiosk_monitor.history_days`` days (no I/O here).

Events are derived from two consecutive kiosk states (:func:`eid_gateway.kiosks.kiosk_state`), so
every node writes exactly the changes it made. No personal data: a card is named by its type (the
reader state word ``id_card``, ``other_card``, ...), never by its ATR or anything read from it; the
detail is a PC/SC error name or a fixed word.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Final

#: what an event says happened (the dashboard's texts are keyed by these words)
AGENT_ONLINE: Final = "agent_online"  # reports again after being offline, stopped, or never seen
AGENT_OFFLINE: Final = "agent_offline"  # detail "stopped" (announced) or "silent" (heartbeat missed)
CREDENTIAL_REFUSED: Final = "credential_refused"  # the kiosk API refused a credential for this kiosk
SERVICE: Final = "service"  # the PC/SC service: state ok / pcsc_unavailable / no_readers
READER_ADDED: Final = "reader_added"  # state: the reader's state word when it appeared
READER_REMOVED: Final = "reader_removed"
READER_STATE: Final = "reader_state"  # state: empty, id_card, other_card, card_mute, ...
KINDS: Final = (AGENT_ONLINE, AGENT_OFFLINE, CREDENTIAL_REFUSED, SERVICE, READER_ADDED, READER_REMOVED, READER_STATE)


class HistoryError(ValueError):
    """A stored history entry that is not an event (written by another version, or damaged)."""


@dataclass(frozen=True)
class KioskEvent:
    """One change of one kiosk. ``at``: seconds since the epoch (the deciding node's clock)."""

    at: float
    kind: str
    #: the reader's PC/SC name for reader events, else None
    reader: str | None = None
    #: the new state word (reader state, service state), else None
    state: str | None = None
    #: a technical code (``SCARD_E_NO_SERVICE``) or ``stopped`` / ``silent`` for agent_offline
    detail: str | None = None


def event_to_json(event: KioskEvent) -> str:
    return json.dumps(asdict(event), separators=(",", ":"), ensure_ascii=False)


def event_from_json(text: str) -> KioskEvent:
    try:
        doc: Any = json.loads(text)
        if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
            raise HistoryError("not a kiosk event")
        fields = {k: doc.get(k) for k in ("reader", "state", "detail")}
        if not all(v is None or isinstance(v, str) for v in fields.values()):
            raise HistoryError("not a kiosk event")
        at = doc.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise HistoryError("not a kiosk event")
        return KioskEvent(float(at), str(doc["kind"]), **fields)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        if isinstance(exc, HistoryError):
            raise
        raise HistoryError("not a kiosk event") from None
