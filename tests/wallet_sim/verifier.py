"""A minimal OpenID4VP verifier endpoint for the test wallet's own tests: it serves request objects made by
the gateway's ``eid_gateway.wallet.request`` and records (and decrypts) what the wallet posts back.
It checks nothing while it serves: the tests verify the recorded presentations (with the gateway's
verifier, :meth:`StubVerifier.verified`, and with the reference library's)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.jwk import ECKey

from certs.devpki import generate_ca, issue_certificate
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from eid_gateway.wallet.request import build_request_object, client_id_for, invocation_url, new_response_key
from eid_gateway.wallet.sdjwt import StatusRef, VerifiedPid
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet.verifier import verify_wallet_response
from saml.keys import KeyPair


@dataclass
class Transaction:
    nonce: str
    state: str
    private_jwk: str
    dcql: dict[str, Any]
    same_device: bool
    refuse: bool = False
    forms: list[dict[str, str]] = field(default_factory=list)

    def payload(self, index: int = -1) -> dict[str, Any]:
        """The decrypted ``response`` of the ``index``-th post (or its plain fields)."""
        form = self.forms[index]
        if "response" not in form:
            return dict(form)
        decrypted = jwe.decrypt_compact(form["response"], ECKey.import_key(json.loads(self.private_jwk)))
        result: dict[str, Any] = json.loads(decrypted.plaintext or b"")
        return result


@dataclass
class StubVerifier:
    signer: KeyPair
    base: str = ""
    transactions: dict[str, Transaction] = field(default_factory=dict)
    #: replace the served request object (tests of the wallet's request checks)
    override: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> StubVerifier:
        ca = generate_ca("stub verifier CA")
        return cls(issue_certificate(ca, "stub verifier (request signing)", server=False))

    @property
    def client_id(self) -> str:
        return client_id_for(self.signer.certificate)

    def verified(
        self, tx: str, trust: TrustList, status_token: Callable[[StatusRef], str] | None = None
    ) -> VerifiedPid:
        """The gateway's verifier over transaction ``tx``'s first post, as the gateway's route calls it."""
        t = self.transactions[tx]
        return verify_wallet_response(
            t.forms[0],
            private_jwk_json=t.private_jwk,
            state=t.state,
            nonce=t.nonce,
            client_id=self.client_id,
            trust=trust,
            vct_values=DEFAULT_VCT_VALUES,
            now=int(time.time()),
            status_token=status_token,
        )

    def begin(
        self, dcql: dict[str, Any], *, same_device: bool = True, wallet_base: str = "openid4vp://", refuse: bool = False
    ) -> tuple[str, str]:
        """A new transaction: (its id, the wallet invocation URL)."""
        tx = secrets.token_urlsafe(8)
        private, _ = new_response_key()
        self.transactions[tx] = Transaction(
            secrets.token_urlsafe(16), secrets.token_urlsafe(16), private, dcql, same_device, refuse
        )
        return tx, invocation_url(wallet_base, self.client_id, f"{self.base}/request/{tx}")

    def request_object(self, tx: str) -> str:
        t = self.transactions[tx]
        public = {k: v for k, v in json.loads(t.private_jwk).items() if k != "d"}
        assert isinstance(self.signer.private_key, ec.EllipticCurvePrivateKey)
        return build_request_object(
            signing_key=self.signer.private_key,
            chain=[self.signer.certificate],
            client_id=self.client_id,
            response_uri=f"{self.base}/response/{tx}",
            nonce=t.nonce,
            state=t.state,
            dcql=t.dcql,
            response_jwk=public,
            now=int(time.time()),
        )

    async def get_request(self, request: web.Request) -> web.Response:
        tx = request.match_info["tx"]
        if tx not in self.transactions:
            raise web.HTTPNotFound()
        text = self.override.get(tx) or self.request_object(tx)
        return web.Response(text=text, content_type="application/oauth-authz-req+jwt")

    async def post_response(self, request: web.Request) -> web.Response:
        tx = request.match_info["tx"]
        t = self.transactions.get(tx)
        if t is None:
            raise web.HTTPNotFound()
        t.forms.append({k: str(v) for k, v in (await request.post()).items()})
        if len(t.forms) > 1:
            return web.json_response({"error": "invalid_request"}, status=400)
        if t.refuse:  # as the gateway answers a rejected presentation
            redirect = {"redirect_uri": f"{self.base}/done/{tx}?failed"} if t.same_device else {}
            return web.json_response({"error": "invalid_request", "error_description": "nonce", **redirect}, status=400)
        return web.json_response({"redirect_uri": f"{self.base}/done/{tx}"} if t.same_device else {})

    async def done(self, request: web.Request) -> web.Response:
        return web.Response(text=f"done {request.match_info['tx']}")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/request/{tx}", self.get_request)
        app.router.add_post("/response/{tx}", self.post_response)
        app.router.add_get("/done/{tx}", self.done)
        return app
