"""Prometheus metrics of one gateway node (prometheus-client), served at ``/metrics``.

Labels are drawn only from bounded, non-personal sets: service IDs and frontend names from the config,
the backend kind, failure kinds (the eID result minor codes mapped to :class:`FailureKind`), step and
route names. Flow references, IP addresses and anything read from a card never become labels.

The sign-in funnel is a counter per step (``eidgw_signin_steps_total``): started, start_page (shown
once per flow and node), tctoken (AusweisApp fetched the TC Token), refresh (the browser came back
after the card step), completed. Where citizens drop out is the difference between neighbouring
steps (PromQL in docs/deployment.md). Each app gets its own registry, so several gateway apps in one
process (tests) do not clash; other parts (kiosks) may register collectors on :attr:`registry`.

Several worker processes (``eid-gateway serve --workers N``) are one node to Prometheus: gunicorn's arbiter
(:mod:`eid_gateway.workers`) gives them prometheus-client's multi-process mode (``PROMETHEUS_MULTIPROC_DIR``,
a fresh directory per run), every value lives in a per-process file there, and whichever worker answers
``/metrics`` reads and adds up all of them. Collectors registered on :attr:`registry` would report one process
only and are not exported in that mode; the store's request count is copied into an ordinary counter instead.
The once-per-flow ``start_page`` step is counted once per flow and worker.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from eid_gateway.core.port import (
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
from eid_gateway.web.clients import OperatorRule

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

#: prometheus-client reads it when it is imported (a worker reads it again after the fork, see
#: eid_gateway.workers); the arbiter of ``serve --workers N`` sets it for its workers only.
MULTIPROC_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_ROUND_TRIPS: Final = ("eidgw_store_round_trips", "requests this node sent to the store")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The *_created series (one per label set, holding a start timestamp) double the output and are
# unused by the rules in docs/deployment.md.
disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess_dir() -> str | None:
    """The shared directory when this process is one of several workers, else ``None``.

    prometheus-client picks its value class once, at import, from the environment; that choice (not the
    environment now) decides whether values reach the directory, so both must agree.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV)
    return path if path and getattr(prometheus_values.ValueClass, "_multiprocess", False) else None


class GatewayMetrics:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        counter, histogram = partial(Counter, registry=r), partial(Histogram, registry=r)
        signin = ("service", "frontend", "backend")
        self.started = counter("eidgw_signins_started", "sign-ins begun", signin)
        self.completed = counter("eidgw_signins_completed", "sign-ins that released an identity", signin)
        self.failed = counter("eidgw_signins_failed", "sign-ins that ended in a failure", (*signin, "reason", "step"))
        self.steps = counter(
            "eidgw_signin_steps", "sign-ins that reached a step (the funnel)", ("service", "frontend", "step")
        )
        self.signin_duration = histogram(
            "eidgw_signin_duration_seconds",
            "begin to released identity",
            ["service"],
            buckets=(5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
        )
        self.step_duration = histogram(
            "eidgw_step_duration_seconds", "time the gateway spends per step", ["step"], buckets=_LATENCY_BUCKETS
        )
        self.eid_calls = histogram(
            "eidgw_eid_server_call_seconds",
            "calls to the eID-Server",
            ["operation", "outcome"],
            buckets=_LATENCY_BUCKETS,
        )
        # several workers: the value of whichever live worker called last
        self.eid_up = Gauge(
            "eidgw_eid_server_up",
            "1 when the last call reached the eID-Server",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.limited = counter("eidgw_rate_limited", "requests refused with 429", ["kind"])
        self.unavailable = counter("eidgw_store_unavailable", "requests answered 503: store unreachable")
        self.audit_records = counter("eidgw_audit_records", "audit records appended by this node")
        self._seen_start: OrderedDict[str, None] = OrderedDict()
        self._store: object = None  # multi-process: the watched store, its count copied into _round_trips
        self._round_trips: Counter | None = None
        self._round_trips_copied = 0

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

    def signin_completed(
        self, service: str, frontend: str, started_at: float | None, *, backend: str | None = None
    ) -> None:
        """``backend``: how the citizen signed in when not through the eID-Server (``"wallet"``)."""
        self.completed.labels(service, frontend, backend or self.backend).inc()
        self.steps.labels(service, frontend, "completed").inc()
        if started_at is not None:
            self.signin_duration.labels(service).observe(max(0.0, time.time() - started_at))

    def signin_failed(self, service: str, frontend: str, reason: str, step: str, *, backend: str | None = None) -> None:
        self.failed.labels(service, frontend, backend or self.backend, reason, step).inc()

    # --- HTTP -----------------------------------------------------------------------------------------------

    def middleware(self) -> Middleware:
        """Latency per sign-in step (by route template; other routes are not timed). With several workers
        also the store's request count, copied after each request so that any worker's scrape sees it."""

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

        @web.middleware
        async def timing_and_copy(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await timing(request, handler)
            finally:
                self._copy_round_trips()

        return timing_and_copy if self.multiprocess_dir is not None else timing

    def handler(self, access: OperatorRule) -> Handler:
        """``/metrics`` for the clients ``access`` permits (by forwarded address, not the TCP peer)."""

        async def metrics(request: web.Request) -> web.StreamResponse:
            if not access.permits(request):
                raise web.HTTPForbidden()
            return web.Response(
                body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
            )

        return metrics

    def render(self) -> bytes:
        """The exposition: this app's registry, or with several workers the sum over all of them."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        self._copy_round_trips()
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def watch_store(self, store: object) -> None:
        """Export the store's request count (``round_trips``): read at scrape time in one process; with
        several workers copied into a counter after each request (another worker may answer the scrape)."""
        if self.multiprocess_dir is None:
            self.registry.register(_StoreCollector(store))
            return
        self._store = store
        self._round_trips = Counter(*_ROUND_TRIPS, registry=self.registry)

    def _copy_round_trips(self) -> None:
        if self._round_trips is None:
            return
        count = getattr(self._store, "round_trips", None)
        if isinstance(count, int) and count > self._round_trips_copied:
            self._round_trips.inc(count - self._round_trips_copied)
            self._round_trips_copied = count


class _StoreCollector(Collector):
    def __init__(self, store: object) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        count = getattr(self.store, "round_trips", None)
        if isinstance(count, int):
            yield CounterMetricFamily(*_ROUND_TRIPS, value=float(count))


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
