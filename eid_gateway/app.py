"""Composition: one aiohttp application from one validated :class:`~eid_gateway.config.GatewayConfig`.

Nothing here decides anything; it wires the store, the eID backend as its line in
:mod:`eid_gateway.backends.registry` builds and mounts it (the simulator is mounted in the same app and
reached over real HTTP through the TR-03130 client, so the production code path is the one exercised),
the frontends, the flow, the demo service and the
cross-cutting middlewares, and closes what it opened on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

from aiohttp import web

from eid_gateway.backends.registry import backend_kind, mount_simulator
from eid_gateway.config import GatewayConfig
from eid_gateway.core.port import EidServer
from eid_gateway.flow import FlowManager
from eid_gateway.metrics import GatewayMetrics
from eid_gateway.store.base import Store, StoreError
from eid_gateway.store.sqlite import SqliteStore
from eid_gateway.web.branding import BRANDING_KEY
from eid_gateway.web.clients import OperatorRule
from eid_gateway.web.connections import read_deadlines
from eid_gateway.web.home import home_page
from eid_gateway.web.i18n import remember_language
from eid_gateway.web.middlewares import body_limit, error_pages, security_headers
from eid_gateway.web.render import STATIC_DIR, render_message

log = logging.getLogger("eid_gateway.app")

CONFIG_KEY: Final = web.AppKey("config", GatewayConfig)
FLOWS_KEY: Final = web.AppKey("flows", FlowManager)
STORE_KEY: Final = web.AppKey("store", object)
BACKEND_KEY: Final = web.AppKey("backend", object)
METRICS_KEY: Final = web.AppKey("metrics", GatewayMetrics)
UNAVAILABLE_RETRY_AFTER: Final = 30
SWEEP_INTERVAL: Final = 60.0
READY_TIMEOUT: Final = 5.0


def _form_targets(config: GatewayConfig) -> list[str]:
    """Where gateway pages may POST: the registered ACS URLs and redirect URIs (exact)."""
    targets: list[str] = []
    for service in config.services.services:
        if service.saml is not None:
            targets.extend(service.saml.acs_urls)
        if service.oidc is not None:
            targets.extend(service.oidc.redirect_uris)
    return targets


def create_store(config: GatewayConfig) -> Store:
    """The configured store: SQLite (one node) or Redis (several nodes)."""
    if config.store.kind == "redis":
        from eid_gateway.store.redis import create_redis_store

        assert config.store.redis is not None
        return create_redis_store(config.store.redis)
    return SqliteStore(config.store.path)


@web.middleware
async def store_unavailable(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Store down: a clear "temporarily unavailable" page with 503 and Retry-After, not an error id.
    Every store operation is atomic, so a request that fails here has left nothing half-written."""
    try:
        return await handler(request)
    except StoreError as exc:
        log.error(
            "store unavailable route=%s error=%s",
            request.match_info.route.resource.canonical if request.match_info.route.resource else "-",
            type(exc).__name__,
        )
        metrics = request.config_dict.get(METRICS_KEY)
        if metrics is not None:
            metrics.unavailable.inc()
        response = render_message(request, "unavailable_title", "unavailable_text", status=503)
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
        return response


def _base_app(config: GatewayConfig) -> web.Application:
    max_body = config.limits.max_body_bytes
    app = web.Application(
        middlewares=[read_deadlines, error_pages, store_unavailable, body_limit(max_body)], client_max_size=max_body
    )
    app[CONFIG_KEY] = config
    app[BRANDING_KEY] = config.branding
    app.on_response_prepare.append(security_headers(_form_targets(config), hsts=config.production))
    app.on_response_prepare.append(remember_language(secure=config.secure_origin))
    app.router.add_get("/static/{name}", _static_files(config.branding.static_files()))
    app.router.add_get("/favicon.ico", no_favicon)
    return app


def _static_files(
    generated: Mapping[str, tuple[bytes, str]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The files of STATIC_DIR by name, the ``generated`` ones (name: content, type; the operator's
    brand.css and logo) from memory, and nothing else.

    Not aiohttp's ``add_static``: it looks each requested name up on disk, so a name longer than the
    file system allows raised OSError (ENAMETOOLONG), i.e. a 500 and an ERROR line for any client.
    """
    files = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}

    async def static_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name in generated:
            content, content_type = generated[name]
            return web.Response(body=content, content_type=content_type)
        path = files.get(name)
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return static_file


async def no_favicon(request: web.Request) -> web.Response:
    """Browsers ask for it on every page; answer without a 404 in every log."""
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


def _readyz(
    store: Store, backend: EidServer, operators: OperatorRule
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(request: web.Request) -> web.Response:
        """Readiness: the store answers, the eID-Server answers getServerInfo, the keys are loaded. The
        eID-Server's version only for ``operators`` (those who may read /metrics): to anyone else it
        says which known weaknesses to try."""
        checks: dict[str, str] = {}
        keys = request.app[CONFIG_KEY].keys
        checks["keys"] = "ok" if keys.saml_signing.private_key and keys.eid_client.private_key else "missing"
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await store.ping()
            checks["store"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["store"] = f"error: {type(exc).__name__}"
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                info = await backend.server_info()
            checks["eid_server"] = "ok"
            if operators.permits(request):
                checks["eid_server_version"] = info.version
        except Exception as exc:  # noqa: BLE001
            checks["eid_server"] = f"error: {type(exc).__name__}"
        from eid_gateway.backends.resilience import breaker_of

        breaker = breaker_of(backend)
        if breaker is not None:
            checks["eid_server_breaker"] = breaker.state.value
        ok = checks["store"] == "ok" and checks["eid_server"] == "ok" and checks["keys"] == "ok"
        return web.json_response(
            {"status": "ok" if ok else "unavailable", **checks},
            status=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    return readyz


def create_app(
    config: GatewayConfig, *, store: Store | None = None, backend: EidServer | None = None
) -> web.Application:
    """The whole gateway. ``store`` / ``backend`` replace the configured ones (tests: clocks, outages)."""
    from eid_gateway.audit import AuditTrail, derive_audit_key
    from eid_gateway.frontends.saml_idp import create_saml_frontend
    from eid_gateway.metrics import MeteredEidServer
    from eid_gateway.ratelimit import RateLimiter

    app = _base_app(config)
    store = store if store is not None else create_store(config)
    metrics = GatewayMetrics(config.eid_server.kind)
    kind = backend_kind(config.eid_server.kind)
    backend = MeteredEidServer(backend if backend is not None else kind.create(config), metrics)
    app[STORE_KEY] = store
    app[BACKEND_KEY] = backend
    app[METRICS_KEY] = metrics
    metrics.watch_store(store)
    app.middlewares.append(metrics.middleware())
    audit_key = config.audit.secret or derive_audit_key(config.keys.pseudonym_secret)
    audit = (
        AuditTrail(store, audit_key, backend=config.eid_server.kind, jsonl_path=config.audit.jsonl_path)
        if config.audit.enabled
        else None
    )
    limiter = RateLimiter(store, config.limits, audit_key, float(config.flow.ttl_seconds), metrics)

    if kind.test_facility:
        log.warning("eID-Server %s active: test facility, no real ID cards are read", kind.name.upper())
    if kind.mount is not None:
        kind.mount(app, config)

    flows = FlowManager(
        config,
        store,
        backend,
        test_client_path=kind.test_client_path(config),
        metrics=metrics,
        audit=audit,
        limiter=limiter,
    )
    app[FLOWS_KEY] = flows
    saml = create_saml_frontend(config, flows, store)
    flows.add_frontend(saml)
    app.add_routes(saml.routes())
    if config.oidc is not None:
        from eid_gateway.frontends.oidc import create_oidc_frontend

        oidc = create_oidc_frontend(config, flows, store, config.oidc)
        flows.add_frontend(oidc)
        app.add_routes(oidc.routes())
    app.add_routes(flows.routes())
    status_lists = None
    if config.wallet is not None:  # the EUDI wallet as a second way in (docs/wallet.md)
        from eid_gateway.wallet.status_fetch import StatusListFetcher
        from eid_gateway.wallet.web import WalletRoutes

        status_lists = StatusListFetcher(
            timeout=config.wallet.status_timeout_seconds, cache_seconds=int(config.wallet.status_cache_seconds)
        )
        app.add_routes(WalletRoutes(flows, config.wallet, fetcher=status_lists).routes())
    operators = OperatorRule(config.metrics.allow, config.limits.trusted_proxies)
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", _readyz(store, backend, operators))])
    app.router.add_get("/", home_page(demo_path="/demo/" if config.demo.enabled else None))
    if config.metrics.enabled:
        app.add_routes([web.get("/metrics", metrics.handler(operators))])

    if config.demo.enabled:
        from eid_gateway.demo import create_demo_app
        from eid_gateway.demo.app import demo_oidc_routes

        app.add_routes(demo_oidc_routes(config, store))
        app.add_subapp("/demo", create_demo_app(config))

    if config.kiosks is not None:
        from eid_gateway.kiosks import create_kiosk_app
        from eid_gateway.kiosks.lockout import StaffLockout
        from eid_gateway.kiosks.state_store import SharedKioskStateStore
        from eid_gateway.web.clients import client_address

        # kiosk states, their history, the dashboard stream and failed staff sign-ins go through the
        # shared store (any node, any worker). Client addresses as for the abuse limits (trusted proxies).
        trusted = limiter.trusted
        lockout = StaffLockout(store, audit_key, lambda request: client_address(request, trusted))
        app.add_subapp(
            "/kiosks/",
            create_kiosk_app(
                config.kiosks,
                state_store=SharedKioskStateStore(store),
                lockout=lockout,
                store=store,
                secure_cookies=config.secure_origin,
                source=config.source,  # kiosk credentials and staff accounts reload when it changes
            ),
        )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_forever(store))
        log.info(
            "gateway started mode=%s origin=%s eid_server=%s services=%d",
            config.mode,
            config.public_origin,
            config.eid_server.kind,
            len(config.services.services),
        )
        if config.demo.enabled:
            log.info("open %s/demo/ to try a sign-in with the demo service", config.public_origin)
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await backend.close()
        if status_lists is not None:
            await status_lists.close()
        await store.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _sweep_forever(store: Store) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        try:
            removed = await store.sweep()
            if removed:
                log.debug("store sweep removed=%d", removed)
        except Exception as exc:  # noqa: BLE001 - keep sweeping
            log.warning("store sweep failed error=%s", type(exc).__name__)


def create_simulator_app(config: GatewayConfig) -> web.Application:
    """Only the eID-Server simulator (``eid-gateway simulator``); refused in production."""
    if config.simulator is None:
        raise SystemExit("no [simulator] section in the config")
    app = _base_app(config)
    mount_simulator(app, config)
    app.add_routes([web.get("/healthz", healthz)])
    return app


def create_demo_only_app(config: GatewayConfig) -> web.Application:
    """Only the demo city service at /demo (``eid-gateway demo-service``)."""
    from eid_gateway.demo import create_demo_app

    app = _base_app(config)
    app.add_subapp("/demo", create_demo_app(config))
    app.add_routes([web.get("/healthz", healthz)])
    return app
