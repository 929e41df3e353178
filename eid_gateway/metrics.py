"""Prometheus metrics of one gateway node (prometheus-client), served at ``/metrics``.

Labels are drawn only from bounded, non-personal sets: service IDs and frontend names from the config,
the backend kind, failure kinds (the eID result minor codes mapped to :class:`FailureKind`), step and
route names. Flow references, IP addresses and anything read from a card never become labels.

The sign-in funnel is a counter per step (``eidgw_signin_steps_total``): started, start_page (shown
once per flow and node), tctoken (AusweisApp fetched the TC Token), refresh (the browser came back
after the card step), completed. Where citizens drop out is the difference between neighbouring
steps (PromQL in docs/deployment.md). Each app gets its own registry, so several gateway apps in one
process (tests) do not clash; other parts (kiosks) may register collectors on :attr:`registry`.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from eid_gateway.backends.base import (
    EidError,
    EidRequest,
    EidResultError,
    EidServer,
    EidServerUnavailable,
    EidSession,
    ResultNotReady,
    ServerInfo,
)
from eid_gateway.identity import Identity

STEPS: Final = ("started", "start_page", "tctoken", "refresh", "completed")
#: Route templates of the sign-in steps -> step label of the latency histogram.
STEP_ROUTES: Final = {
    "/saml/sso": "begin",
    "/oidc/authorize": "begin",
    "/oidc/token": "token",
    "/signin/{ref}": "start_page",
    "/eid/tctoken/{ref}": "tctoken",
    "/eid/refresh/{ref}": "refresh",
    "/eid/error/{ref}": "communication_error",
    "/eid/return/{ref}": "return",
    "/signin/{ref}/cancel": "cancel",
}
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SEEN_MAX: Final = 50_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The *_created series (one per label set, holding a start timestamp) double the output and are
# unused by the rules in docs/deployment.md.
disable_created_metrics()  # type: ignore[no-untyped-call]


class GatewayMetrics:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.started = Counter("eidgw_signins_started", "sign-ins begun", ["service", "frontend", "backend"],
                               registry=r)
        self.completed = Counter("eidgw_signins_completed", "sign-ins that released an identity",
                                 ["service", "frontend", "backend"], registry=r)
        self.failed = Counter("eidgw_signins_failed", "sign-ins that ended in a failure",
                              ["service", "frontend", "backend", "reason", "step"], registry=r)
        self.steps = Counter("eidgw_signin_steps", "sign-ins that reached a step (the funnel)",
                             ["service", "frontend", "step"], registry=r)
        self.signin_duration = Histogram("eidgw_signin_duration_seconds", "begin to released identity",
                                         ["service"], buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
                                         registry=r)
        self.step_duration = Histogram("eidgw_step_duration_seconds", "time the gateway spends per step",
                                       ["step"], buckets=_LATENCY_BUCKETS, registry=r)
        self.eid_calls = Histogram("eidgw_eid_server_call_seconds", "calls to the eID-Server",
                                   ["operation", "outcome"], buckets=_LATENCY_BUCKETS, registry=r)
        self.eid_up = Gauge("eidgw_eid_server_up", "1 when the last call reached the eID-Server", registry=r)
        self.limited = Counter("eidgw_rate_limited", "requests refused with 429", ["kind"], registry=r)
        self.unavailable = Counter("eidgw_store_unavailable", "requests answered 503: store unreachable",
                                   registry=r)
        self.audit_records = Counter("eidgw_audit_records", "audit records appended by this node", registry=r)
        self._seen_start: OrderedDict[str, None] = OrderedDict()

    # --- the flow's hooks ------------------------------------------------------------------------------

    def signin_started(self, service: str, frontend: str) -> None:
        self.started.labels(service, frontend, self.backend).inc()
        self.steps.labels(service, frontend, "started").inc()

    def step(self, service: str, frontend: str, step: str, ref: str | None = None) -> None:
        """Count a funnel step; with ``ref``, only the first time this node sees it for that flow."""
        if ref is not None:
            key = f"{step}\0{ref}"
            if key in self._seen_start:
                return
            self._seen_start[key] = None
            if len(self._seen_start) > _SEEN_MAX:
                self._seen_start.popitem(last=False)
        self.steps.labels(service, frontend, step).inc()

    def signin_completed(self, service: str, frontend: str, started_at: float | None) -> None:
        self.completed.labels(service, frontend, self.backend).inc()
        self.steps.labels(service, frontend, "completed").inc()
        if started_at is not None:
            self.signin_duration.labels(service).observe(max(0.0, time.time() - started_at))

    def signin_failed(self, service: str, frontend: str, reason: str, step: str) -> None:
        self.failed.labels(service, frontend, self.backend, reason, step).inc()

    # --- HTTP -----------------------------------------------------------------------------------------------

    def middleware(self) -> Middleware:
        """Latency per sign-in step (by route template; other routes are not timed)."""

        @web.middleware
        async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
            resource = request.match_info.route.resource
            step = STEP_ROUTES.get(resource.canonical) if resource is not None else None
            if step is None:
                return await handler(request)
            t0 = time.perf_counter()
            try:
                return await handler(request)
            finally:
                self.step_duration.labels(step).observe(time.perf_counter() - t0)

        return timing

    def handler(self, allow: Iterable[str]) -> Handler:
        networks = [ipaddress.ip_network(n, strict=False) for n in allow]

        async def metrics(request: web.Request) -> web.StreamResponse:
            try:
                peer = ipaddress.ip_address(request.remote or "")
            except ValueError:
                peer = None
            if peer is None or not any(peer in n for n in networks):
                raise web.HTTPForbidden()
            body = generate_latest(self.registry)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                    "Cache-Control": "no-store"})

        return metrics

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch_store(self, store: object) -> None:
        """Export the store's request count (``round_trips``), read at scrape time."""
        self.registry.register(_StoreCollector(store))


class _StoreCollector(Collector):
    def __init__(self, store: object) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        count = getattr(self.store, "round_trips", None)
        if isinstance(count, int):
            yield CounterMetricFamily("eidgw_store_round_trips", "requests this node sent to the store",
                                      value=float(count))


class MeteredEidServer:
    """The :class:`EidServer` port with call latency, outcome and reachability recorded."""

    def __init__(self, inner: EidServer, metrics: GatewayMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def _timed(self, operation: str, call: Awaitable[object]) -> object:
        t0 = time.perf_counter()
        outcome = "ok"
        try:
            return await call
        except ResultNotReady:
            outcome = "not_ready"
            raise
        except EidResultError as exc:
            outcome = exc.kind.value
            raise
        except EidServerUnavailable:
            outcome = "unavailable"
            raise
        except EidError:
            outcome = "protocol_error"
            raise
        except TimeoutError:
            outcome = "timeout"
            raise
        finally:
            self.metrics.eid_calls.labels(operation, outcome).observe(time.perf_counter() - t0)
            self.metrics.eid_up.set(0 if outcome in ("unavailable", "timeout") else 1)

    async def start_session(self, request: EidRequest) -> EidSession:
        result = await self._timed("useID", self.inner.start_session(request))
        assert isinstance(result, EidSession)
        return result

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        result = await self._timed("getResult", self.inner.fetch_result(session, request_counter))
        assert isinstance(result, Identity)
        return result

    async def server_info(self) -> ServerInfo:
        result = await self._timed("getServerInfo", self.inner.server_info())
        assert isinstance(result, ServerInfo)
        return result

    async def close(self) -> None:
        await self.inner.close()
