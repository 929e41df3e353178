"""One wallet response through every step (eid_gateway/wallet/verifier.py): encrypted form -> verified PID,
with the status list consulted when the credential names one."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey

from eid_gateway.wallet.errors import PresentationRejected, RejectReason, StatusUnavailable, WalletCancelled
from eid_gateway.wallet.request import new_response_key
from eid_gateway.wallet.sdjwt import StatusRef
from eid_gateway.wallet.verifier import verify_wallet_response

from .builder import AUDIENCE, NONCE, VCT, Holder, issue, present, status_list_token
from .conftest import Pki

URI = "https://pid-provider.test/status/1"


def form_for(presentation: str, public: dict[str, Any], state: str = "st") -> dict[str, str]:
    payload = json.dumps({"vp_token": {"pid": [presentation]}, "state": state}).encode()
    header = {"alg": "ECDH-ES", "enc": "A128GCM", "kid": public["kid"]}
    return {"response": jwe.encrypt_compact(header, payload, ECKey.import_key(public))}


def run(pki: Pki, form: dict[str, str], private: str, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        private_jwk_json=private,
        state="st",
        nonce=NONCE,
        client_id=AUDIENCE,
        trust=pki.trust,
        vct_values=[VCT],
        now=int(time.time()),
        status_token=None,
    )
    return verify_wallet_response(form, **(args | kw))


def test_an_encrypted_response_gives_the_verified_pid(pki: Pki) -> None:
    holder = Holder()
    private, public = new_response_key()
    pid = run(pki, form_for(present(issue(pki.issuer, holder), holder, {"family_name": True}), public), private)
    assert pid.claims["family_name"] == "MUSTERMANN" and "given_name" not in pid.claims


def test_the_status_list_decides_when_the_credential_names_one(pki: Pki) -> None:
    private, public = new_response_key()
    asked: list[StatusRef] = []

    def tokens(ref: StatusRef) -> str:
        asked.append(ref)
        return status_list_token(pki.issuer, URI, [0, 1])

    for idx, ok in ((0, True), (1, False)):
        holder = Holder()
        issued = issue(pki.issuer, holder, status={"status_list": {"idx": idx, "uri": URI}})
        form = form_for(present(issued, holder), public)
        if ok:
            assert run(pki, form, private, status_token=tokens).status == StatusRef(URI, 0)
        else:
            with pytest.raises(PresentationRejected) as caught:
                run(pki, form, private, status_token=tokens)
            assert caught.value.reason is RejectReason.REVOKED
        with pytest.raises(StatusUnavailable):  # no way to fetch the list: never an accept
            run(pki, form, private, status_token=None)
    assert asked == [StatusRef(URI, 0), StatusRef(URI, 1)]


def test_a_response_for_another_state_or_a_cancel(pki: Pki) -> None:
    holder = Holder()
    private, public = new_response_key()
    with pytest.raises(PresentationRejected) as caught:
        run(pki, form_for(present(issue(pki.issuer, holder), holder), public, state="other"), private)
    assert caught.value.reason is RejectReason.STATE
    with pytest.raises(WalletCancelled):
        run(pki, {"error": "access_denied", "state": "st"}, private)


def test_a_replayed_presentation_fails_in_another_transaction(pki: Pki) -> None:
    """The same presentation sent to a second transaction (its own nonce) is refused there: NONCE."""
    holder = Holder()
    presentation = present(issue(pki.issuer, holder), holder)
    private, public = new_response_key()
    assert run(pki, form_for(presentation, public), private)
    other_private, other_public = new_response_key()
    with pytest.raises(PresentationRejected) as caught:
        run(pki, form_for(presentation, other_public), other_private, nonce="nonce-of-the-second-transaction")
    assert caught.value.reason is RejectReason.NONCE
