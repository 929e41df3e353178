"""Fuzzing the EUDI wallet verifier's parsers (eid_gateway/wallet): mutants that get past the signatures.

A mutant of the credential's signed payload is signed anew by the trusted issuer and bound anew by the
holder, so the checks behind the signatures see it; a mutant disclosure is referenced from a re-signed
payload for the same reason. The encrypted response's payload and the status list's payload are mutated
the same way (encrypted to the transaction key, signed by the trusted issuer). Only the declared error
types may come out: PresentationRejected / WalletCancelled / StatusUnavailable, and MappingError when a
verified PID is mapped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from joserfc import jwe
from joserfc.jwk import ECKey
from wallet.builder import AUDIENCE, NONCE, VCT, Holder, b64url, bind, es256, issue, present, status_list_token

from eid_gateway.identity import LevelOfAssurance
from eid_gateway.wallet.errors import PresentationRejected, StatusUnavailable, WalletCancelled
from eid_gateway.wallet.mapping import MappingError, identity_from_pid
from eid_gateway.wallet.request import new_response_key
from eid_gateway.wallet.sdjwt import StatusRef, verify_presentation
from eid_gateway.wallet.statuslist import check_status
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet.verifier import verify_wallet_response
from eid_gateway.wallet_sim.pid_provider import ProviderKeys

from .mutate import fuzz, json_mutants

URI = "https://pid-provider.test/status/1"


def _part(token: str, i: int) -> Any:
    piece = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4)))


class Setting:
    def __init__(self) -> None:
        provider = ProviderKeys.generate()
        self.issuer = provider.issuer
        self.trust = TrustList([provider.ca.certificate])
        self.holder = Holder()
        status = {"status_list": {"idx": 1, "uri": URI}}
        self.presentation = present(issue(self.issuer, self.holder, decoys=False, status=status), self.holder)
        first = self.presentation.split("~", 1)[0]
        self.header, self.payload = _part(first, 0), _part(first, 1)
        self.disclosures = self.presentation.split("~")[1:-1]
        self.now = int(time.time())

    def verify_and_map(self, presentation: str) -> object:
        pid = verify_presentation(
            presentation, trust=self.trust, vct_values=[VCT], nonce=NONCE, audience=AUDIENCE, now=self.now
        )
        return identity_from_pid(
            pid, level_of_assurance=LevelOfAssurance.SUBSTANTIAL, authenticated_at=datetime.now(UTC), minimum_age=18
        )

    def signed(self, payload: dict[str, Any] | bytes) -> str:
        return es256(self.header, payload, self.issuer.private_key)  # type: ignore[arg-type]


def test_wallet_credential_payload() -> None:
    s = Setting()

    def parse(data: bytes) -> object:
        body = s.signed(data) + "~" + "~".join(s.disclosures) + "~"
        return s.verify_and_map(bind(body, s.holder))

    tally = fuzz(
        "wallet credential payload",
        parse,
        json_mutants([s.payload], 1500, seed=181),
        (PresentationRejected, MappingError),
    )
    tally.check(min_inputs=1500)


def test_wallet_disclosures() -> None:
    """Arbitrary disclosure content behind a digest the signed payload names (top level or in an array)."""
    s = Setting()
    samples = [json.loads(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4))) for d in s.disclosures]
    rng = random.Random(182)
    base = {k: v for k, v in s.payload.items() if k != "_sd"}

    def parse(data: bytes) -> object:
        disclosure = b64url(data)
        digest = b64url(hashlib.sha256(disclosure.encode()).digest())
        payload = dict(base)
        if rng.random() < 0.3:
            payload["nationalities"] = [{"...": digest}]
        else:
            payload["_sd"] = [digest]
        body = s.signed(payload) + "~" + disclosure + "~"
        return s.verify_and_map(bind(body, s.holder))

    tally = fuzz(
        "wallet disclosures", parse, json_mutants(samples, 1500, seed=183), (PresentationRejected, MappingError)
    )
    tally.check(min_inputs=1500)


def test_wallet_response_payload() -> None:
    """The decrypted direct_post.jwt payload (the presentation inside is valid when the mutant keeps it)."""
    s = Setting()
    private, public = new_response_key()
    key = ECKey.import_key(public)
    sample = {"vp_token": {"pid": [s.presentation]}, "state": "st"}
    cancel = {"error": "access_denied", "error_description": "declined", "state": "st"}
    tokens = {URI: status_list_token(s.issuer, URI, [0, 0])}

    def parse(data: bytes) -> object:
        header = {"alg": "ECDH-ES", "enc": "A128GCM", "kid": public["kid"]}
        form = {"response": jwe.encrypt_compact(header, data, key)}
        return verify_wallet_response(
            form,
            private_jwk_json=private,
            state="st",
            nonce=NONCE,
            client_id=AUDIENCE,
            trust=s.trust,
            vct_values=[VCT],
            now=s.now,
            status_token=lambda ref: tokens[ref.uri],
        )

    declared = (PresentationRejected, WalletCancelled, StatusUnavailable, KeyError)
    tally = fuzz("wallet response payload", parse, json_mutants([sample, cancel], 1000, seed=184), declared)
    tally.check(min_inputs=1000)
    assert "KeyError" not in tally.refused, tally.report()  # declared only to be counted, never expected


def test_wallet_status_list_payload() -> None:
    s = Setting()
    token = status_list_token(s.issuer, URI, [0, 1, 0, 0])
    header, payload = _part(token, 0), _part(token, 1)

    def parse(data: bytes) -> object:
        signed = es256(header, data, s.issuer.private_key)  # type: ignore[arg-type]
        check_status(signed, StatusRef(URI, 2), trust=s.trust, now=s.now)
        return None

    tally = fuzz(
        "wallet status list payload",
        parse,
        json_mutants([payload], 1000, seed=185),
        (StatusUnavailable, PresentationRejected),
    )
    tally.check(min_inputs=1000)
