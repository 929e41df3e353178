"""A kiosk's history for staff: the page (every role) and its export as CSV or JSON (admin, POST + CSRF).

The events come from :meth:`KioskStateStore.kiosk_history` (no personal data: card *types* only, a
reader's PC/SC name, PC/SC error names). Each event gets a sentence saying what happened, in German or
English, with its time as the dashboard shows it (the same :class:`eid_gateway.kiosks.dashboard.View`
and dashboard.js: the staff browser's zone and "vor N s"; without JavaScript the configured zone).
The export says the same in the same language and keeps the technical fields, so IT can filter it;
spreadsheet formulas in reader names (a kiosk could send any) are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from eid_gateway.kiosks import history as h
from eid_gateway.kiosks.dashboard import ENV, View, now_iso, url_of
from eid_gateway.kiosks.history import KioskEvent
from eid_gateway.kiosks.keys import REGISTRY, STATE_STORE
from eid_gateway.kiosks.texts import HISTORY, LABELS, t

#: Events shown on the page and exported: the newest this many (the store keeps history_days).
SHOWN: Final = 200
EXPORTED: Final = 10_000
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def event_text(event: KioskEvent, lang: str) -> str:
    """What happened, for staff (one sentence, no codes)."""

    def label(word: str | None) -> str:
        return t(LABELS, word, lang) if word is not None and word in LABELS else (word or "")

    kind = event.kind
    if kind == h.AGENT_OFFLINE:
        return t(HISTORY, "agent_offline_stopped" if event.detail == "stopped" else "agent_offline_silent", lang)
    if kind == h.SERVICE:
        if event.state == "ok":
            return t(HISTORY, "service_ok", lang)
        return t(HISTORY, "service", lang, label=label(event.state))
    if kind in (h.READER_ADDED, h.READER_STATE):
        return t(HISTORY, kind, lang, reader=event.reader or "", label=label(event.state))
    if kind == h.READER_REMOVED:
        return t(HISTORY, kind, lang, reader=event.reader or "")
    return t(HISTORY, kind, lang)  # agent_online, credential_refused


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def event_rows(events: list[KioskEvent], view: View) -> list[dict[str, Any]]:
    """Newest first, each with its local time and text (and the technical detail, folded away on the page)."""
    return [
        {
            "time": view.time(_iso(e.at)),
            "text": event_text(e, view.lang),
            "kind": e.kind,
            "technical": e.detail if e.detail not in (None, "stopped", "silent") else None,
        }
        for e in reversed(events)
    ]


def _cell(value: str | None) -> str:
    text = value or ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_csv(kiosk_id: str, events: list[KioskEvent], view: View) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["time_utc", "time_local", "kiosk", "event", "reader", "state", "detail", "text"])
    for e in events:
        local = view.time(_iso(e.at))
        writer.writerow(
            [
                _iso(e.at),
                local["iso"] if local else "",
                kiosk_id,
                e.kind,
                _cell(e.reader),
                _cell(e.state),
                _cell(e.detail),
                _cell(event_text(e, view.lang)),
            ]
        )
    return out.getvalue()


def export_json(kiosk_id: str, name: str, events: list[KioskEvent], view: View, zone: str) -> str:
    doc = {
        "kiosk": kiosk_id,
        "name": name,
        "time_zone": zone,
        "exported_at": now_iso(),
        "events": [
            {
                "time_utc": _iso(e.at),
                "time_local": (view.time(_iso(e.at)) or {}).get("iso"),
                "event": e.kind,
                "reader": e.reader,
                "state": e.state,
                "detail": e.detail,
                "text": event_text(e, view.lang),
            }
            for e in events
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=1)


async def history_events(request: web.Request, kiosk_id: str, limit: int) -> list[KioskEvent]:
    """Oldest first (the store's order), within the retention."""
    days = request.app[REGISTRY].settings.history_days
    since = datetime.now(UTC).timestamp() - days * 86400.0
    return await request.app[STATE_STORE].kiosk_history(kiosk_id, since=since, limit=limit)


def export_response(
    kiosk_id: str, name: str, fmt: str, events: list[KioskEvent], view: View, zone: str
) -> web.Response:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    if fmt == "json":
        body, ctype, ext = export_json(kiosk_id, name, events, view, zone), "application/json", "json"
    else:
        body, ctype, ext = export_csv(kiosk_id, events, view), "text/csv", "csv"
    return web.Response(
        text=body,
        content_type=ctype,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="kiosk-{kiosk_id}-history-{stamp}.{ext}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def render_history(
    request: web.Request, view: View, kiosk_id: str, name: str, events: list[KioskEvent], admin_forms: dict[str, Any]
) -> web.Response:
    registry = request.app[REGISTRY]
    other = "en" if view.lang == "de" else "de"
    k = {key: t(HISTORY, key, view.lang) for key in HISTORY if "{" not in HISTORY[key]["de"]}
    html = ENV.get_template("kiosk_history.html").render(
        lang=view.lang,
        other=other,
        ui=view.ui,
        k=k,
        title=t(HISTORY, "title", view.lang, name=name),
        page_title=t(HISTORY, "page_title", view.lang, name=name),
        intro=t(HISTORY, "intro", view.lang, n=SHOWN, days=registry.settings.history_days),
        time_zone=registry.settings.time_zone,
        ago_json=json.dumps({k: view.ui[k] for k in ("ago_s", "ago_min", "ago_h", "ago_d")}, ensure_ascii=False),
        kiosk_id=kiosk_id,
        rows=event_rows(events, view),
        back_url=url_of(request, "kiosk-dashboard") + f"?lang={view.lang}",
        css_url=url_of(request, "kiosk-static", name="dashboard.css"),
        js_url=url_of(request, "kiosk-static", name="dashboard.js"),
        **admin_forms,
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})
