"""Staff-facing views: the dashboard page, its server-sent event stream, status JSON and metrics.

The page is complete without JavaScript (a table that reloads itself through a <noscript> refresh);
the external dashboard.js follows the event stream instead. No inline script, so the gateway's CSP
(script-src 'self') holds. Everything here is behind the staff credential except the static files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import jinja2
from aiohttp import web

from eid_gateway.kiosks.api import status_document
from eid_gateway.kiosks.keys import METRICS, REGISTRY, STAFF
from eid_gateway.kiosks.metrics import render_metrics
from eid_gateway.kiosks.registry import KioskRegistry

_HERE: Final = Path(__file__).parent
_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC: Final = {
    "dashboard.js": ("application/javascript", (_HERE / "static" / "dashboard.js").read_bytes()),
    "dashboard.css": ("text/css", (_HERE / "static" / "dashboard.css").read_bytes()),
}
KEEPALIVE_SECONDS = 15.0

LABELS: Final = {
    "unknown": "unbekannt",
    "stale": "keine Meldung",
    "pcsc_unavailable": "PC/SC nicht verfügbar",
    "no_readers": "kein Lesegerät",
    "id_card": "Ausweis erkannt",
    "other_card": "andere Karte",
    "card_unreadable": "Karte nicht lesbar",
    "card_mute": "Karte antwortet nicht",
    "in_use": "in Benutzung",
    "empty": "bereit (leer)",
    "unavailable": "Lesegerät nicht verfügbar",
}
_ORDER: Final = list(LABELS)


def decorate(row: dict[str, Any]) -> dict[str, Any]:
    """Add the German labels staff read (kept out of the registry, which is language-free)."""
    out = dict(row)
    out["status_label"] = LABELS.get(row["status"], row["status"])
    out["readers"] = [dict(r, state_label=LABELS.get(r["state"], r["state"])) for r in row["readers"]]
    return out


def ordered_counts(registry: KioskRegistry) -> list[tuple[str, int]]:
    c = registry.counts()
    return sorted(c.items(), key=lambda kv: _ORDER.index(kv[0]) if kv[0] in _ORDER else len(_ORDER))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _url(request: web.Request, route: str, **parts: str) -> str:
    return str(request.app.router[route].url_for(**parts))


async def dashboard_page(request: web.Request) -> web.Response:
    await request.app[STAFF].require(request)
    registry = request.app[REGISTRY]
    registry.refresh_staleness()
    html = _ENV.get_template("dashboard.html").render(
        rows=[decorate(r) for r in registry.rows()],
        counts=ordered_counts(registry),
        labels=LABELS,
        generated=_now(),
        stale_after=int(registry.settings.stale_after_seconds),
        refresh_seconds=max(5, int(registry.settings.heartbeat_seconds)),
        events_url=_url(request, "kiosk-events"),
        js_url=_url(request, "kiosk-static", name="dashboard.js"),
        css_url=_url(request, "kiosk-static", name="dashboard.css"),
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def sse(event: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode("utf-8")


def _event_bytes(registry: KioskRegistry, ev: dict[str, Any]) -> bytes:
    """Encode an event once; every dashboard stream gets the same bytes (the registry hands all
    subscribers the same event object, and the event loop is single-threaded)."""
    cached = ev.get("_bytes")
    if isinstance(cached, bytes):
        return cached
    if ev["type"] == "kiosk":
        out = sse("kiosk", {"row": decorate(ev["row"]), "counts": ordered_counts(registry)})
    else:
        out = sse("seen", {"id": ev["id"], "last_seen": ev["last_seen"]})
    ev["_bytes"] = out
    return out


async def dashboard_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a full snapshot first, then one event per kiosk change."""
    await request.app[STAFF].require(request)
    registry = request.app[REGISTRY]
    sub = registry.subscribe()
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
                 "X-Accel-Buffering": "no"}
    )
    try:
        await resp.prepare(request)
        registry.refresh_staleness()
        snapshot = {
            "rows": [decorate(r) for r in registry.rows()],
            "counts": ordered_counts(registry),
            "labels": LABELS,
            "generated": _now(),
        }
        await resp.write(b"retry: 3000\n\n" + sse("snapshot", snapshot))
        closed = asyncio.ensure_future(sub.closed.wait())
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            while not sub.closed.is_set():
                getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({getter, closed}, timeout=KEEPALIVE_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if not done:
                        await resp.write(b": keepalive\n\n")
                    continue
                chunks = [_event_bytes(registry, getter.result())]
                while not sub.queue.empty() and len(chunks) < 500:
                    chunks.append(_event_bytes(registry, sub.queue.get_nowait()))
                await resp.write(b"".join(chunks))
        finally:
            closed.cancel()
            if getter is not None:
                getter.cancel()
    except ConnectionResetError:
        pass
    finally:
        registry.unsubscribe(sub)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await resp.write_eof()
    return resp


async def status_json(request: web.Request) -> web.Response:
    await request.app[STAFF].require(request)
    registry = request.app[REGISTRY]
    registry.refresh_staleness()
    return web.json_response(status_document(registry.rows(), registry.counts()),
                             headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    await request.app[STAFF].require(request)
    body = render_metrics(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                                            "Cache-Control": "no-store"})


async def static_file(request: web.Request) -> web.Response:
    entry = STATIC.get(request.match_info["name"])
    if entry is None:
        raise web.HTTPNotFound()
    ctype, body = entry
    return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "public, max-age=300"})
