"""Staff-facing views: the dashboard page, its server-sent event stream, status JSON and metrics.

The page is complete without JavaScript (a table that reloads itself through a <noscript> refresh,
times in the configured zone); the external dashboard.js follows the event stream instead, shows times
in the staff browser's zone with "vor N s" and keeps "Stand" live. A row is rendered by one template
(kiosk_parts.html) for the page and for the stream, which sends it as HTML. No inline script, so the
gateway's CSP (script-src 'self') holds. Everything here is behind the staff sign-in except the
static files (a browser without one is sent to the login page; metrics also take the scrape token).
German or English: ``?lang=``, the language cookie, then Accept-Language.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from eid_gateway.kiosks import texts
from eid_gateway.kiosks.api import status_document
from eid_gateway.kiosks.auth import unauthorized
from eid_gateway.kiosks.keys import BOARD, METRICS, REGISTRY, STAFF
from eid_gateway.kiosks.metrics import render_metrics
from eid_gateway.kiosks.registry import DOWN_WORDS, OFFLINE, REFUSED, UNKNOWN, KioskRegistry
from eid_gateway.kiosks.texts import ADMIN, ADVICE, HISTORY, LABELS, LOGIN, UI, detail_text, t
from eid_gateway.web.i18n import LANGUAGES, negotiate_language
from eid_gateway.web.render import TEMPLATE_DIR

_HERE: Final = Path(__file__).parent
ENV: Final = jinja2.Environment(
    # the gateway's templates for the HTML document the kiosk pages share with it (base.html)
    loader=jinja2.FileSystemLoader([str(_HERE / "templates"), str(TEMPLATE_DIR)]),
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
#: the order of the summary badges: alarms first
_ORDER: Final = [OFFLINE, REFUSED, UNKNOWN, *(k for k in LABELS if k not in (OFFLINE, REFUSED, UNKNOWN))]
_TIME_FORMAT: Final = {"de": "%d.%m.%Y, %H:%M:%S", "en": "%d %b %Y, %H:%M:%S"}


class View:
    """Turns the registry's language-free rows into what staff read, in one language and time zone."""

    def __init__(self, lang: str, zone: str) -> None:
        self.lang = lang if lang in LANGUAGES else "de"
        self.zone = ZoneInfo(zone)
        self.ui = {key: t(UI, key, self.lang) for key in UI}

    def time(self, iso: str | None) -> dict[str, str] | None:
        """A <time>: ISO 8601 with the zone's offset (dashboard.js shows it in the browser's zone and
        adds "vor N s"), and a readable local time of the configured zone for pages without JavaScript."""
        if iso is None:
            return None
        local = datetime.fromisoformat(iso).astimezone(self.zone)
        return {"iso": local.isoformat(timespec="seconds"), "text": local.strftime(_TIME_FORMAT[self.lang])}

    def label(self, word: str) -> str:
        return t(LABELS, word, self.lang) if word in LABELS else word

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        status = row["status"]
        out: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"],
            "status": status,
            "label": self.label(status),
            "advice": None,
            "technical": None,
            "since": None,
            "since_label": None,
            "seen": self.time(row["last_seen"]),
            "changed": self.time(row["changed_at"]),
            "agent": None,
            "readers": [],
            # relative to the dashboard (and to the event stream's page): /kiosks/history/{id}
            "history": {
                "href": f"history/{row['id']}?lang={self.lang}",
                "text": t(HISTORY, "link", self.lang),
                "label": t(HISTORY, "link_label", self.lang, name=row["name"]),
            },
        }
        if status == OFFLINE:
            out["advice"] = t(ADVICE, f"offline_{row['offline_reason']}", self.lang)
            out["since"], out["since_label"] = self.time(row["offline_since"]), self.ui["offline_since"]
        elif status == REFUSED:
            out["advice"] = t(ADVICE, REFUSED, self.lang)
            out["since"], out["since_label"] = self.time(row["refused_at"]), self.ui["refused_since"]
        elif status == UNKNOWN:
            out["advice"] = t(ADVICE, UNKNOWN, self.lang)
        elif row["detail"]:
            out["advice"], out["technical"] = detail_text(row["detail"], self.lang), row["detail"]
        elif status in ADVICE and row["service"] != "ok":
            out["advice"] = t(ADVICE, status, self.lang)
        if status not in DOWN_WORDS:
            out["readers"] = [self.reader(r) for r in row["readers"]]
            if row["agent_queue"] or row["agent_dropped"]:
                out["agent"] = t(UI, "agent_queue", self.lang, queue=row["agent_queue"], dropped=row["agent_dropped"])
        return out

    def reader(self, r: dict[str, Any]) -> dict[str, Any]:
        caps = r["reader_pace"]
        if caps is None:
            reader_pace = None
        elif caps:
            names = [t(texts.PACE_CAPABILITIES, c, self.lang) if c in texts.PACE_CAPABILITIES else c for c in caps]
            reader_pace = t(UI, "reader_pace", self.lang, caps=", ".join(names))
        else:
            reader_pace = self.ui["reader_pace_none"]
        advice = (
            detail_text(r["detail"], self.lang)
            if r["detail"]
            else (t(ADVICE, r["state"], self.lang) if r["state"] in ADVICE else None)
        )
        return {
            "name": r["name"],
            "state": r["state"],
            "label": self.label(r["state"]),
            "advice": advice,
            "technical": r["detail"],
            "card_pace": t(UI, "card_pace", self.lang, pace=r["card_pace"]) if r["card_pace"] else None,
            "reader_pace": reader_pace,
        }

    def counts(self, registry: KioskRegistry) -> list[dict[str, Any]]:
        c = registry.counts()
        words = sorted(c, key=lambda w: _ORDER.index(w) if w in _ORDER else len(_ORDER))
        return [{"status": w, "label": self.label(w), "n": c[w]} for w in words]

    def row_html(self, row: dict[str, Any]) -> str:
        return str(_PARTS.module.row(self.row(row), self.ui))  # type: ignore[attr-defined]

    def counts_html(self, registry: KioskRegistry) -> str:
        return str(_PARTS.module.counts(self.counts(registry), self.ui))  # type: ignore[attr-defined]


_PARTS: Final = ENV.get_template("kiosk_parts.html")


def _view(request: web.Request, registry: KioskRegistry) -> View:
    return View(negotiate_language(request), registry.settings.time_zone)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def url_of(request: web.Request, route: str, **parts: str) -> str:
    return str(request.app.router[route].url_for(**parts))


async def dashboard_page(request: web.Request) -> web.Response:
    staff = await request.app[STAFF].current(request)
    registry = request.app[REGISTRY]
    view = _view(request, registry)
    if staff is None:  # a browser: to the login page (HTTP basic stays for machines that send it)
        if "Authorization" in request.headers:
            raise unauthorized()
        location = url_of(request, "kiosk-login") + f"?lang={view.lang}"
        return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
    registry.refresh_staleness()
    other = "en" if view.lang == "de" else "de"
    ago = {k: view.ui[k] for k in ("ago_s", "ago_min", "ago_h", "ago_d")}
    html = ENV.get_template("dashboard.html").render(
        lang=view.lang,
        other=other,
        ui=view.ui,
        rows=[view.row(r) for r in registry.rows()],
        counts=view.counts(registry),
        generated=view.time(now_iso()),
        offline_after=t(UI, "offline_after", view.lang, seconds=f"{registry.settings.stale_after_seconds:g}"),
        reload=t(UI, "reload", view.lang, seconds=max(5, int(registry.settings.heartbeat_seconds))),
        refresh_seconds=max(5, int(registry.settings.heartbeat_seconds)),
        time_zone=registry.settings.time_zone,
        ago_json=json.dumps(ago, ensure_ascii=False),
        events_url=url_of(request, "kiosk-events") + f"?lang={view.lang}",
        js_url=url_of(request, "kiosk-static", name="dashboard.js"),
        css_url=url_of(request, "kiosk-static", name="dashboard.css"),
        signed_in=t(LOGIN, "signed_in_as", view.lang, name=staff.name, role=t(LOGIN, f"role_{staff.role}", view.lang)),
        logout_url=url_of(request, "kiosk-logout") + f"?lang={view.lang}",
        logout_label=t(LOGIN, "logout", view.lang),
        logout_csrf=staff.csrf,
        notice=_removed_notice(request, registry, view.lang),
    )
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def _removed_notice(request: web.Request, registry: KioskRegistry, lang: str) -> str | None:
    """After an admin removed a kiosk (admin.py redirects here with ``removed=<id>``): say it is gone.
    Only for a kiosk that is removed indeed (a crafted link cannot make the page claim anything else)."""
    removed = request.query.get("removed", "")
    if removed not in request.app[BOARD].removed or removed in registry.records:
        return None
    return t(ADMIN, "removed", lang, name=removed)


def sse(event: str, data: Any) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _event_bytes(registry: KioskRegistry, ev: dict[str, Any], view: View) -> bytes:
    """Encode an event once per language; every dashboard stream of that language gets the same bytes
    (the registry hands all subscribers the same event object, and the event loop is single-threaded)."""
    key = f"_bytes_{view.lang}"
    cached = ev.get(key)
    if isinstance(cached, bytes):
        return cached
    if ev["type"] == "kiosk":
        out = sse(
            "kiosk", {"id": ev["row"]["id"], "row": view.row_html(ev["row"]), "counts": view.counts_html(registry)}
        )
    else:
        seen = view.time(ev["last_seen"])
        out = sse(
            "seen", {"id": ev["id"], "last_seen": seen["iso"] if seen else None, "text": seen["text"] if seen else None}
        )
    ev[key] = out
    return out


async def dashboard_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: a full snapshot first, then one event per kiosk change."""
    await request.app[STAFF].require(request)
    registry = request.app[REGISTRY]
    view = _view(request, registry)
    sub = registry.subscribe()
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await resp.prepare(request)
        registry.refresh_staleness()
        snapshot = {
            "rows": [view.row_html(r) for r in registry.rows()],
            "counts": view.counts_html(registry),
            "generated": now_iso(),
        }
        await resp.write(b"retry: 3000\n\n" + sse("snapshot", snapshot))
        closed = asyncio.ensure_future(sub.closed.wait())
        getter: asyncio.Future[dict[str, Any]] | None = None
        try:
            while not sub.closed.is_set():
                getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait(
                    {getter, closed}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    if not done:
                        await resp.write(b": keepalive\n\n")
                    continue
                chunks = [_event_bytes(registry, getter.result(), view)]
                while not sub.queue.empty() and len(chunks) < 500:
                    chunks.append(_event_bytes(registry, sub.queue.get_nowait(), view))
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
    return web.json_response(status_document(registry.rows(), registry.counts()), headers={"Cache-Control": "no-store"})


async def metrics(request: web.Request) -> web.Response:
    if not request.app[STAFF].scraper(request):
        await request.app[STAFF].require(request)
    body = render_metrics(request.app[METRICS])
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store"}
    )


async def static_file(request: web.Request) -> web.Response:
    entry = STATIC.get(request.match_info["name"])
    if entry is None:
        raise web.HTTPNotFound()
    ctype, body = entry
    return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "public, max-age=300"})
