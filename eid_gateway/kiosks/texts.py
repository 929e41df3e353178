"""What Bürgerbüro staff read on the kiosk dashboard, in German and English.

Staff are not PC/SC experts: every state and every error code the agent reports gets a sentence that
says what happened and what to do; the code itself stays available, folded away, for the IT. A code
without an entry gets a general sentence (never the bare code alone). The texts are data: the catalog
file ``eid_gateway/catalog/kiosks.toml`` (every text in both languages, checked when it is read).
"""

from __future__ import annotations

from typing import Final

from eid_gateway import catalog

Texts = catalog.Table

_AREA: Final = "kiosks"
#: The dashboard's own words (dashboard.py, kiosks.html; ``ago_*`` filled in by dashboard.js).
UI: Final = catalog.table(_AREA, "ui")
#: The staff login page and the signed-in line of the dashboard.
LOGIN: Final = catalog.table(_AREA, "login")
#: The one word per kiosk (status word of the registry: UNKNOWN, OFFLINE, REFUSED) and per reader state,
#: in the order of the dashboard's summary.
LABELS: Final = catalog.table(_AREA, "labels")
#: What happened and what to do, per status word / reader state (shown under the label). States that
#: need no action have none.
ADVICE: Final = catalog.table(_AREA, "advice")
#: Per technical detail the agent reports (PC/SC error names and card-reading findings): what it
#: means for staff. Looked up before the state's general advice.
DETAILS: Final = catalog.table(_AREA, "details")
_GENERAL: Final = catalog.table(_AREA, "general")
#: For a detail without an entry of its own.
UNKNOWN_DETAIL: Final = _GENERAL["unknown_detail"]
#: The reader's own PACE functions (PC/SC part 10 GetReaderPACECapabilities), spelled out.
PACE_CAPABILITIES: Final = catalog.table(_AREA, "pace_capabilities")


#: The text *key* of *table* in *lang*, ``{name}`` placeholders filled.
t: Final = catalog.lookup


def detail_text(detail: str, lang: str) -> str:
    """What a technical detail means for staff; a general sentence for codes without an entry."""
    return t(DETAILS, detail, lang) if detail in DETAILS else t(_GENERAL, "unknown_detail", lang)


#: A kiosk's history page and export (history_view.py).
HISTORY: Final = catalog.table(_AREA, "history")
#: The admin actions of the dashboard and the page a view-only account gets for them (admin.py).
ADMIN: Final = catalog.table(_AREA, "admin")
