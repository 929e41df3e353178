"""The wallet sign-in's routes: thin aiohttp handlers around the pure verifier (see docs/wallet.md).

The citizen chooses the wallet on the start page (``POST /signin/{ref}/wallet``, CSRF); the flow moves
``pending -> wallet`` and gets a transaction id ``tx`` (random, not the flow reference: the reference is
a bearer secret bound to the browser, ``tx`` travels through the wallet and the QR code). The wallet
page (``GET /signin/{ref}/wallet``) links the wallet on this device and shows the same request as a QR
code for a wallet on another. The wallet fetches the signed request object (``GET /wallet/request/{tx}``)
and posts its encrypted answer (``POST /wallet/response/{tx}``, direct_post.jwt): one answer per flow
(``wallet -> wallet_verifying``, a compare-and-set), checked, and the verified PID waits in the flow
record, sealed, until the browser that began the flow picks it up (``GET /wallet/done/{tx}`` after the
same-device redirect, or the wallet page's "Continue"): then it is released through the flow's one
success path (:meth:`FlowManager.succeed`) and removed. Failures end the flow through the flow's failure
path; the citizen sees why, the service gets a protocol error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, Final

import segno
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from eid_gateway.core.port import FailureKind
from eid_gateway.core.refs import ref_hash
from eid_gateway.flow import FlowManager, State, release_identity, released_attributes, request_from_json
from eid_gateway.frontends.oidc.sealed import SealError, seal, unseal
from eid_gateway.identity import Attribute
from eid_gateway.store.base import FlowRecord, OnceClaim
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.errors import PresentationRejected, RejectReason, StatusUnavailable, WalletCancelled
from eid_gateway.wallet.mapping import MappingError, identity_from_pid
from eid_gateway.wallet.request import (
    REQUEST_CONTENT_TYPE,
    build_request_object,
    client_id_for,
    invocation_url,
    new_response_key,
)
from eid_gateway.wallet.response import read_form as read_wallet_form
from eid_gateway.wallet.sdjwt import VerifiedPid, verify_presentation
from eid_gateway.wallet.settings import WalletSettings
from eid_gateway.wallet.status_fetch import StatusListFetcher
from eid_gateway.wallet.statuslist import check_status
from eid_gateway.web.forms import FormError, read_form
from eid_gateway.web.render import render_page, signin_data_context

log = logging.getLogger("eid_gateway.wallet")

#: Store namespaces: transaction id -> flow reference; presentations accepted once (their SHA-256).
TX_NAMESPACE: Final = "wallet_tx"
REPLAY_NAMESPACE: Final = "wallet_vp"
_TX: Final = re.compile(r"[A-Za-z0-9_-]{43}")
#: How long "Continue" (without JavaScript) and the page script's status request wait for the wallet.
CHECK_WAIT_SECONDS: Final = 8.0
STATUS_WAIT_SECONDS: Final = 20.0
_POLL: Final = 0.25
_WAITING: Final = (State.WALLET, State.WALLET_VERIFYING)
#: Which check refused a presentation -> what the citizen reads and the service is told.
_REJECTED_KIND: Final = {
    RejectReason.EXPIRED: FailureKind.CREDENTIAL_EXPIRED,
    RejectReason.REVOKED: FailureKind.CREDENTIAL_REVOKED,
    RejectReason.STATUS_UNAVAILABLE: FailureKind.CREDENTIAL_STATUS_UNKNOWN,
}
_JSON_HEADERS: Final = {"Cache-Control": "no-store"}


@dataclass(eq=False, repr=False)  # routes, not a value
class WalletRoutes:
    """The wallet sign-in of one gateway: its routes, bound to the flow manager and ``[wallet]``."""

    flows: FlowManager
    settings: WalletSettings
    _: KW_ONLY
    fetcher: StatusListFetcher
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.client_id = client_id_for(self.settings.signing.certificate)
        self.chain = [self.settings.signing.certificate, *self.settings.signing.chain]
        # The key the waiting PID is sealed under: derived from a gateway secret the store never holds.
        secret = self.flows.config.keys.pseudonym_secret
        self._seal_key = hmac.new(secret, b"eid-gateway wallet seal v1", "sha256").digest()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/signin/{ref}/wallet", self.choose),
            web.get("/signin/{ref}/wallet", self.page, allow_head=False),
            web.get("/signin/{ref}/wallet/status", self.status, allow_head=False),
            web.get("/wallet/request/{tx}", self.request_object, allow_head=False),
            web.post("/wallet/response/{tx}", self.response),
            web.get("/wallet/done/{tx}", self.done, allow_head=False),
        ]

    # --- helpers ---------------------------------------------------------------------------------------------

    def _seal_secret(self, ref: str) -> str:
        return hmac.new(self._seal_key, ref.encode("ascii"), "sha256").hexdigest()

    def _url(self, path: str) -> str:
        return self.flows.config.url(path)

    async def _flow_of_tx(self, tx: str) -> FlowRecord | None:
        if not _TX.fullmatch(tx):
            return None
        ref = await self.flows.store.get_value(TX_NAMESPACE, tx)
        if ref is None:
            return None
        flow = await self.flows.store.get_flow(ref)
        if flow is None or not isinstance(flow.data.get("wallet"), Mapping) or flow.data["wallet"].get("tx") != tx:
            return None
        return flow

    def _browser_flow(
        self, request: web.Request, flow: FlowRecord | None, *, warn: bool = False
    ) -> FlowRecord | web.Response:
        """``flow`` if there is one and this browser began it, else the page that says which it is not
        (``warn``: another browser's visit is logged, for the wallet's return address)."""
        if flow is None:
            return self.flows.not_found_page(request)
        if not self.flows.same_browser(request, flow):
            if warn:
                log.warning("wallet return opened in another browser flow=%s", ref_hash(flow.ref))
            return self.flows.wrong_browser_page(request, flow)
        return flow

    async def _wait_for_change(self, ref: str, seconds: float) -> FlowRecord | None:
        """The flow once it has left the waiting states, or as it is after ``seconds`` (polls the store,
        which every node shares, so the wallet's answer may arrive at any node)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            current = await self.flows.store.get_flow(ref)
            if current is None or current.state not in _WAITING:
                return current
            left = deadline - loop.time()
            if left <= 0:
                return current
            await asyncio.sleep(min(_POLL, left))

    # --- POST /signin/{ref}/wallet (the start page's choice) ---------------------------------------------

    async def choose(self, request: web.Request) -> web.StreamResponse:
        flows = self.flows
        flow = await flows.posted_flow(request)
        if isinstance(flow, web.Response):
            return flow
        lang = flows.language(request, flow)
        page = f"/signin/{flow.ref}/wallet?lang={lang}"
        if flow.state in (*_WAITING, State.WALLET_VERIFIED):  # chosen before (a second click)
            return _see_other(page)
        service = flows.service_of(flow)
        if not self.settings.offers_for(service, request_from_json(flow.data["request"]).level_of_assurance):
            return flows.not_found_page(request)
        tx = secrets.token_urlsafe(32)
        private_jwk, public_jwk = new_response_key()
        transaction = {
            "tx": tx,
            "nonce": secrets.token_urlsafe(32),
            "state": secrets.token_urlsafe(32),
            "key": private_jwk,
            "jwk": public_jwk,
        }
        remaining = max(1.0, flow.expires_at - self.clock())
        await flows.store.put_value(TX_NAMESPACE, tx, flow.ref, remaining)
        moved = await flows.store.transition(flow.ref, State.PENDING, State.WALLET, {"wallet": transaction})
        if moved is None:  # the card step began meanwhile, or the flow ended
            return flows.used_page(request, flow)
        flows.count_step(moved, "wallet", once=True)
        log.info("wallet chosen flow=%s service=%s", ref_hash(flow.ref), service.id)
        return _see_other(page)

    # --- GET /signin/{ref}/wallet, GET /wallet/done/{tx}: waiting, and the pick-up ------------------------

    async def page(self, request: web.Request) -> web.StreamResponse:
        flow = self._browser_flow(request, await self.flows.flow_of(request))
        if isinstance(flow, web.Response):
            return flow
        checked = request.query.get("check") == "1"
        if checked and flow.state in _WAITING:
            flow = await self._wait_for_change(flow.ref, CHECK_WAIT_SECONDS) or flow
        return await self._show(request, flow, not_yet=checked)

    async def done(self, request: web.Request) -> web.StreamResponse:
        """Where the wallet on this device sends the browser back: only the browser that began the flow
        picks the result up (the cookie check of the card's refresh address, flow.py)."""
        flow = self._browser_flow(request, await self._flow_of_tx(request.match_info["tx"]), warn=True)
        if isinstance(flow, web.Response):
            return flow
        if flow.state == State.WALLET_VERIFYING:  # the wallet's request is still being checked
            flow = await self._wait_for_change(flow.ref, CHECK_WAIT_SECONDS) or flow
        return await self._show(request, flow, not_yet=False)

    async def _show(self, request: web.Request, flow: FlowRecord, *, not_yet: bool) -> web.StreamResponse:
        flows = self.flows
        if flow.state == State.FAILED:
            return flows.failure_page(request, flow, FailureKind(flow.data["failure"]))
        if flow.state == State.WALLET_VERIFIED:
            return await self._pick_up(request, flow)
        if flow.state == State.PENDING:
            return _see_other(f"/signin/{flow.ref}")
        if flow.state not in _WAITING:
            return flows.used_page(request, flow)
        return self._wallet_page(request, flow, not_yet=not_yet)

    def _wallet_page(self, request: web.Request, flow: FlowRecord, *, not_yet: bool) -> web.Response:
        flows = self.flows
        lang = flows.language(request, flow)
        service = flows.service_of(flow)
        req = request_from_json(flow.data["request"])
        tx = str(flow.data["wallet"]["tx"])
        request_uri = self._url(f"/wallet/request/{tx}")
        same_device = invocation_url(self.settings.invocation_url, self.client_id, request_uri + "?device=same")
        cross_device = invocation_url(self.settings.invocation_url, self.client_id, request_uri)
        qr = segno.make(cross_device, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=False)
        shown = [a for a in released_attributes(service, req) if a is not Attribute.PSEUDONYM]
        return render_page(
            request,
            "wallet.html",
            **signin_data_context(service, req, shown, lang),
            same_device_url=same_device,
            cross_device_url=cross_device,
            qr_svg=qr,
            check_url=f"/signin/{flow.ref}/wallet",
            status_url=f"/signin/{flow.ref}/wallet/status",
            not_yet=not_yet,
            cancel_url=f"/signin/{flow.ref}/cancel?lang={lang}",
            csrf_token=flow.data["csrf"],
        )

    async def _pick_up(self, request: web.Request, flow: FlowRecord) -> web.StreamResponse:
        """Release the waiting PID to the service through the flow's success path; the sealed PID leaves
        the store in the same compare-and-set that marks the flow done."""
        flows = self.flows
        service = flows.service_of(flow)
        req = request_from_json(flow.data["request"])
        try:
            waiting = json.loads(unseal(self._seal_secret(flow.ref), "wallet", str(flow.data["wallet_pid"])))
            pid = _pid_from_json(waiting["pid"])
            identity = identity_from_pid(
                pid,
                level_of_assurance=self.settings.level_of_assurance,
                authenticated_at=datetime.fromtimestamp(float(waiting["at"]), UTC),
                minimum_age=req.minimum_age,
            )
            released, pseudonym = release_identity(identity, service, req, flows.config.keys.pseudonym_secret)
        except (SealError, KeyError, ValueError, TypeError) as exc:  # not what this gateway sealed
            log.error("wallet result unusable flow=%s error=%s", ref_hash(flow.ref), type(exc).__name__)
            return await flows.end_failed(
                request, flow, State.WALLET_VERIFIED, FailureKind.SERVER_ERROR, step="wallet", changes=_FORGET
            )
        return await flows.succeed(
            request, flow, State.WALLET_VERIFIED, released, pseudonym, step="wallet", changes=_FORGET
        )

    # --- GET /signin/{ref}/wallet/status (the page script's long poll) -----------------------------------

    async def status(self, request: web.Request) -> web.StreamResponse:
        """``{"waiting": bool}`` once the wallet has answered (or after a while): the script then
        continues as the "Continue" button would. Changes nothing."""
        flows = self.flows
        flow = await flows.flow_of(request)
        if flow is None or not flows.same_browser(request, flow):
            return web.json_response({"waiting": False}, status=404, headers=_JSON_HEADERS)
        current = await self._wait_for_change(flow.ref, STATUS_WAIT_SECONDS)
        waiting = current is not None and current.state in _WAITING
        return web.json_response({"waiting": waiting}, headers=_JSON_HEADERS)

    # --- GET /wallet/request/{tx} (the wallet fetches the request object) --------------------------------

    async def request_object(self, request: web.Request) -> web.StreamResponse:
        flow = await self._flow_of_tx(request.match_info["tx"])
        if flow is None or flow.state != State.WALLET:
            return _oauth_error(404, "invalid_request_uri", "unknown, used or expired request")
        service = self.flows.service_of(flow)
        req = request_from_json(flow.data["request"])
        transaction = flow.data["wallet"]
        response_uri = self._url(f"/wallet/response/{transaction['tx']}")
        if request.query.get("device") == "same":
            response_uri += "?device=same"
        key = self.settings.signing.private_key
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # checked when [wallet] was read
        token = build_request_object(
            signing_key=key,
            chain=self.chain,
            client_id=self.client_id,
            response_uri=response_uri,
            nonce=str(transaction["nonce"]),
            state=str(transaction["state"]),
            dcql=dcql_query(
                released_attributes(service, req), minimum_age=req.minimum_age, vct_values=self.settings.vct_values
            ),
            response_jwk=dict(transaction["jwk"]),
            now=int(self.clock()),
            lifetime=self.settings.request_lifetime_seconds,
        )
        return web.Response(
            body=token.encode("ascii"), headers={"Content-Type": REQUEST_CONTENT_TYPE, "Cache-Control": "no-store"}
        )

    # --- POST /wallet/response/{tx} (direct_post.jwt) -----------------------------------------------------

    async def response(self, request: web.Request) -> web.StreamResponse:
        flows = self.flows
        flow = await self._flow_of_tx(request.match_info["tx"])
        if flow is None:
            return _oauth_error(404, "invalid_request", "unknown or expired transaction")
        try:
            form = {k: v for k, v in (await read_form(request)).items()}
        except FormError as exc:
            return _oauth_error(exc.status, "invalid_request", exc.reason)
        # One answer per flow: the compare-and-set wallet -> wallet_verifying.
        verifying = await flows.store.transition(flow.ref, State.WALLET, State.WALLET_VERIFYING)
        if verifying is None:
            log.warning("second wallet response refused flow=%s", ref_hash(flow.ref))
            return _oauth_error(400, "invalid_request", "this request was answered before")
        redirect = (
            {"redirect_uri": self._url(f"/wallet/done/{verifying.data['wallet']['tx']}")}
            if request.query.get("device") == "same"
            else {}
        )
        service = str(flow.data["service"])
        try:
            pid, presentation = await self._verify(form, verifying)
        except WalletCancelled as exc:
            log.info("wallet declined flow=%s service=%s error=%s", ref_hash(flow.ref), service, exc.error)
            await flows.mark_failed(verifying, State.WALLET_VERIFYING, FailureKind.WALLET_CANCELLED)
            return web.json_response(redirect, headers=_JSON_HEADERS)
        except PresentationRejected as exc:
            return await self._rejected(verifying, exc.reason, redirect)
        except StatusUnavailable:
            return await self._rejected(verifying, RejectReason.STATUS_UNAVAILABLE, redirect)
        try:  # the claims must map onto the one Identity (checked now, so the wallet hears of it)
            identity_from_pid(
                pid,
                level_of_assurance=self.settings.level_of_assurance,
                authenticated_at=datetime.now(UTC),
                minimum_age=request_from_json(flow.data["request"]).minimum_age,
            )
        except MappingError:
            return await self._rejected(verifying, RejectReason.MALFORMED, redirect)
        sealed = seal(
            self._seal_secret(flow.ref),
            "wallet",
            json.dumps({"pid": _pid_to_json(pid), "at": self.clock()}, separators=(",", ":")).encode("utf-8"),
        )
        digest = hashlib.sha256(presentation.encode("utf-8")).hexdigest()
        verified = await flows.store.transition(
            flow.ref,
            State.WALLET_VERIFYING,
            State.WALLET_VERIFIED,
            {"wallet_pid": sealed, "wallet": {**verifying.data["wallet"], "key": None}},
            once=OnceClaim(REPLAY_NAMESPACE, digest, flows.ttl),
        )
        if verified is None:  # this presentation was accepted before (a replay), or the flow ended
            return await self._rejected(verifying, RejectReason.REPLAY, redirect)
        log.info("wallet presentation verified flow=%s service=%s", ref_hash(flow.ref), service)
        return web.json_response(redirect, headers=_JSON_HEADERS)

    async def _verify(self, form: Mapping[str, str], flow: FlowRecord) -> tuple[VerifiedPid, str]:
        """The pure checks, with the status list fetched between them when the credential names one."""
        transaction = flow.data["wallet"]
        presentation = read_wallet_form(form, private_jwk_json=str(transaction["key"]), state=str(transaction["state"]))
        now = int(self.clock())
        pid = verify_presentation(
            presentation,
            trust=self.settings.trust,
            vct_values=self.settings.vct_values,
            nonce=str(transaction["nonce"]),
            audience=self.client_id,
            now=now,
            max_kb_age=self.settings.request_lifetime_seconds,
        )
        if pid.status is not None:
            token = await self.fetcher.fetch(pid.status.uri)
            check_status(token, pid.status, trust=self.settings.trust, now=now)
        return pid, presentation

    async def _rejected(self, flow: FlowRecord, reason: RejectReason, redirect: Mapping[str, str]) -> web.Response:
        kind = _REJECTED_KIND.get(reason, FailureKind.CREDENTIAL_REJECTED)
        log.warning(
            "wallet presentation refused flow=%s service=%s reason=%s",
            ref_hash(flow.ref),
            flow.data["service"],
            reason.value,
        )
        await self.flows.mark_failed(flow, State.WALLET_VERIFYING, kind)
        return web.json_response(
            {"error": "invalid_request", "error_description": reason.value, **redirect},
            status=400,
            headers=_JSON_HEADERS,
        )


#: What leaves the flow record when the result is handed over (or fails): the sealed PID and the key.
_FORGET: Final = {"wallet_pid": None}


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status, headers=_JSON_HEADERS)


def _pid_to_json(pid: VerifiedPid) -> dict[str, Any]:
    return {
        "claims": pid.claims,
        "vct": pid.vct,
        "issuer": pid.issuer,
        "iat": pid.issued_at,
        "exp": pid.expires_at,
        "holder": pid.holder_jwk_thumbprint,
    }


def _pid_from_json(data: Mapping[str, Any]) -> VerifiedPid:
    return VerifiedPid(
        claims=dict(data["claims"]),
        vct=str(data["vct"]),
        issuer=str(data["issuer"]),
        issued_at=data["iat"],
        expires_at=data["exp"],
        status=None,  # checked before it was sealed
        holder_jwk_thumbprint=str(data["holder"]),
    )
