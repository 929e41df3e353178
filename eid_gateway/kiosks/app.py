"""The kiosk sub-application: mount it into the gateway with `app.add_subapp("/kiosks/", ...)`.

Routes (relative to the mount point):
  POST api/v1/kiosks/{kiosk_id}/state       kiosk bearer token
  POST api/v1/kiosks/{kiosk_id}/heartbeat   kiosk bearer token
  POST api/v1/kiosks/{kiosk_id}/offline     kiosk bearer token (the agent stops cleanly)
  GET  api/v1/openapi.json                  public (describes the API, no data)
  GET  login, POST login                    the staff login page (public)
  POST logout                               staff session
  GET  dashboard                            staff session (without one: to the login page)
  GET  dashboard/events                     staff, server-sent events
  GET  status.json                          staff (session, or HTTP basic for monitoring checks)
  GET  metrics                              the scrape token (metrics_token_hash) or staff; Prometheus text
  GET  static/{name}                        public (dashboard.js, dashboard.css)
  GET  history/{kiosk_id}                   staff (view, admin): the kiosk's last changes
  POST history/{kiosk_id}/export            admin + CSRF: the history as CSV or JSON (format=csv|json)
  POST admin/kiosks/{kiosk_id}/remove       admin + CSRF: off the board, its credential void (board.py)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from eid_gateway.kiosks import admin, api, dashboard, login, service
from eid_gateway.kiosks.auth import StaffAuth
from eid_gateway.kiosks.board import Board
from eid_gateway.kiosks.keys import BOARD, METRICS, REGISTRY, RELOAD, STAFF, STATE_STORE
from eid_gateway.kiosks.lockout import StaffLockout
from eid_gateway.kiosks.metrics import metrics_registry
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.reload import CHECK_SECONDS, CredentialsFile
from eid_gateway.kiosks.settings import KioskSettings
from eid_gateway.kiosks.staff import StaffSessions
from eid_gateway.kiosks.state_store import KioskStateStore, MemoryKioskStateStore
from eid_gateway.store.base import Store, StoreError
from eid_gateway.store.sqlite import SqliteStore


def create_kiosk_app(
    settings: KioskSettings,
    *,
    state_store: KioskStateStore | None = None,
    clock: Callable[[], float] = time.time,
    tick_seconds: float = 1.0,
    lockout: StaffLockout | None = None,
    store: Store | None = None,
    secure_cookies: bool = False,
    source: Path | None = None,
    reload_seconds: float = CHECK_SECONDS,
) -> web.Application:
    """Build the kiosk sub-app. *state_store* keeps last states across restarts (memory if None);
    *lockout* counts failed staff sign-ins and *store* keeps staff sessions, both in the shared store
    (the gateway passes them; without a store, sessions live in an in-memory SQLite of this app);
    *secure_cookies*: the staff cookies get Secure (an https origin); *source*: the config file whose
    kiosk credentials and staff accounts are re-read when it changes (looked at every *reload_seconds*)."""
    app = web.Application()
    registry = KioskRegistry(settings, clock=clock)
    app[REGISTRY] = registry
    app[STATE_STORE] = state_store if state_store is not None else MemoryKioskStateStore()
    kiosks = app[service.SERVICE] = service.KioskService(registry, app[STATE_STORE], clock=clock)
    own_store: SqliteStore | None = None
    if store is None:
        store = own_store = SqliteStore(":memory:")
    sessions = StaffSessions(store, settings.session_minutes * 60.0, secure=secure_cookies)
    app[STAFF] = StaffAuth(
        settings.staff_accounts(), sessions, metrics_token_hash=settings.metrics_token_hash, lockout=lockout
    )
    app[METRICS] = metrics_registry(registry)
    board = app[BOARD] = Board(settings, registry, app[STAFF], store)
    if source is not None:
        app[RELOAD] = CredentialsFile(source, settings, board.configure, check_seconds=reload_seconds)
        app[STAFF].refresh = app[RELOAD].poll

    r = app.router
    r.add_post("/api/v1/kiosks/{kiosk_id}/state", api.post_state, name="kiosk-state")
    r.add_post("/api/v1/kiosks/{kiosk_id}/heartbeat", api.post_heartbeat, name="kiosk-heartbeat")
    r.add_post("/api/v1/kiosks/{kiosk_id}/offline", api.post_offline, name="kiosk-offline")
    r.add_get("/api/v1/openapi.json", api.get_openapi, name="kiosk-openapi")
    r.add_get("/login", login.login_page, name="kiosk-login")
    r.add_post("/login", login.login_post)
    r.add_post("/logout", login.logout, name="kiosk-logout")
    r.add_get("/dashboard", dashboard.dashboard_page, name="kiosk-dashboard")
    r.add_get("/dashboard/events", dashboard.dashboard_events, name="kiosk-events")
    r.add_get("/status.json", dashboard.status_json, name="kiosk-status")
    r.add_get("/metrics", dashboard.metrics, name="kiosk-metrics")
    r.add_get("/static/{name}", dashboard.static_file, name="kiosk-static")
    r.add_get("/history/{kiosk_id}", admin.history_page, name="kiosk-history")
    r.add_post("/history/{kiosk_id}/export", admin.history_export, name="kiosk-history-export")
    r.add_post("/admin/kiosks/{kiosk_id}/remove", admin.remove_kiosk, name="kiosk-remove")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await kiosks.resync()  # the shared states; then follow what every node writes
        await board.sync()  # kiosks an admin removed from the board (on any node)

        async def tick() -> None:
            while True:
                await asyncio.sleep(tick_seconds)
                if RELOAD in app:
                    app[RELOAD].poll()
                with contextlib.suppress(StoreError):  # the store is down: the board stays as it is
                    await board.sync()
                registry.refresh_staleness()

        task = asyncio.create_task(tick())
        helpers = [asyncio.create_task(kiosks.follow()), asyncio.create_task(kiosks.keep(tick_seconds))]
        yield
        for helper in helpers:
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await helper
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app[STATE_STORE].close()
        if own_store is not None:
            await own_store.close()

    async def on_shutdown(app: web.Application) -> None:
        registry.close_all()  # end open event streams so shutdown does not wait for them

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    return app
