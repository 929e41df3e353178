"""The citizen sign-in flow between a frontend (SAML, OIDC) and the eID-Server (TR-03124 / TR-03130).

States, each change a compare-and-set in the :class:`~eid_gateway.store.base.Store`::

    pending --tctoken--> starting --useID ok--> card --refresh (browser)--> fetching --> done
        \\                   \\--useID failed--> failed   \\--other browser--> failed  \\--> failed
         \\--cancel / communication error--> failed / returned       failed --return--> returned
    pending --wallet--> wallet --its answer--> wallet_verifying --checked--> wallet_verified --browser--> done
                                  (eid_gateway.wallet.web)        \\--refused / declined--> failed

A flow is bound to the browser that began it (a cookie holding a random value whose hash the flow
keeps); AusweisApp's own requests (TC Token, HEAD probes of the refresh URL) carry no such cookie, so
they can never complete or consume a flow. Another *browser* opening the refresh address after the card
step ends the flow as failed (a relayed sign-in, see :mod:`eid_gateway.web.navigation`): nothing that
happens in another browser may complete it. Logs name the flow only by a hash of its reference.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from aiohttp import web

from eid_gateway.config import GatewayConfig
from eid_gateway.core.port import (
    EidError,
    EidProtocolError,
    EidRequest,
    EidResultError,
    EidServer,
    EidSession,
    FailureKind,
    ResultNotReady,
)
from eid_gateway.core.refs import ref_hash
from eid_gateway.eid.results import refresh_failure_kind
from eid_gateway.eid.tctoken import CONTENT_TYPE as TC_TOKEN_CONTENT_TYPE
from eid_gateway.eid.tctoken import TcToken, build_error_tc_token, build_tc_token
from eid_gateway.frontends.base import FlowContext, FlowStart, Frontend
from eid_gateway.identity import Attribute, Identity, LevelOfAssurance
from eid_gateway.pseudonym import PseudonymError, derive_pseudonym
from eid_gateway.services import Service
from eid_gateway.store.base import FlowRecord, OnceClaim, Store
from eid_gateway.web.forms import read_form
from eid_gateway.web.i18n import FAILURE_TEXTS, LANGUAGES, chosen_language, negotiate_language
from eid_gateway.web.navigation import AUSWEISAPP_DOWNLOAD_URL, is_browser_navigation, is_phone
from eid_gateway.web.render import render_message, render_page, signin_data_context

if TYPE_CHECKING:
    from eid_gateway.audit import AuditTrail
    from eid_gateway.metrics import GatewayMetrics
    from eid_gateway.ratelimit import RateLimiter

log = logging.getLogger("eid_gateway.flow")

#: The AusweisApp's local activation endpoint (TR-03124) and the scheme that opens it on phones.
DESKTOP_CLIENT: Final = "http://127.0.0.1:24727/eID-Client"
MOBILE_CLIENT: Final = "eid://127.0.0.1:24727/eID-Client"

_REF: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # token_urlsafe(32): 256 random bits
_COOKIE_VALUE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_POLL_INTERVAL: Final = 0.25


class State:
    PENDING: Final = "pending"
    STARTING: Final = "starting"
    CARD: Final = "card"
    FETCHING: Final = "fetching"
    FAILED: Final = "failed"
    DONE: Final = "done"
    RETURNED: Final = "returned"
    #: The citizen chose the EUDI wallet (eid_gateway.wallet.web): pending --wallet--> wallet
    #: --response--> wallet_verifying --verified--> wallet_verified --browser picks up--> done.
    WALLET: Final = "wallet"
    WALLET_VERIFYING: Final = "wallet_verifying"
    WALLET_VERIFIED: Final = "wallet_verified"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii")).hexdigest()


# --- (de)serialising the parts of a flow kept in the store ---------------------------------------------------


def request_to_json(req: EidRequest) -> dict[str, Any]:
    return {
        "required": sorted(a.value for a in req.required),
        "optional": sorted(a.value for a in req.optional),
        "minimum_age": req.minimum_age,
        "community_id": req.community_id,
        "loa": req.level_of_assurance.name,
        "transaction_info": req.transaction_info,
    }


def request_from_json(data: Mapping[str, Any]) -> EidRequest:
    return EidRequest(
        required=frozenset(Attribute(v) for v in data["required"]),
        optional=frozenset(Attribute(v) for v in data["optional"]),
        minimum_age=data.get("minimum_age"),
        community_id=data.get("community_id"),
        level_of_assurance=LevelOfAssurance[data.get("loa") or "HIGH"],
        transaction_info=data.get("transaction_info"),
    )


def card_request(req: EidRequest) -> EidRequest:
    """What the card is asked for: the service's request plus the RestrictedID the gateway needs for
    the per-service pseudonym (the subject every frontend answers with). It is not released unless the
    service asked for and may receive ``pseudonym``; it only feeds the keyed hash."""
    if Attribute.PSEUDONYM in req.required:
        return req
    return EidRequest(
        required=req.required | {Attribute.PSEUDONYM},
        optional=req.optional - {Attribute.PSEUDONYM},
        minimum_age=req.minimum_age,
        community_id=req.community_id,
        level_of_assurance=req.level_of_assurance,
        transaction_info=req.transaction_info,
    )


def released_attributes(service: Service, req: EidRequest) -> frozenset[Attribute]:
    """Registration ∩ request: a service gets only what it may have *and* asked for."""
    return service.allowed_attributes & (req.required | req.optional)


def release_identity(identity: Identity, service: Service, req: EidRequest, secret: bytes) -> tuple[Identity, str]:
    """The minimised identity and the per-service pseudonym.

    The raw RestrictedID never leaves: in the released identity ``restricted_id`` holds the
    pseudonym (when the service may receive it) or nothing.
    """
    if identity.restricted_id is None:
        raise EidProtocolError("the eID-Server returned no RestrictedID")
    try:
        pseudonym = derive_pseudonym(secret, service.id, identity.restricted_id)
    except PseudonymError as exc:
        raise EidProtocolError(f"unusable RestrictedID: {exc}") from None
    allowed = released_attributes(service, req)
    minimised = identity.minimised(allowed)
    minimised = replace(minimised, restricted_id=pseudonym if Attribute.PSEUDONYM in allowed else None)
    return minimised, pseudonym


def session_to_json(s: EidSession) -> dict[str, Any]:
    """The session as stored: the PSK key stays out (it was needed once, for the TC Token)."""
    return {"session_id": s.session_id, "server_address": s.server_address, "psk_id": s.psk_id}


def session_from_json(data: Mapping[str, Any]) -> EidSession:
    return EidSession(
        session_id=data["session_id"],
        server_address=data["server_address"],
        psk_id=data.get("psk_id"),
        psk_key=None,
    )


@dataclass(frozen=True)
class FlowUrls:
    """The absolute URLs of one flow (TR-03124 wants absolute addresses in the TC Token)."""

    start: str
    tctoken: str
    refresh: str
    error: str


@dataclass(eq=False)
class FlowManager:
    """Implements :class:`~eid_gateway.frontends.base.FlowStarter` and serves the flow's endpoints."""

    config: GatewayConfig
    store: Store
    backend: EidServer
    frontends: dict[str, Frontend] = field(default_factory=dict)
    _: KW_ONLY
    #: A test card client the citizen pages link to (with the test banner): the backend's capability
    #: (eid_gateway.backends.registry), not a backend name the flow would test.
    test_client_path: str | None = None
    metrics: GatewayMetrics | None = None
    audit: AuditTrail | None = None
    limiter: RateLimiter | None = None

    @property
    def ttl(self) -> float:
        """A flow's lifetime in the store (seconds)."""
        return float(self.config.flow.ttl_seconds)

    @property
    def cookie_name(self) -> str:
        return "__Host-eidgw-browser" if self.config.secure_origin else "eidgw-browser"

    @property
    def backend_timeout(self) -> float:
        return self.config.eid_server.timeout_seconds + 2.0

    def add_frontend(self, frontend: Frontend) -> None:
        self.frontends[frontend.name] = frontend

    def urls(self, ref: str) -> FlowUrls:
        o = self.config.public_origin
        return FlowUrls(f"{o}/signin/{ref}", f"{o}/eid/tctoken/{ref}", f"{o}/eid/refresh/{ref}", f"{o}/eid/error/{ref}")

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/signin/{ref}", self.start_page, allow_head=False),
            web.post("/signin/{ref}/cancel", self.cancel),
            web.get("/eid/tctoken/{ref}", self.tc_token, allow_head=False),
            web.get("/eid/refresh/{ref}", self.refresh, allow_head=False),
            web.head("/eid/refresh/{ref}", self.refresh_probe),
            web.get("/eid/error/{ref}", self.communication_error, allow_head=False),
            web.head("/eid/error/{ref}", self.refresh_probe),
            web.post("/eid/return/{ref}", self.return_failure),
        ]

    # --- FlowStarter -----------------------------------------------------------------------------------------

    async def begin(self, request: web.Request, start: FlowStart) -> web.StreamResponse:
        service, frontend = start.service, start.frontend
        if frontend not in self.frontends:
            raise RuntimeError(f"frontend {frontend!r} is not registered with the flow manager")
        if self.limiter is not None:
            limited = await self.limiter.check_start(request, service.id)
            if limited is not None:
                from eid_gateway.ratelimit import too_many_requests

                return too_many_requests(request, limited)
        ref = secrets.token_urlsafe(32)
        browser = request.cookies.get(self.cookie_name, "")
        new_cookie = not _COOKIE_VALUE.fullmatch(browser)
        if new_cookie:
            browser = secrets.token_urlsafe(32)
        data = {
            "service": service.id,
            "frontend": frontend,
            "frontend_state": dict(start.frontend_state),
            "request": request_to_json(start.eid_request),
            "language": negotiate_language(request),
            "browser": _digest(browser),
            "csrf": secrets.token_urlsafe(24),
            "counter": 0,
            "started_at": round(time.time(), 3),
        }
        if request.query.get("method") == "wallet":  # the service's hint (like lang): offer the wallet first
            data["method"] = "wallet"
        await self.store.create_flow(ref, State.PENDING, data, self.ttl)
        if self.metrics is not None:
            self.metrics.signin_started(service.id, frontend)
        log.info("flow begun flow=%s service=%s frontend=%s", ref_hash(ref), service.id, frontend)
        response = web.Response(status=303, headers={"Location": f"/signin/{ref}", "Cache-Control": "no-store"})
        if new_cookie:
            response.set_cookie(
                self.cookie_name,
                browser,
                path="/",
                httponly=True,
                samesite="Lax",
                secure=self.config.secure_origin,
            )
        return response

    # --- helpers -------------------------------------------------------------------------------------------------

    def language(self, request: web.Request, flow: FlowRecord | None) -> str:
        """A language chosen since (switch, cookie) before the one the flow began in."""
        chosen = chosen_language(request)
        if chosen is not None:
            return chosen
        if flow is not None and flow.data.get("language") in LANGUAGES:
            return str(flow.data["language"])
        return negotiate_language(request)

    def same_browser(self, request: web.Request, flow: FlowRecord) -> bool:
        cookie = request.cookies.get(self.cookie_name, "")
        if not _COOKIE_VALUE.fullmatch(cookie):
            return False
        return hmac.compare_digest(_digest(cookie), str(flow.data.get("browser", "")))

    async def flow_of(self, request: web.Request) -> FlowRecord | None:
        ref = request.match_info["ref"]
        if not _REF.fullmatch(ref):
            return None
        return await self.store.get_flow(ref)

    def service_of(self, flow: FlowRecord) -> Service:
        service = self.config.services.by_id(str(flow.data["service"]))
        if service is None:  # the registry changed under a running flow (restart with a new config)
            raise RuntimeError("service of a pending flow is no longer registered")
        return service

    def context_of(self, flow: FlowRecord, lang: str) -> FlowContext:
        state = flow.data.get("frontend_state") or {}
        return FlowContext(flow.ref, self.service_of(flow), {str(k): str(v) for k, v in state.items()}, lang)

    def frontend_of(self, flow: FlowRecord) -> Frontend:
        name = str(flow.data["frontend"])
        if name not in self.frontends:
            raise RuntimeError(f"frontend {name!r} of a pending flow is not available")
        return self.frontends[name]

    def not_found_page(self, request: web.Request) -> web.Response:
        return render_message(request, "not_found_title", "not_found_text", status=404)

    def message_page(
        self, request: web.Request, flow: FlowRecord | None, title_key: str, text_key: str, *, status: int
    ) -> web.Response:
        """A page with a heading and one paragraph, in the flow's language (:meth:`language`)."""
        return render_message(request, title_key, text_key, status=status, lang=self.language(request, flow))

    def used_page(self, request: web.Request, flow: FlowRecord | None) -> web.Response:
        return self.message_page(request, flow, "used_title", "used_text", status=410)

    def wrong_browser_page(self, request: web.Request, flow: FlowRecord) -> web.Response:
        return self.message_page(request, flow, "wrong_browser_title", "wrong_browser_text", status=403)

    def failure_page(self, request: web.Request, flow: FlowRecord, kind: FailureKind) -> web.Response:
        lang = self.language(request, flow)
        title, body = FAILURE_TEXTS[kind][lang]
        return render_page(
            request,
            "failure.html",
            lang=lang,
            failure_title=title,
            failure_text=body,
            return_url=f"/eid/return/{flow.ref}?lang={lang}",
            csrf_token=flow.data["csrf"],
            test_client=self.test_client_path is not None,
        )

    async def csrf_ok(self, request: web.Request, flow: FlowRecord) -> bool:
        """Whether the form carries the flow's token; a malformed body raises FormError (a 400 page)."""
        token = (await read_form(request)).get("csrf_token")
        return token is not None and hmac.compare_digest(token.encode(), str(flow.data["csrf"]).encode())

    async def posted_flow(self, request: web.Request) -> FlowRecord | web.Response:
        """The flow a citizen's form (cancel, return) posts to, or the page that refuses the post: unknown
        flow, another browser, or no valid CSRF token."""
        flow = await self.flow_of(request)
        if flow is None:
            return self.not_found_page(request)
        if not self.same_browser(request, flow):
            return self.wrong_browser_page(request, flow)
        if not await self.csrf_ok(request, flow):
            return render_message(request, "csrf_title", "csrf_text", status=403)
        return flow

    async def _ended(
        self,
        flow: FlowRecord,
        result: str,
        step: str,
        *,
        attributes: frozenset[Attribute] = frozenset(),
        pseudonym: str | None = None,
    ) -> None:
        """Metrics and the audit record of a sign-in that reached its end (success or failure)."""
        service, frontend = str(flow.data["service"]), str(flow.data["frontend"])
        backend = "wallet" if "wallet" in flow.data else None  # the EUDI wallet's sign-ins, else the eID-Server
        if self.audit is not None:
            await self.audit.record(
                self.audit.make(
                    service=service,
                    frontend=frontend,
                    result=result,
                    flow_ref=flow.ref,
                    attributes=(a.value for a in attributes),
                    pseudonym=pseudonym,
                    backend=backend,
                )
            )
            if self.metrics is not None:
                self.metrics.audit_records.inc()
        if self.metrics is None:
            return
        if result == "success":
            started = flow.data.get("started_at")
            self.metrics.signin_completed(
                service, frontend, float(started) if started is not None else None, backend=backend
            )
        else:
            self.metrics.signin_failed(service, frontend, result, step, backend=backend)

    def count_step(self, flow: FlowRecord, step: str, once: bool = False) -> None:
        if self.metrics is not None:
            self.metrics.step(str(flow.data["service"]), str(flow.data["frontend"]), step, flow.ref if once else None)

    async def _miss(self, request: web.Request, kind: str) -> web.Response | None:
        """Count a TC Token / refresh request that moved no flow; a 429 once over the limit."""
        if self.limiter is None:
            return None
        limited = await self.limiter.count_miss(request, kind)
        if limited is None:
            return None
        from eid_gateway.ratelimit import too_many_requests

        return too_many_requests(request, limited)

    def _blocked(self, request: web.Request, kind: str) -> web.Response | None:
        limited = self.limiter.blocked(request, kind) if self.limiter is not None else None
        if limited is None:
            return None
        from eid_gateway.ratelimit import too_many_requests

        return too_many_requests(request, limited)

    async def mark_failed(self, flow: FlowRecord, from_state: str, kind: FailureKind) -> FlowRecord | None:
        moved = await self.store.transition(flow.ref, from_state, State.FAILED, {"failure": kind.value})
        if moved is not None:
            log.info("flow failed flow=%s service=%s result=%s", ref_hash(flow.ref), flow.data["service"], kind.value)
            await self._ended(moved, kind.value, _FAILED_AT.get(from_state, from_state))
        return moved

    # --- GET /signin/{ref} -----------------------------------------------------------------------------------

    async def start_page(self, request: web.Request) -> web.StreamResponse:
        flow = await self.flow_of(request)
        if flow is None:
            return self.not_found_page(request)
        if not self.same_browser(request, flow):
            return self.wrong_browser_page(request, flow)
        if flow.state == State.FAILED:
            return self.failure_page(request, flow, FailureKind(flow.data["failure"]))
        if flow.state in (State.WALLET, State.WALLET_VERIFYING, State.WALLET_VERIFIED):  # back from the wallet page
            return web.Response(
                status=303, headers={"Location": f"/signin/{flow.ref}/wallet", "Cache-Control": "no-store"}
            )
        if flow.state not in (State.PENDING, State.STARTING, State.CARD):
            return self.used_page(request, flow)
        if flow.state == State.PENDING:
            self.count_step(flow, "start_page", once=True)
        lang = self.language(request, flow)
        service = self.service_of(flow)
        req = request_from_json(flow.data["request"])
        urls = self.urls(flow.ref)
        token_param = quote(urls.tctoken, safe="")
        test_client_url = None
        if self.test_client_path is not None:
            test_client_url = f"{self.test_client_path}?tcTokenURL={token_param}"
        remaining = max(1, int((flow.expires_at - time.time()) // 60))
        wallet = self.config.wallet
        wallet_offered = wallet is not None and wallet.offers_for(service, req.level_of_assurance)
        return render_page(
            request,
            "signin.html",
            **signin_data_context(service, req, released_attributes(service, req), lang),
            desktop_url=f"{DESKTOP_CLIENT}?tcTokenURL={token_param}",
            mobile_url=f"{MOBILE_CLIENT}?tcTokenURL={token_param}",
            phone=is_phone(request.headers),
            status_url=f"{DESKTOP_CLIENT}?Status",  # TR-03124-1 status query: does AusweisApp answer?
            download_url=AUSWEISAPP_DOWNLOAD_URL,
            test_client_url=test_client_url,
            test_client=self.test_client_path is not None,
            ttl_minutes=remaining,
            cancel_url=f"/signin/{flow.ref}/cancel?lang={lang}",
            csrf_token=flow.data["csrf"],
            card="card" in service.methods,
            wallet_url=f"/signin/{flow.ref}/wallet?lang={lang}" if wallet_offered else None,
            wallet_first=wallet_offered and (flow.data.get("method") == "wallet" or "card" not in service.methods),
        )

    # --- POST /signin/{ref}/cancel --------------------------------------------------------------------------

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        flow = await self.posted_flow(request)
        if isinstance(flow, web.Response):
            return flow
        for from_state in (State.PENDING, State.CARD, State.STARTING, State.WALLET, State.FAILED):
            moved = await self.store.transition(
                flow.ref, from_state, State.RETURNED, {"failure": FailureKind.CANCELLED.value}
            )
            if moved is not None:
                log.info("flow cancelled flow=%s service=%s", ref_hash(flow.ref), flow.data["service"])
                if from_state != State.FAILED:  # a failed flow was recorded when it failed
                    await self._ended(moved, FailureKind.CANCELLED.value, _FAILED_AT.get(from_state, from_state))
                lang = self.language(request, moved)
                return await self.frontend_of(moved).fail(request, self.context_of(moved, lang), FailureKind.CANCELLED)
        return self.used_page(request, flow)

    # --- GET /eid/tctoken/{ref} ----------------------------------------------------------------------------

    def _tc_response(self, body: bytes) -> web.Response:
        response = web.Response(body=body, status=200)
        response.headers["Content-Type"] = TC_TOKEN_CONTENT_TYPE
        response.headers["Cache-Control"] = "no-store"
        return response

    async def tc_token(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["ref"]
        if not _REF.fullmatch(ref):
            return self._tc_response(build_error_tc_token(self.config.url("/eid/error/invalid")))
        blocked = self._blocked(request, "tctoken")
        if blocked is not None:
            return blocked
        urls = self.urls(ref)

        def error_token() -> web.Response:  # built only when needed: it is XML, checked like any TC Token
            return self._tc_response(build_error_tc_token(urls.error))

        # The compare-and-set PENDING -> STARTING is the one-time use of the TC Token reference: the
        # state never returns to PENDING, so a replay (on any node) finds nothing to move.
        flow = await self.store.transition(ref, State.PENDING, State.STARTING)
        if flow is None:
            log.info("tc token for unknown, expired or moved flow flow=%s", ref_hash(ref))
            return await self._miss(request, "tctoken") or error_token()
        self.count_step(flow, "tctoken")
        if "card" not in self.service_of(flow).methods:  # a wallet-only service: no card step, whoever asks
            log.warning("tc token for a service without the card flow=%s", ref_hash(ref))
            await self.mark_failed(flow, State.STARTING, FailureKind.SERVER_ERROR)
            return error_token()
        req = card_request(request_from_json(flow.data["request"]))
        try:
            async with asyncio.timeout(self.backend_timeout):
                session = await self.backend.start_session(req)
        except (EidError, TimeoutError) as exc:
            kind = FailureKind.SERVER_ERROR
            if isinstance(exc, EidResultError):
                kind = exc.kind
            log.warning(
                "useID failed flow=%s service=%s error=%s", ref_hash(ref), flow.data["service"], type(exc).__name__
            )
            await self.mark_failed(flow, State.STARTING, kind)
            return error_token()
        moved = await self.store.transition(
            ref,
            State.STARTING,
            State.CARD,
            {"session": session_to_json(session), "counter": 0},
            once=OnceClaim("eid_session", session.session_id, self.ttl),
        )
        if moved is None:
            # Either the eID-Server handed out a session ID it had used before, or the flow moved.
            log.error("eID session refused (reused session ID or moved flow) flow=%s", ref_hash(ref))
            await self.mark_failed(flow, State.STARTING, FailureKind.SERVER_ERROR)
            return error_token()
        token = build_tc_token(
            TcToken(
                server_address=session.server_address,
                session_identifier=session.psk_id or session.session_id,
                refresh_address=urls.refresh,
                communication_error_address=urls.error,
                psk=session.psk_key,
            )
        )
        log.info("tc token issued flow=%s service=%s", ref_hash(ref), flow.data["service"])
        return self._tc_response(token)

    # --- GET|HEAD /eid/refresh/{ref} ---------------------------------------------------------------------------

    async def refresh_probe(self, request: web.Request) -> web.StreamResponse:
        """AusweisApp's HEAD check of a refresh / error URL's TLS certificate: answer, change nothing."""
        return web.Response(status=200, headers={"Cache-Control": "no-store"})

    async def refresh(self, request: web.Request) -> web.StreamResponse:
        blocked = self._blocked(request, "refresh")
        if blocked is not None:
            return blocked
        flow = await self.flow_of(request)
        if flow is None:
            return await self._miss(request, "refresh") or self.not_found_page(request)
        if not self.same_browser(request, flow):
            if is_browser_navigation(request.headers):
                return await self._other_browser(request, flow)
            # AusweisApp's own requests (following redirects) carry no browser cookie: they change nothing.
            return self.wrong_browser_page(request, flow)
        if flow.state == State.FAILED:
            return self.failure_page(request, flow, FailureKind(flow.data["failure"]))
        client_kind: FailureKind | None = None
        if request.query.get("ResultMajor") == "error":
            client_kind = refresh_failure_kind(request.query.get("ResultMinor"))
        if flow.state == State.PENDING:
            # The TC Token was never fetched: the client failed before reaching us.
            moved = await self.mark_failed(flow, State.PENDING, client_kind or FailureKind.COMMUNICATION)
            return self.failure_page(request, moved or flow, client_kind or FailureKind.COMMUNICATION)
        # CARD -> FETCHING is the one-time use of the refresh: the state never returns to CARD.
        fetching = await self.store.transition(flow.ref, State.CARD, State.FETCHING)
        if fetching is None:
            return self.used_page(request, flow)
        self.count_step(fetching, "refresh")
        return await self._complete(request, fetching, client_kind)

    async def _other_browser(self, request: web.Request, flow: FlowRecord) -> web.StreamResponse:
        """A browser that did not begin the flow opens its refresh address.

        Once the card step may have happened (the TC Token was handed out) this is what a relayed
        sign-in looks like: an attacker began the flow and sent the AusweisApp link to a victim, whose
        AusweisApp then sends the victim's browser here. The flow ends as failed, so that the browser
        that began it (the attacker's) can never complete it; that browser is told why, the service gets
        an error, and this browser a warning. Before the card step nothing is at stake and nothing changes.
        """
        for from_state in (State.CARD, State.FETCHING):
            if await self.mark_failed(flow, from_state, FailureKind.OTHER_BROWSER) is not None:
                log.warning(
                    "refresh opened in another browser after the card step; flow ended flow=%s service=%s",
                    ref_hash(flow.ref),
                    flow.data["service"],
                )
                return self.message_page(request, flow, "relay_title", "relay_text", status=403)
        current = await self.store.get_flow(flow.ref)
        if current is not None and current.state in (State.DONE, State.RETURNED):
            log.warning(
                "refresh opened in another browser after the result was handed over flow=%s service=%s",
                ref_hash(flow.ref),
                flow.data["service"],
            )
            return self.used_page(request, current)
        return self.wrong_browser_page(request, current or flow)

    async def _hold(self, ref: str, seconds: float) -> None:
        """Wait up to ``seconds`` while the flow stays in FETCHING (it may be ended meanwhile)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(_POLL_INTERVAL, left))
            current = await self.store.get_flow(ref)
            if current is None or current.state != State.FETCHING:
                return

    async def _fetch(self, flow: FlowRecord, wait: float) -> tuple[Identity, int]:
        """getResult, repeated while the server has no result yet (for at most ``wait`` seconds)."""
        session = session_from_json(flow.data["session"])
        counter = int(flow.data.get("counter", 0))
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            counter += 1
            try:
                async with asyncio.timeout(self.backend_timeout):
                    return await self.backend.fetch_result(session, counter), counter
            except ResultNotReady:
                if asyncio.get_running_loop().time() + _POLL_INTERVAL > deadline:
                    raise _NotReadyAfter(counter) from None
                await asyncio.sleep(_POLL_INTERVAL)
            except (EidError, TimeoutError) as exc:
                raise _FetchFailed(counter, exc) from None

    async def _complete(
        self, request: web.Request, flow: FlowRecord, client_kind: FailureKind | None
    ) -> web.StreamResponse:
        service = self.service_of(flow)
        req = request_from_json(flow.data["request"])
        kind: FailureKind
        try:
            # When the client already reported a failure, ask once: the server may know more precisely
            # (wrong PIN vs. cancel), but there is no result to wait for.
            wait = 0.0 if client_kind is not None else self.config.flow.result_wait_seconds
            identity, counter = await self._fetch(flow, wait)
        except _NotReadyAfter as exc:
            kind, counter = client_kind or FailureKind.TIMEOUT, exc.counter
            log.info("no result in time flow=%s service=%s", ref_hash(flow.ref), service.id)
        except _FetchFailed as exc:
            counter = exc.counter
            kind = exc.cause.kind if isinstance(exc.cause, EidResultError) else FailureKind.SERVER_ERROR
            log.warning(
                "getResult failed flow=%s service=%s error=%s result=%s",
                ref_hash(flow.ref),
                service.id,
                type(exc.cause).__name__,
                kind.value,
            )
        else:
            try:
                released, pseudonym = release_identity(identity, service, req, self.config.keys.pseudonym_secret)
            except EidProtocolError as exc:
                kind = FailureKind.SERVER_ERROR
                log.error(
                    "unusable eID result flow=%s service=%s error=%s",
                    ref_hash(flow.ref),
                    service.id,
                    type(exc).__name__,
                )
            else:
                if counter > int(flow.data.get("counter", 0)) + 1:
                    # The result came only while this request waited, so this browser arrived before the
                    # card step ended, which AusweisApp never sends a browser to do: hold the result
                    # briefly, so that a relayed sign-in's other browser (sent here by AusweisApp right
                    # after the card step) can still end the flow before anything is released.
                    await self._hold(flow.ref, self.config.flow.late_result_grace_seconds)
                return await self.succeed(
                    request, flow, State.FETCHING, released, pseudonym, step="refresh", changes={"counter": counter}
                )
        return await self.end_failed(request, flow, State.FETCHING, kind, step="refresh", changes={"counter": counter})

    # --- the two endings every way in shares (card refresh, wallet) -------------------------------------------

    async def succeed(
        self,
        request: web.Request,
        flow: FlowRecord,
        from_state: str,
        released: Identity,
        pseudonym: str,
        *,
        step: str,
        changes: Mapping[str, Any] | None = None,
    ) -> web.StreamResponse:
        """Hand ``released`` (already minimised, :func:`release_identity`) to the service: the one-time
        compare-and-set ``from_state`` -> DONE (with ``changes``, e.g. removing what waited for the
        browser), the audit record before anything is released (the trail fails closed), the frontend's
        answer. A flow that moved meanwhile (ended by another browser, used) releases nothing."""
        service = self.service_of(flow)
        attributes = released_attributes(service, request_from_json(flow.data["request"]))
        done = await self.store.transition(flow.ref, from_state, State.DONE, changes)
        if done is None:
            current = await self.store.get_flow(flow.ref)
            if current is not None and current.state == State.FAILED:
                return self.failure_page(request, current, FailureKind(current.data["failure"]))
            return self.used_page(request, flow)
        await self._ended(done, "success", step, attributes=attributes, pseudonym=pseudonym)
        log.info("flow succeeded flow=%s service=%s attributes=%d", ref_hash(flow.ref), service.id, len(attributes))
        lang = self.language(request, flow)
        return await self.frontend_of(flow).finish(request, self.context_of(flow, lang), released, pseudonym)

    async def end_failed(
        self,
        request: web.Request,
        flow: FlowRecord,
        from_state: str,
        kind: FailureKind,
        *,
        step: str,
        changes: Mapping[str, Any] | None = None,
    ) -> web.StreamResponse:
        """End the flow as failed (``from_state`` -> FAILED, recorded and counted once) and show the
        citizen the failure page, whose button returns the error to the service (POST /eid/return)."""
        failed = await self.store.transition(
            flow.ref, from_state, State.FAILED, {**(changes or {}), "failure": kind.value}
        )
        if failed is not None:
            await self._ended(failed, kind.value, step)
        log.info("flow failed flow=%s service=%s result=%s", ref_hash(flow.ref), flow.data["service"], kind.value)
        return self.failure_page(request, failed or flow, kind)

    # --- GET /eid/error/{ref} (CommunicationErrorAddress) --------------------------------------------------

    async def communication_error(self, request: web.Request) -> web.StreamResponse:
        flow = await self.flow_of(request)
        if flow is None:
            return render_message(request, "comm_error_title", "comm_error_text", status=200)
        if not self.same_browser(request, flow):
            return self.message_page(request, flow, "comm_error_title", "comm_error_text", status=200)
        if flow.state == State.FAILED:
            return self.failure_page(request, flow, FailureKind(flow.data["failure"]))
        kind = FailureKind.COMMUNICATION
        if request.query.get("ResultMajor") == "error" and request.query.get("ResultMinor"):
            kind = refresh_failure_kind(request.query.get("ResultMinor"))
        for from_state in (State.PENDING, State.STARTING, State.CARD):
            moved = await self.mark_failed(flow, from_state, kind)
            if moved is not None:
                return self.failure_page(request, moved, kind)
        return self.used_page(request, flow)

    # --- POST /eid/return/{ref} -------------------------------------------------------------------------------

    async def return_failure(self, request: web.Request) -> web.StreamResponse:
        flow = await self.posted_flow(request)
        if isinstance(flow, web.Response):
            return flow
        moved = await self.store.transition(flow.ref, State.FAILED, State.RETURNED)
        if moved is None:
            return self.used_page(request, flow)
        kind = FailureKind(moved.data["failure"])
        lang = self.language(request, moved)
        return await self.frontend_of(moved).fail(request, self.context_of(moved, lang), kind)


#: The funnel step at which a flow leaving ``state`` for FAILED stopped (the failure metric's label).
_FAILED_AT: Final = {
    State.PENDING: "start_page",
    State.STARTING: "tctoken",
    State.CARD: "card",
    State.FETCHING: "refresh",
    State.WALLET: "wallet",
    State.WALLET_VERIFYING: "wallet_response",
}


class _NotReadyAfter(Exception):
    def __init__(self, counter: int):
        self.counter = counter


class _FetchFailed(Exception):
    def __init__(self, counter: int, cause: BaseException):
        self.counter = counter
        self.cause = cause
