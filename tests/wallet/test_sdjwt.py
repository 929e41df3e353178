"""The SD-JWT VC presentation check (eid_gateway/wallet/sdjwt.py): the reference library as the oracle,
and one attack test per reject reason, each changing exactly one thing of an otherwise valid presentation."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from typing import Any

import pytest
from jwcrypto import jwk
from sd_jwt.verifier import SDJWTVerifier

from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.sdjwt import StatusRef, verify_presentation
from eid_gateway.wallet_sim.pid_provider import ISSUER_ID

from .builder import AUDIENCE, ERIKA, NONCE, VCT, Holder, b64url, bind, issue, present, resign_issuer_jwt, without_kb
from .conftest import Pki


def verify(pki: Pki, presentation: str, **kw: Any) -> Any:
    args: dict[str, Any] = dict(trust=pki.trust, vct_values=[VCT], nonce=NONCE, audience=AUDIENCE, now=int(time.time()))
    return verify_presentation(presentation, **(args | kw))


def rejected(pki: Pki, presentation: str, **kw: Any) -> RejectReason:
    with pytest.raises(PresentationRejected) as caught:
        verify(pki, presentation, **kw)
    return caught.value.reason


def disclosures_of(presentation: str) -> list[str]:
    return presentation.split("~")[1:-1]


def decoded(disclosure: str) -> list[Any]:
    return json.loads(base64.urlsafe_b64decode(disclosure + "=" * (-len(disclosure) % 4)))


def disclosure(*content: Any) -> str:
    return b64url(json.dumps(list(content)).encode())


@pytest.fixture(scope="module")
def holder() -> Holder:
    return Holder()


# --- the oracle ------------------------------------------------------------------------------------------


def test_a_presentation_of_the_reference_library_verifies_with_every_claim(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder)
    pid = verify(pki, presentation)
    for name, value in ERIKA.items():
        assert pid.claims[name] == value, name
    assert "_sd" not in json.dumps(pid.claims) and "cnf" not in pid.claims and "_sd_alg" not in pid.claims
    assert pid.vct == VCT and pid.issuer == ISSUER_ID and pid.status is None
    assert pid.expires_at is not None and pid.issued_at is not None and pid.expires_at > pid.issued_at
    # RFC 7638 thumbprint as jwcrypto computes it
    assert pid.holder_jwk_thumbprint == holder.key.thumbprint()
    # and the library's own verifier agrees on the claims
    library = SDJWTVerifier(
        presentation, lambda iss, header: jwk.JWK.from_pyca(pki.issuer.certificate.public_key()), AUDIENCE, NONCE
    )
    expected = library.get_verified_payload()
    expected.pop("cnf")
    assert pid.claims == expected


def test_only_the_disclosed_claims_come_out(pki: Pki, holder: Holder) -> None:
    chosen = {"given_name": True, "address": {"locality": True}, "age_equal_or_over": {"18": True}}
    pid = verify(pki, present(issue(pki.issuer, holder), holder, chosen))
    personal = {k: v for k, v in pid.claims.items() if k not in ("iss", "vct", "iat", "exp")}
    assert personal == {"given_name": "ERIKA", "address": {"locality": "KÖLN"}, "age_equal_or_over": {"18": True}}


def test_a_presentation_with_no_disclosure_verifies_with_the_holder_key(pki: Pki, holder: Holder) -> None:
    pid = verify(pki, present(issue(pki.issuer, holder), holder, {}))
    assert set(pid.claims) == {"iss", "vct", "iat", "exp"}
    assert pid.holder_jwk_thumbprint == holder.key.thumbprint()


def test_one_changed_character_anywhere_is_rejected(pki: Pki, holder: Holder) -> None:
    """The oracle's presentation verifies; with any one character changed (sampled over every part:
    issuer JWT header/payload/signature, each disclosure, the KB-JWT) it does not."""
    presentation = present(issue(pki.issuer, holder, decoys=False), holder)
    verify(pki, presentation)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    rng = random.Random(18)
    boundaries = [i for i, c in enumerate(presentation) if c in ".~"]
    positions = set(rng.sample(range(len(presentation)), 250)) | set(boundaries)
    positions |= {b + 1 for b in boundaries if b + 1 < len(presentation)} | {b - 1 for b in boundaries}
    reasons: set[RejectReason] = set()
    for pos in sorted(positions):
        original = presentation[pos]
        for replacement in {rng.choice(alphabet.replace(original, "")), "~" if original != "~" else "."}:
            changed = presentation[:pos] + replacement + presentation[pos + 1 :]
            with pytest.raises(PresentationRejected) as caught:
                verify(pki, changed)
            reasons.add(caught.value.reason)
    assert {RejectReason.ISSUER_SIGNATURE, RejectReason.DISCLOSURE_UNKNOWN, RejectReason.KB_SIGNATURE} <= reasons


# --- one attack per reason ---------------------------------------------------------------------------------


def test_forged_issuer_signature(pki: Pki, holder: Holder) -> None:
    """Signed by a key that is not the x5c leaf's (the trusted issuer's certificate in the header)."""
    forged = issue(pki.foreign_issuer, holder, chain=[pki.issuer.certificate])
    assert rejected(pki, present(forged, holder)) is RejectReason.ISSUER_SIGNATURE


def test_untrusted_ca(pki: Pki, holder: Holder) -> None:
    """A whole, self-consistent chain from another CA of the same name."""
    foreign = issue(pki.foreign_issuer, holder, chain=[pki.foreign_issuer.certificate, pki.foreign_ca.certificate])
    assert rejected(pki, present(foreign, holder)) is RejectReason.UNTRUSTED_ISSUER


def test_an_iss_that_is_not_a_name_of_the_issuer_certificate(pki: Pki, holder: Holder) -> None:
    """SD-JWT VC §3.5: a trusted certificate issues only in its own name (subjectAltName URI)."""
    full = present(issue(pki.issuer, holder), holder)
    for iss in ("https://another-provider.test", 7, ["x"]):
        changed = resign_issuer_jwt(full, pki.issuer, payload={"iss": iss})
        assert rejected(pki, bind(without_kb(changed), holder)) is RejectReason.UNTRUSTED_ISSUER, iss
    # a certificate under the trusted CA without that name (here: the verifier's own) cannot issue as the provider
    assert rejected(pki, present(issue(pki.verifier, holder), holder)) is RejectReason.UNTRUSTED_ISSUER
    # without iss the credential names its issuer by the certificate
    no_iss = resign_issuer_jwt(full, pki.issuer, payload={"iss": None})
    assert verify(pki, bind(without_kb(no_iss), holder)).issuer == pki.issuer.certificate.subject.rfc4514_string()


def test_other_algorithms_and_a_missing_x5c_are_refused(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder)
    resigned = resign_issuer_jwt(presentation, pki.issuer, header={"alg": "ES256"})
    assert verify(pki, bind(without_kb(resigned), holder))  # re-signing alone keeps it valid (guards the helper)
    first, rest = presentation.split("~", 1)
    h, p, s = first.split(".")
    head = json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))
    for change in ({"alg": "none"}, {"alg": "HS256"}):
        forged = b64url(json.dumps(head | change).encode()) + "." + p + "." + s + "~" + rest
        assert rejected(pki, forged) is RejectReason.ISSUER_SIGNATURE
    no_x5c = b64url(json.dumps({k: v for k, v in head.items() if k != "x5c"}).encode()) + "." + p + "." + s + "~" + rest
    assert rejected(pki, no_x5c) is RejectReason.MALFORMED


def test_wrong_nonce(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder, nonce="another-transaction")
    assert rejected(pki, presentation) is RejectReason.NONCE


def test_wrong_audience(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder, aud="x509_hash:another-verifier")
    assert rejected(pki, presentation) is RejectReason.AUDIENCE
    # the audience is the whole client_id, prefix included
    assert (
        rejected(pki, present(issue(pki.issuer, holder), holder), audience="verifier-under-test")
        is RejectReason.AUDIENCE
    )


def test_key_binding_by_another_key(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder)
    assert rejected(pki, bind(without_kb(presentation), Holder())) is RejectReason.KB_SIGNATURE


def test_no_key_binding(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder), holder)
    assert rejected(pki, without_kb(presentation)) is RejectReason.MALFORMED


def test_stale_or_future_key_binding(pki: Pki, holder: Holder) -> None:
    body = without_kb(present(issue(pki.issuer, holder), holder))
    now = int(time.time())
    assert verify(pki, bind(body, holder, iat=now - 299), now=now)
    assert rejected(pki, bind(body, holder, iat=now - 3600), now=now) is RejectReason.KB_STALE
    assert rejected(pki, bind(body, holder, iat=now - 301), now=now) is RejectReason.KB_STALE
    assert rejected(pki, bind(body, holder, iat=now + 3600), now=now) is RejectReason.KB_STALE


def test_sd_hash_over_another_presentation(pki: Pki, holder: Holder) -> None:
    full = present(issue(pki.issuer, holder), holder)
    body = without_kb(full)
    kept = [d for d in disclosures_of(full) if decoded(d)[1] != "given_name"]  # a leaf: nothing hangs on it
    fewer = body.split("~")[0] + "~" + "~".join(kept) + "~"
    # the KB-JWT signs the hash of the full presentation, but fewer disclosures are sent
    assert (
        rejected(pki, bind(fewer, holder, sd_hash=b64url(hashlib.sha256(body.encode()).digest())))
        is RejectReason.SD_HASH
    )


def test_tampered_disclosure(pki: Pki, holder: Holder) -> None:
    """A disclosure whose value is changed (and properly re-encoded): its digest is in no _sd."""
    full = present(issue(pki.issuer, holder), holder)
    parts = disclosures_of(full)
    target = next(i for i, d in enumerate(parts) if decoded(d)[1] == "family_name")
    salt, name, _ = decoded(parts[target])
    parts[target] = disclosure(salt, name, "MUSTERFRAU")
    body = full.split("~")[0] + "~" + "~".join(parts) + "~"
    assert rejected(pki, bind(body, holder)) is RejectReason.DISCLOSURE_UNKNOWN


def test_an_invented_disclosure(pki: Pki, holder: Holder) -> None:
    body = without_kb(present(issue(pki.issuer, holder), holder)) + disclosure("salt", "doctoral_degree", "Dr.") + "~"
    assert rejected(pki, bind(body, holder)) is RejectReason.DISCLOSURE_UNKNOWN


def test_duplicated_disclosure(pki: Pki, holder: Holder) -> None:
    full = present(issue(pki.issuer, holder), holder, {"given_name": True})
    (given,) = disclosures_of(full)
    assert rejected(pki, bind(without_kb(full) + given + "~", holder)) is RejectReason.DISCLOSURE_DUPLICATE


def test_a_digest_twice_in_the_signed_payload(pki: Pki, holder: Holder) -> None:
    """An issuer JWT naming one digest twice would let one disclosure set a claim twice."""
    full = present(issue(pki.issuer, holder, decoys=False), holder, {"given_name": True})
    first = full.split("~", 1)[0]
    payload = json.loads(base64.urlsafe_b64decode(first.split(".")[1] + "=="))
    changed = resign_issuer_jwt(full, pki.issuer, payload={"_sd": payload["_sd"] + payload["_sd"][:1]})
    assert rejected(pki, bind(without_kb(changed), holder)) is RejectReason.DISCLOSURE_DUPLICATE


def test_a_disclosure_may_not_replace_a_plain_claim_or_vct(pki: Pki, holder: Holder) -> None:
    for name in ("vct", "iss", "exp", "cnf", "status"):
        issued = issue(pki.issuer, holder, claims={name: "evil", "given_name": "ERIKA"}, decoys=False)
        # the library puts the digest into _sd; a top-level vct/iss/... then exists twice (plain + disclosed)
        presentation = present(issued, holder, {name: True, "given_name": True})
        assert rejected(pki, presentation) is RejectReason.MALFORMED, name


def test_critical_header(pki: Pki, holder: Holder) -> None:
    full = present(issue(pki.issuer, holder), holder)
    changed = resign_issuer_jwt(full, pki.issuer, header={"crit": ["urn:example:unknown"], "urn:example:unknown": 1})
    assert rejected(pki, bind(without_kb(changed), holder)) is RejectReason.CRITICAL
    body = without_kb(present(issue(pki.issuer, holder), holder))
    assert rejected(pki, bind(body, holder, header={"crit": ["x"], "x": 1})) is RejectReason.CRITICAL


def test_a_type_that_is_not_an_accepted_pid(pki: Pki, holder: Holder) -> None:
    presentation = present(issue(pki.issuer, holder, vct="urn:example:diploma:1"), holder)
    assert rejected(pki, presentation) is RejectReason.VCT
    assert verify(pki, presentation, vct_values=["urn:example:diploma:1"]).vct == "urn:example:diploma:1"


def test_expired_credential(pki: Pki, holder: Holder) -> None:
    now = int(time.time())
    presentation = present(issue(pki.issuer, holder, iat=now - 86400, exp=now - 120), holder)
    assert rejected(pki, presentation, now=now) is RejectReason.EXPIRED
    assert verify(pki, presentation, now=now, leeway=180)  # within the clock-skew leeway


def test_credential_not_yet_valid(pki: Pki, holder: Holder) -> None:
    now = int(time.time())
    presentation = present(issue(pki.issuer, holder, plain={"nbf": now + 3600}), holder)
    assert rejected(pki, presentation, now=now) is RejectReason.NOT_YET_VALID
    presentation = present(issue(pki.issuer, holder, iat=now + 3600), holder)
    assert rejected(pki, presentation, now=now) is RejectReason.NOT_YET_VALID


def test_the_status_reference_is_read(pki: Pki, holder: Holder) -> None:
    status = {"status_list": {"idx": 7, "uri": "https://pid-provider.test/status/1"}}
    pid = verify(pki, present(issue(pki.issuer, holder, status=status), holder))
    assert pid.status == StatusRef(uri="https://pid-provider.test/status/1", idx=7)
    for bad in (
        {"status_list": {"idx": -1, "uri": "https://x"}},
        {"status_list": {"idx": 1}},
        {"status_list": "x"},
        "x",
        {"status_list": {"idx": True, "uri": "https://x"}},
        {"status_list": {"idx": 1, "uri": "file:///etc/passwd"}},
    ):
        assert rejected(pki, present(issue(pki.issuer, holder, status=bad), holder)) is RejectReason.MALFORMED, bad


@pytest.mark.parametrize(
    "junk",
    ["", "~", "a~b~", "a.b.c~", "a.b.c~~kb", "é~x", "x" * 200_000, "eyJ9.eyJ9.AA~"],
)
def test_junk_is_malformed(pki: Pki, junk: str) -> None:
    assert rejected(pki, junk) is RejectReason.MALFORMED


def test_a_holder_key_that_is_not_p256_is_malformed(pki: Pki, holder: Holder) -> None:
    full = present(issue(pki.issuer, holder), holder)
    for cnf in ({"jwk": {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}}, {"kid": "x"}, "x"):
        changed = resign_issuer_jwt(full, pki.issuer, payload={"cnf": cnf})
        assert rejected(pki, changed) is RejectReason.MALFORMED


def test_a_type_or_typ_that_is_not_a_string_is_refused_not_crashed(pki: Pki, holder: Holder) -> None:
    """Found by tests/fuzz_parsers/test_fuzz_wallet.py: an unhashable vct/typ met a set lookup (TypeError)."""
    full = present(issue(pki.issuer, holder), holder)
    for vct in ({"v": VCT}, [VCT]):
        changed = resign_issuer_jwt(full, pki.issuer, payload={"vct": vct})
        assert rejected(pki, bind(without_kb(changed), holder)) is RejectReason.VCT
    changed = resign_issuer_jwt(full, pki.issuer, header={"typ": ["dc+sd-jwt"]})
    assert rejected(pki, bind(without_kb(changed), holder)) is RejectReason.MALFORMED
