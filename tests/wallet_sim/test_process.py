"""``eid-gateway wallet-sim`` as a process: its CA and status list, cross-device ``POST /present``, the
same-device wallet page (German/English, CSRF) and its refusals of bad input."""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import zlib
from io import StringIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from jwcrypto import jwk
from jwcrypto.jws import JWS

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.errors import PresentationRejected, RejectReason, StatusUnavailable, WalletCancelled
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from eid_gateway.wallet.sdjwt import StatusRef, VerifiedPid, verify_presentation
from eid_gateway.wallet.status_fetch import StatusListFetcher
from eid_gateway.wallet.statuslist import check_status
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet_sim.cli import EXIT_CANNOT_LISTEN, wallet_sim_main
from eid_gateway.wallet_sim.wallet import Tamper
from helpers.wallet_sim import WalletSim, wallet_sim  # noqa: F401  (fixture)
from wallet_sim.verifier import StubVerifier

QUERY = dcql_query(
    frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES}), minimum_age=18, vct_values=DEFAULT_VCT_VALUES
)


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def status_bits(token: str, sim: WalletSim) -> bytes:
    """The status list token checked (x5c chain to the process's CA, ES256 signature, sub) and unpacked."""
    header = _b64json(token.split(".")[0])
    assert header["typ"] == "statuslist+jwt"
    trust = TrustList.from_file(sim.ca_path)
    leaf = trust.verify_x5c(header["x5c"], int(time.time()))
    verified = JWS()
    verified.deserialize(token, jwk.JWK.from_pyca(leaf.public_key()), alg="ES256")
    claims = json.loads(verified.payload)
    assert claims["sub"] == sim.status_uri and claims["status_list"]["bits"] == 1
    assert claims["iat"] <= time.time() < claims["exp"] and claims["ttl"] > 0
    lst = claims["status_list"]["lst"]
    return zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))


async def test_the_ca_and_the_status_list(wallet_sim: WalletSim) -> None:
    status, kind, pem = await _get(wallet_sim.url + "/ca.pem")
    assert status == 200 and pem.encode() == wallet_sim.ca_path.read_bytes()
    ca = x509.load_pem_x509_certificate(pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    status, kind, token = await _get(wallet_sim.status_uri)
    assert (status, kind) == (200, "application/statuslist+jwt")
    bits = status_bits(token, wallet_sim)
    assert bits[0] & 0b1111 == 0b1000  # erika 0, andre 1, expired 2 valid; revoked 3 set (LSB first)
    wallet_sim.revoke(1)
    try:
        assert status_bits((await _get(wallet_sim.status_uri))[2], wallet_sim)[0] & 0b1111 == 0b1010
    finally:
        wallet_sim.revoke(1, 0)
    assert status_bits((await _get(wallet_sim.status_uri))[2], wallet_sim)[0] & 0b1111 == 0b1000
    async with aiohttp.ClientSession() as session:
        for query in ("idx=9999", "idx=x", "idx=1&value=2", ""):
            async with session.post(f"{wallet_sim.url}/admin/revoke?{query}") as response:
                assert response.status == 400, query


async def test_the_status_list_can_fail_on_purpose(wallet_sim: WalletSim) -> None:
    try:
        wallet_sim.status_mode("unavailable")
        assert (await _get(wallet_sim.status_uri))[0] == 503
        wallet_sim.status_mode("garbage")
        status, _, text = await _get(wallet_sim.status_uri)
        assert status == 200 and text.count(".") != 2
    finally:
        wallet_sim.status_mode("ok")
    assert (await _get(wallet_sim.status_uri))[0] == 200


async def test_cross_device_present_through_the_process(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(QUERY, same_device=False)
    answer = await wallet_sim.present(url, person="andre")
    assert (answer["status"], answer["redirect_uri"]) == (200, None)
    assert answer["requested_paths"] == [["given_name"], ["family_name"], ["age_equal_or_over", "18"]]
    t = verifier.transactions[tx]
    (presentation,) = t.payload()["vp_token"]["pid"]
    assert presentation == answer["presentation"]
    pid = verify_presentation(
        presentation,
        trust=TrustList.from_file(wallet_sim.ca_path),
        vct_values=DEFAULT_VCT_VALUES,
        nonce=t.nonce,
        audience=verifier.client_id,
        now=int(time.time()),
    )
    assert (pid.claims["given_name"], pid.claims["family_name"]) == ("ANDRÉ", "MUSTERMANN")
    assert pid.claims["age_equal_or_over"] == {"18": True} and "address" not in pid.claims
    # an in-process wallet of the same directory holds the same holder key: the same pseudonym
    assert pid.holder_jwk_thumbprint == wallet_sim.wallet().holder_thumbprint("andre")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "JSON"),
        (b'{"person": "erika"}', "invocation_url"),
        (b'{"invocation_url": "openid4vp://?client_id=a&request_uri=http://127.0.0.1:1/", "tamper": "nope"}', "tamper"),
        (b'{"invocation_url": "openid4vp://?client_id=a"}', "exactly one"),
        (b'{"invocation_url": "openid4vp://?client_id=a&request_uri=http://127.0.0.1:1/", "person": 3}', "person"),
    ],
)
async def test_present_refuses_bad_input(wallet_sim: WalletSim, body: bytes, message: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(wallet_sim.url + "/present", data=body) as response:
            assert response.status == 400
            assert message in (await response.json())["error"]


async def test_present_reports_an_unreachable_verifier(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    from helpers.ports import closed_port

    url = f"openid4vp://?client_id={verifier.client_id}&request_uri=http://127.0.0.1:{closed_port()}/request/x"
    answer = await wallet_sim.present(url, expect_ok=False)
    assert "error" in answer


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 (aiohttp's default jar refuses IP hosts; browsers don't)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def _form(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


async def test_the_wallet_page_same_device(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url)
    async with browser() as session:
        async with session.get(url) as response:
            assert response.status == 200
            page = await response.text()
        assert '<html lang="de">' in page
        for text in (
            "Test-Wallet: Daten freigeben",
            "Vorname(n) (given_name)",
            "Familienname (family_name)",
            "Mindestalter erreicht: 18 (age_equal_or_over/18)",
            "Als Erika Mustermann freigeben",
            "Als André Mustermann freigeben",
            "Als Erika Mustermann freigeben (abgelaufene PID)",
            "Ablehnen",
            verifier.client_id,
        ):
            assert text in page, text
        assert "Anschrift" not in page  # only what is asked
        form = _form(page)
        async with session.post(
            wallet_sim.url + "/authorize", data={**form, "person": "erika", "tamper": ""}, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"{verifier.base}/done/{tx}"
    (presentation,) = verifier.transactions[tx].payload()["vp_token"]["pid"]
    assert presentation.count("~") == 1 + 3 + 1  # issuer JWT ~ given, family, age container, 18 ~ KB-JWT


async def test_the_wallet_page_in_english_and_declining(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url)
    async with browser() as session:
        async with session.get(url + "&lang=en") as response:
            page = await response.text()
        assert '<html lang="en">' in page and "Share as Erika Mustermann" in page and "Decline" in page
        assert "Given name(s) (given_name)" in page
        async with session.post(
            wallet_sim.url + "/authorize", data={**_form(page), "decline": "1"}, allow_redirects=False
        ) as response:
            assert response.status == 303
    assert verifier.transactions[tx].payload()["error"] == "access_denied"


async def test_the_wallet_page_refuses_a_post_without_its_csrf_cookie(
    wallet_sim: WalletSim, verifier: StubVerifier
) -> None:
    tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url)
    async with browser() as session, session.get(url) as response:
        form = _form(await response.text())
    async with aiohttp.ClientSession() as other:  # another browser: no cookie
        async with other.post(wallet_sim.url + "/authorize", data={**form, "person": "erika"}) as response:
            assert response.status == 403
            assert "Das Formular ist abgelaufen" in await response.text()
    assert verifier.transactions[tx].forms == []


async def test_the_wallet_page_explains_a_bad_request(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    status, kind, page = await _get(
        f"{wallet_sim.authorize_url}?client_id={verifier.client_id}&request_uri={verifier.base}/request/unknown"
    )
    assert status == 400 and kind.startswith("text/html")
    assert "Diese Anfrage kann die Test-Wallet nicht beantworten" in page and "404" in page


async def test_a_tamper_chosen_on_the_page_reaches_the_verifier(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url)
    async with browser() as session:
        async with session.get(url) as response:
            form = _form(await response.text())
        data = {**form, "person": "erika", "tamper": Tamper.WRONG_NONCE.value}
        async with session.post(wallet_sim.url + "/authorize", data=data, allow_redirects=False) as response:
            assert response.status == 303
    (presentation,) = verifier.transactions[tx].payload()["vp_token"]["pid"]
    kb = _b64json(presentation.rsplit("~", 1)[1].split(".")[1])
    assert kb["nonce"] != verifier.transactions[tx].nonce and kb["aud"] == verifier.client_id


def test_a_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = StringIO()
        code = wallet_sim_main(["--listen", f"127.0.0.1:{port}", "--dir", str(tmp_path)], StringIO(), err)
    assert code == EXIT_CANNOT_LISTEN and "in use" in err.getvalue()
    assert not any(tmp_path.iterdir())  # nothing written before the port check


@pytest.mark.parametrize(
    ("person", "tamper", "outcome"),
    [
        ("erika", None, "ERIKA"),
        ("andre", None, "ANDRÉ"),
        ("expired", None, RejectReason.EXPIRED),
        ("revoked", None, RejectReason.REVOKED),
        ("erika", Tamper.CANCEL, WalletCancelled),
        ("erika", Tamper.CANCEL_UNENCRYPTED, WalletCancelled),
        ("andre", Tamper.UNTRUSTED_CA, RejectReason.UNTRUSTED_ISSUER),
    ],
)
async def test_every_person_through_the_gateways_verifier(
    wallet_sim: WalletSim, verifier: StubVerifier, person: str, tamper: Tamper | None, outcome: object
) -> None:
    """The process's answers through the gateway's whole response check, the status list fetched from the
    process by the gateway's fetcher (so revocation is decided by the served list)."""
    tx, url = verifier.begin(QUERY, same_device=False)
    await wallet_sim.present(url, person=person, tamper=tamper)
    fetcher = StatusListFetcher(timeout=30.0)
    try:
        token = await fetcher.fetch(wallet_sim.status_uri)
    finally:
        await fetcher.close()

    def check() -> VerifiedPid:
        return verifier.verified(
            tx,
            TrustList.from_file(wallet_sim.ca_path),
            status_token=lambda ref: token if ref.uri == wallet_sim.status_uri else "",
        )

    if isinstance(outcome, str):
        assert check().claims["given_name"] == outcome
    elif outcome is WalletCancelled:
        with pytest.raises(WalletCancelled) as cancelled:
            check()
        assert cancelled.value.error == "access_denied"
    else:
        with pytest.raises(PresentationRejected) as caught:
            check()
        assert caught.value.reason is outcome


async def test_an_unavailable_status_list_is_reported_by_the_gateways_fetcher(wallet_sim: WalletSim) -> None:
    for mode in ("unavailable", "garbage"):
        fetcher = StatusListFetcher(timeout=30.0, cache_seconds=0)
        wallet_sim.status_mode(mode)
        try:
            if mode == "unavailable":
                with pytest.raises(StatusUnavailable):
                    await fetcher.fetch(wallet_sim.status_uri)
            else:
                garbage = await fetcher.fetch(wallet_sim.status_uri)
                ref = StatusRef(wallet_sim.status_uri, 0)
                with pytest.raises(StatusUnavailable):
                    check_status(garbage, ref, trust=TrustList.from_file(wallet_sim.ca_path), now=int(time.time()))
        finally:
            wallet_sim.status_mode("ok")
            await fetcher.close()


async def test_the_wallet_page_follows_a_refusals_redirect(wallet_sim: WalletSim, verifier: StubVerifier) -> None:
    """The gateway answers a rejected presentation 400 with redirect_uri (same-device): the browser goes there."""
    tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url, refuse=True)
    async with browser() as session:
        async with session.get(url) as response:
            form = _form(await response.text())
        async with session.post(
            wallet_sim.url + "/authorize", data={**form, "person": "expired"}, allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"{verifier.base}/done/{tx}?failed"
    # cross-device refusal (no redirect_uri): the page says the service refused
    _, url = verifier.begin(QUERY, same_device=False, wallet_base=wallet_sim.authorize_url, refuse=True)
    async with browser() as session:
        async with session.get(url) as response:
            form = _form(await response.text())
        async with session.post(wallet_sim.url + "/authorize", data={**form, "person": "erika"}) as response:
            assert response.status == 200
            assert "Der Dienst hat die Antwort abgelehnt (HTTP 400)." in await response.text()
