"""The test wallet against a stub verifier endpoint: what it posts is checked by the gateway's verifier
(eid_gateway.wallet.sdjwt) and by the reference library's (sd_jwt.verifier), and each Tamper makes the
gateway's verifier fail with the reason it is meant for."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import segno
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk
from sd_jwt.verifier import SDJWTVerifier
from wallet.builder import ERIKA

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.jose import sign_es256
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from eid_gateway.wallet.sdjwt import VerifiedPid, verify_presentation
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet_sim.wallet import PresentResult, Tamper, TestWallet, WalletRequestError, read_qr
from wallet_sim.verifier import StubVerifier

NAMES_ADDRESS_AGE = frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.ADDRESS})


def query(attributes: frozenset[Attribute] = NAMES_ADDRESS_AGE, minimum_age: int | None = 18) -> dict[str, Any]:
    return dcql_query(attributes, minimum_age=minimum_age, vct_values=DEFAULT_VCT_VALUES)


def verify(wallet: TestWallet, verifier: StubVerifier, tx: str, presentation: str) -> VerifiedPid:
    t = verifier.transactions[tx]
    return verify_presentation(
        presentation,
        trust=TrustList([wallet.keys.ca.certificate]),
        vct_values=DEFAULT_VCT_VALUES,
        nonce=t.nonce,
        audience=verifier.client_id,
        now=int(time.time()),
    )


def presented(verifier: StubVerifier, tx: str) -> str:
    payload = verifier.transactions[tx].payload()
    assert payload["state"] == verifier.transactions[tx].state
    (presentation,) = payload["vp_token"]["pid"]
    assert isinstance(presentation, str)
    return presentation


async def test_presents_only_the_claims_asked_for(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query())
    result = await wallet.present(url, person="erika")
    assert result == PresentResult(
        200,
        f"{verifier.base}/done/{tx}",
        result.body,
        f"{verifier.base}/response/{tx}",
        result.form,
        result.presentation,
        (("given_name",), ("family_name",), ("address",), ("age_equal_or_over", "18")),
    )
    presentation = presented(verifier, tx)
    assert presentation == result.presentation
    pid = verify(wallet, verifier, tx, presentation)
    personal = {k: v for k, v in pid.claims.items() if k not in ("iss", "iat", "exp", "vct", "status", "nbf")}
    # Erika's names and address as the verifier tests' PID has them (written there, not derived from the card)
    asked = {k: ERIKA[k] for k in ("given_name", "family_name", "address")}
    assert personal == asked | {"age_equal_or_over": {"18": True}}
    assert pid.holder_jwk_thumbprint == wallet.holder_thumbprint("erika")
    # the independent reading: the reference library's verifier accepts the same presentation
    issuer_key = jwk.JWK.from_pyca(wallet.keys.issuer.certificate.public_key())
    oracle = SDJWTVerifier(
        presentation, lambda iss, header: issuer_key, verifier.client_id, verifier.transactions[tx].nonce
    )
    payload = oracle.get_verified_payload()
    assert {k: payload[k] for k in personal} == personal
    assert "birthdate" not in payload and "birth_family_name" not in payload


async def test_a_pseudonym_only_query_discloses_nothing(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query(frozenset({Attribute.PSEUDONYM}), None))
    await wallet.present(url, person="andre")
    presentation = presented(verifier, tx)
    issuer_jwt, *disclosures, kb = presentation.split("~")
    assert disclosures == [] and kb
    pid = verify(wallet, verifier, tx, presentation)
    assert set(pid.claims) <= {"iss", "iat", "exp", "vct", "status", "nbf"}
    assert pid.holder_jwk_thumbprint == wallet.holder_thumbprint("andre") != wallet.holder_thumbprint("erika")


async def test_cross_device_has_no_redirect(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query(), same_device=False)
    result = await wallet.present(url, person="andre")
    assert (result.status, result.redirect_uri) == (200, None)
    assert verify(wallet, verifier, tx, presented(verifier, tx)).claims["given_name"] == "ANDRÉ"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (Tamper.FORGED_ISSUER, RejectReason.ISSUER_SIGNATURE),
        (Tamper.UNTRUSTED_CA, RejectReason.UNTRUSTED_ISSUER),
        (Tamper.WRONG_NONCE, RejectReason.NONCE),
        (Tamper.WRONG_AUDIENCE, RejectReason.AUDIENCE),
        (Tamper.TAMPERED_DISCLOSURE, RejectReason.DISCLOSURE_UNKNOWN),
        (Tamper.DUPLICATED_DISCLOSURE, RejectReason.DISCLOSURE_DUPLICATE),
        (Tamper.STALE_KB, RejectReason.KB_STALE),
        (Tamper.KB_WRONG_KEY, RejectReason.KB_SIGNATURE),
        (Tamper.NO_KEY_BINDING, RejectReason.MALFORMED),
        (Tamper.WRONG_VCT, RejectReason.VCT),
    ],
)
async def test_each_tamper_fails_its_check(
    wallet: TestWallet, verifier: StubVerifier, tamper: Tamper, reason: RejectReason
) -> None:
    tx, url = verifier.begin(query())
    result = await wallet.present(url, person="erika", tamper=tamper)
    assert result.status == 200  # the stub accepts anything; the checks follow
    presentation = presented(verifier, tx)
    assert presentation.endswith("~") is (tamper is Tamper.NO_KEY_BINDING)
    with pytest.raises(PresentationRejected) as caught:
        verify(wallet, verifier, tx, presentation)
    assert caught.value.reason is reason


async def test_a_replay_resends_the_previous_presentation_into_a_new_flow(
    wallet: TestWallet, verifier: StubVerifier
) -> None:
    with pytest.raises(WalletRequestError, match="nothing to replay"):
        _, url = verifier.begin(query())
        await wallet.present(url, person="andre", tamper=Tamper.REPLAY)
    first, url = verifier.begin(query())
    original = await wallet.present(url, person="andre")
    verify(wallet, verifier, first, presented(verifier, first))
    second, url = verifier.begin(query())
    await wallet.present(url, person="andre", tamper=Tamper.REPLAY)
    assert presented(verifier, second) == original.presentation
    with pytest.raises(PresentationRejected) as caught:
        verify(wallet, verifier, second, presented(verifier, second))
    assert caught.value.reason is RejectReason.NONCE
    # the raw form posted again into the same flow: the verifier sees a second response
    assert verifier.transactions[first].forms == [original.form]


async def test_expired_pid(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query())
    await wallet.present(url, person="expired")
    with pytest.raises(PresentationRejected) as caught:
        verify(wallet, verifier, tx, presented(verifier, tx))
    assert caught.value.reason is RejectReason.EXPIRED


@pytest.mark.parametrize("tamper", [Tamper.CANCEL, Tamper.CANCEL_UNENCRYPTED])
async def test_cancel(wallet: TestWallet, verifier: StubVerifier, tamper: Tamper) -> None:
    tx, url = verifier.begin(query())
    result = await wallet.present(url, person="erika", tamper=tamper)
    assert result.presentation is None
    form = verifier.transactions[tx].forms[0]
    assert ("response" in form) is (tamper is Tamper.CANCEL)
    payload = verifier.transactions[tx].payload()
    assert payload["error"] == "access_denied" and payload["state"] == verifier.transactions[tx].state
    assert "vp_token" not in payload


async def test_the_response_is_encrypted_to_the_verifiers_key(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query())
    await wallet.present(url, person="erika")
    token = verifier.transactions[tx].forms[0]["response"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid = json.loads(verifier.transactions[tx].private_jwk)["kid"]
    assert (header["alg"], header["enc"], header["kid"]) == ("ECDH-ES", "A128GCM", kid)
    assert token.count(".") == 4 and "ERIKA" not in token


async def test_the_wallet_refuses_a_request_whose_client_id_is_not_its_certificate_hash(
    wallet: TestWallet, verifier: StubVerifier
) -> None:
    tx, url = verifier.begin(query())
    other = StubVerifier.generate()
    other.base = verifier.base
    other.transactions[tx] = verifier.transactions[tx]
    verifier.override[tx] = other.request_object(tx)  # signed by another key: its x5c hash differs
    with pytest.raises(WalletRequestError, match="client_id"):
        await wallet.present(url, person="erika")
    assert verifier.transactions[tx].forms == []


async def test_the_wallet_refuses_a_forged_request_signature(wallet: TestWallet, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(query())
    genuine = verifier.request_object(tx)
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["response_uri"] = "https://attacker.test/collect"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    verifier.override[tx] = f"{header}.{forged}.{signature}"
    with pytest.raises(WalletRequestError, match="signature"):
        await wallet.present(url, person="erika")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("openid4vp://?client_id=x", "exactly one"),
        ("openid4vp://?client_id=a&client_id=b&request_uri=https://x.test/", "exactly one"),
    ],
)
async def test_bad_invocation_urls(wallet: TestWallet, url: str, message: str) -> None:
    with pytest.raises(WalletRequestError, match=message):
        await wallet.present(url, person="erika")


async def test_unknown_person(wallet: TestWallet, verifier: StubVerifier) -> None:
    _, url = verifier.begin(query())
    with pytest.raises(WalletRequestError, match="no test person 'nobody'"):
        await wallet.present(url, person="nobody")


def test_issuer_certificate_chains_to_the_ca(wallet: TestWallet) -> None:
    leaf = wallet.keys.issuer.certificate
    leaf.verify_directly_issued_by(wallet.keys.ca.certificate)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert TrustList([wallet.keys.ca.certificate]).verify_x5c(wallet.keys.x5c(), int(time.time())) == leaf


async def test_present_from_a_qr_code_image(wallet: TestWallet, verifier: StubVerifier, tmp_path: Path) -> None:
    """Cross-device: the invocation URL read from a QR code PNG by zbarimg (as the e2e tests read the
    screenshot of the gateway's page)."""
    tx, url = verifier.begin(query(), same_device=False)
    png = tmp_path / "qr.png"
    segno.make(url, error="m").save(str(png), scale=4)
    assert await read_qr(png) == url
    result = await wallet.present_from_qr(png, person="andre")
    assert (result.status, result.redirect_uri) == (200, None)
    assert verify(wallet, verifier, tx, presented(verifier, tx)).claims["family_name"] == "MUSTERMANN"


async def test_an_image_without_a_qr_code_is_reported(tmp_path: Path) -> None:
    png = tmp_path / "blank.png"
    segno.make("x").save(str(png), scale=1, border=0, dark="white")  # all white: nothing to decode
    with pytest.raises(WalletRequestError, match="no single QR code"):
        await read_qr(png)


@pytest.mark.parametrize("same_device", [True, False])
async def test_a_refusal_keeps_its_status_and_redirect(
    wallet: TestWallet, verifier: StubVerifier, same_device: bool
) -> None:
    tx, url = verifier.begin(query(), same_device=same_device, refuse=True)
    result = await wallet.present(url, person="erika")
    assert result.status == 400
    assert result.redirect_uri == (f"{verifier.base}/done/{tx}?failed" if same_device else None)
    again = await wallet.present(url, person="erika")  # a second answer to the same request
    assert (again.status, again.redirect_uri) == (400, None)


def _edit_claims(claims: Any, change: str) -> None:
    """``a.b.0.c=<JSON>`` (or ``=<delete>``) applied to the request object's claims."""
    path, _, value = change.partition("=")
    *parents, last = path.split(".")
    target = claims
    for name in parents:
        target = target[int(name)] if isinstance(target, list) else target[name]
    if value == "<delete>":
        del target[last]
    else:
        target[last] = json.loads(value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('aud="https://verifier.test"', "aud"),
        ('response_mode="direct_post"', "response_mode"),
        ('response_type="code"', "response_type"),
        ("exp=1000", "expired"),
        ("nonce=<delete>", "nonce"),
        ("client_metadata=[]", "no EC encryption key"),
        ('client_metadata.jwks={"keys": "x"}', "no EC encryption key"),
        (
            'client_metadata.encrypted_response_enc_values_supported=["A192CBC-HS384"]',
            "no supported content encryption",
        ),
        ('client_metadata.encrypted_response_enc_values_supported="A128GCM"', "no supported content encryption"),
        ("dcql_query=[]", "dcql_query"),
        ('dcql_query={"credentials": {}}', "asks for no dc\\+sd-jwt"),
        ('dcql_query.credentials.0.meta={"vct_values": ["urn:other"]}', "asks for no dc\\+sd-jwt"),
        ('dcql_query.credentials.0.meta="x"', None),  # a malformed meta reads as "any type": the wallet answers
        ('dcql_query.credentials.0.claims={"path": ["given_name"]}', "not a list"),
        ('dcql_query.credentials.0.claims=[{"path": []}]', "without a path"),
    ],
)
async def test_the_wallet_refuses_malformed_requests(
    wallet: TestWallet, verifier: StubVerifier, change: str, message: str | None
) -> None:
    """Signed by the right key but not a request this wallet answers: refused with the reason, nothing posted."""
    tx, url = verifier.begin(query())
    genuine = verifier.request_object(tx)
    header_b64, payload_b64, _ = genuine.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    _edit_claims(claims, change)
    assert isinstance(verifier.signer.private_key, ec.EllipticCurvePrivateKey)
    verifier.override[tx] = sign_es256(
        {k: v for k, v in header.items() if k != "alg"}, claims, verifier.signer.private_key
    )
    if message is None:
        assert (await wallet.present(url, person="erika")).status == 200
        return
    with pytest.raises(WalletRequestError, match=message):
        await wallet.present(url, person="erika")
    assert verifier.transactions[tx].forms == []
