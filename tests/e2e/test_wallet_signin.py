"""Issue 18, end to end without a real browser: demo service -> gateway -> the test wallet process
(``eid-gateway wallet-sim``) -> SAML Response / OIDC ID token, and every way a wallet answer is refused.

The browser is the scripted one (helpers.gateway); the wallet is the separate process, which issues its
PIDs with the IETF reference SD-JWT library and answers the gateway's signed request object. Chromium
(same-device clicks, the QR code read from a screenshot) is in test_wallet_browser.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from eid_gateway.config import GatewayConfig, RedisSettings
from eid_gateway.demo.pages import OidcDemoPages
from eid_gateway.flow import State
from eid_gateway.identity import LevelOfAssurance
from eid_gateway.store.base import Store
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.redis_server import RedisServer
from eid_gateway.store.sqlite import SqliteStore
from eid_gateway.wallet_sim.wallet import Tamper
from helpers.gateway import Browser, Gateway, Page, StartGateway, deliver, open_oidc_start_page
from helpers.saml_post import status_on
from helpers.wallet_sim import WalletSim, wallet_sim  # noqa: F401 - the fixture
from saml.messages import STATUS_AUTHN_FAILED, STATUS_REQUEST_DENIED, STATUS_RESPONDER

from .test_data_at_rest import own_redis, personal_data_in  # noqa: F401 - own_redis: a fixture


def with_wallet(
    sim: WalletSim, *, methods: str = '["card", "wallet"]', loa: str = "substantial"
) -> Callable[[str], str]:
    """The example config plus [wallet] (trust list = the test PID provider's CA, invocation URL = the
    test wallet's page) and the demo service offering ``methods`` at level ``loa``."""

    def edit(text: str) -> str:
        text = text.replace('\nid = "demo"\n', f'\nid = "demo"\nmethods = {methods}\nlevel_of_assurance = "{loa}"\n', 1)
        return (
            text
            + f'''
[wallet]
trust_list = "{sim.ca_path}"
signing_key = "certs/wallet-request.key"
signing_cert = "certs/wallet-request.crt"
invocation_url = "{sim.authorize_url}"
'''
        )

    return edit


async def wallet_page(browser: Browser, gw: Gateway, *, button: str = "signin") -> Page:
    """Demo -> start page -> "Mit der EUDI-Wallet anmelden" -> the wallet page."""
    demo = await browser.get(gw.url("/demo/"))
    [link] = [a for a in demo.doc().iter("a") if a.get("id") == button]
    start = await browser.get(gw.url(str(link.get("href"))))
    assert start.status == 200 and urlsplit(start.url).path.startswith("/signin/"), start.text
    [index] = [i for i, f in enumerate(start.forms()) if str(f.action).split("?")[0].endswith("/wallet")]
    page = await browser.submit(start, index)
    assert page.status == 200, page.text
    assert urlsplit(page.url).path.endswith("/wallet")
    return page


def invocation(page: Page, *, same_device: bool) -> str:
    if same_device:
        [link] = [a for a in page.doc().iter("a") if a.get("id") == "wallet-same-device"]
        return str(link.get("href"))
    [code] = [c for c in page.doc().iter("code") if c.get("id") == "wallet-cross-device-url"]
    return str(code.text)


async def continue_(browser: Browser, page: Page) -> Page:
    """The wallet page's "Weiter" (a GET form): what the citizen presses after sharing in the wallet."""
    [form] = [f for f in page.forms() if f.get("id") == "wallet-continue"]
    fields = {str(i.name): str(i.value) for i in form.inputs if i.name}
    query = "&".join(f"{k}={v}" for k, v in fields.items())
    return await browser.get(f"{urlsplit(page.url).scheme}://{urlsplit(page.url).netloc}{form.action}?{query}")


def demo_table(page: Page) -> dict[str, str]:
    return {str(row.findtext("th")): str(row.findtext("td")) for row in page.doc().iter("tr")}


async def test_the_demo_offers_the_wallet_only_when_the_gateway_has_one(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway()
    demo = await browser.get(gw.url("/demo/"))
    assert "signin-wallet" not in demo.text and "EUDI" not in demo.text
    start = await browser.get(gw.url("/demo/login"))
    assert "Mit der EUDI-Wallet anmelden" not in start.text and "/wallet" not in start.text


@pytest.mark.parametrize("person", ["erika", "andre"])
async def test_cross_device_saml_sign_in_releases_only_registered_attributes(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, person: str
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw, button="signin-wallet")
    assert "<svg" in page.text and 'role="img"' in page.text  # the QR code, with its text alternative
    url = invocation(page, same_device=False)
    assert url.startswith(wallet_sim.authorize_url + "?client_id=x509_hash%3A")
    request_uri = parse_qs(urlsplit(url).query)["request_uri"][0]
    assert request_uri.startswith(gw.url("/wallet/request/")) and "device=same" not in request_uri

    not_yet = await continue_(browser, page)  # nothing shared yet: said clearly, nothing changes
    assert not_yet.status == 200 and "Noch nicht freigegeben" in not_yet.text

    answer = await wallet_sim.present(url, person=person)
    assert answer["status"] == 200 and answer.get("redirect_uri") is None  # cross-device: no redirect
    # the wallet was asked only for the demo's registered claims (no nationality, no birth place)
    # exactly the demo's registered claims (names, birth date, address; the pseudonym asks for none)
    assert sorted(tuple(p) for p in answer["requested_paths"]) == [
        ("address",),
        ("birthdate",),
        ("family_name",),
        ("given_name",),
    ]

    post_page = await continue_(browser, page)
    assert post_page.status == 200, post_page.text
    result = await deliver(browser, post_page)
    assert result.status == 200, result.text
    table = demo_table(result)
    assert (table["Familienname"], table["Vornamen"]) == {
        "erika": ("MUSTERMANN", "ERIKA"),
        "andre": ("MUSTERMANN", "ANDRÉ"),
    }[person]
    assert table["Vertrauensniveau"] == "substanziell (eIDAS)"  # the wallet's level, not the card's "hoch"
    assert re.fullmatch(r"[a-z2-7]{52}", table["Pseudonym bei diesem Dienst"])  # per-service, from the holder key
    # only the registered attributes (the demo: names, birth date, address, pseudonym)
    assert set(table) == {
        "Familienname",
        "Vornamen",
        "Geburtsdatum",
        "Anschrift",
        "Pseudonym bei diesem Dienst",
        "Vertrauensniveau",
        "Verschlüsselt übertragen",
        "Angemeldet über",
    }


async def test_same_device_returns_the_browser_that_began_and_no_other(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw)
    url = invocation(page, same_device=True)
    assert "device%3Dsame" in url
    answer = await wallet_sim.present(url, person="erika")
    redirect = answer["redirect_uri"]
    assert answer["status"] == 200 and redirect.startswith(gw.url("/wallet/done/"))
    async with aiohttp.ClientSession() as other:  # another browser cannot pick the result up
        async with other.get(redirect, allow_redirects=False) as response:
            assert response.status == 403
            assert "anderen Browser" in await response.text() or "browser" in (await response.text()).lower()
    post_page = await browser.get(redirect)
    result = await deliver(browser, post_page)
    assert demo_table(result)["Familienname"] == "MUSTERMANN"
    again = await browser.get(redirect)  # handed over once
    assert again.status in (404, 410)


async def test_nothing_personal_stays_in_the_store_after_hand_over(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw)
    ref = urlsplit(page.url).path.split("/")[2]
    await wallet_sim.present(invocation(page, same_device=False), person="erika")
    store = SqliteStore(gw.config.store.path)  # the gateway's own store file, read beside it
    waiting = await store.get_flow(ref)
    assert waiting is not None and waiting.state == State.WALLET_VERIFIED
    assert "MUSTERMANN" not in repr(waiting.data) and "ERIKA" not in repr(waiting.data)  # sealed while it waits
    path = gw.config.store.path
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")]
    for file in files:  # while it waits for the browser: sealed on disk too
        assert personal_data_in(file.read_bytes()) == [], file
    await deliver(browser, await continue_(browser, page))
    done = await store.get_flow(ref)
    assert done is not None and done.state == State.DONE
    assert "wallet_pid" not in done.data
    for file in files:
        assert personal_data_in(file.read_bytes()) == [], file
    await store.close()


async def test_the_pseudonym_is_stable_per_wallet_and_differs_between_people(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    """The holder key is the wallet's stable identifier (docs/wallet.md): Erika twice -> one pseudonym,
    Andre another; the audit trail records each sign-in as the wallet's, without personal data."""
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    pseudonyms = []
    for person in ("erika", "erika", "andre"):
        page = await wallet_page(browser, gw)
        assert (await wallet_sim.present(invocation(page, same_device=False), person=person))["status"] == 200
        result = await deliver(browser, await continue_(browser, page))
        pseudonyms.append(demo_table(result)["Pseudonym bei diesem Dienst"])
    assert pseudonyms[0] == pseudonyms[1] != pseudonyms[2]
    store = SqliteStore(gw.config.store.path)
    records = [json.loads(e.body) for e in await store.audit_read()]
    await store.close()
    assert [(r["backend"], r["result"]) for r in records] == [("wallet", "success")] * 3
    assert personal_data_in(json.dumps(records).encode()) == []
    async with browser.session.get(gw.url("/metrics")) as response:  # counted as the wallet's, not the card's
        metrics = await response.text()
    assert 'eidgw_signins_completed_total{backend="wallet",frontend="saml",service="demo"} 3.0' in metrics
    assert 'eidgw_signins_completed_total{backend="simulator"' not in metrics


async def test_cancel_on_the_wallet_page_returns_to_the_service(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw)
    [index] = [i for i, f in enumerate(page.forms()) if str(f.action).split("?")[0].endswith("/cancel")]
    post_page = await browser.submit(page, index)
    saml_status = status_on(post_page, [gw.config.keys.saml_signing.certificate])
    assert (saml_status.code, saml_status.sub_code) == (STATUS_RESPONDER, STATUS_REQUEST_DENIED)
    request_uri = parse_qs(urlsplit(invocation(page, same_device=False)).query)["request_uri"][0]
    async with aiohttp.ClientSession() as wallet, wallet.get(request_uri) as response:
        assert response.status == 404  # too late for the wallet: the request is gone


#: The check that refuses each misbehaviour (eid_gateway.wallet.errors.RejectReason values).
REASONS = {
    "forged_issuer": "issuer_signature",
    "untrusted_ca": "untrusted_issuer",
    "wrong_nonce": "nonce",
    "wrong_audience": "audience",
    "tampered_disclosure": "disclosure_unknown",
    "duplicated_disclosure": "disclosure_duplicate",
    "stale_kb": "kb_stale",
    "kb_wrong_key": "kb_signature",
    "no_key_binding": "malformed",
    "wrong_vct": "vct",
    "expired": "expired",
    "revoked": "revoked",
}


@pytest.mark.parametrize(
    ("tamper", "person", "title", "status"),
    [
        (Tamper.FORGED_ISSUER, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.UNTRUSTED_CA, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.WRONG_NONCE, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.WRONG_AUDIENCE, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.TAMPERED_DISCLOSURE, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.DUPLICATED_DISCLOSURE, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.STALE_KB, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.KB_WRONG_KEY, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.NO_KEY_BINDING, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (Tamper.WRONG_VCT, "erika", "Nachweis nicht anerkannt", STATUS_AUTHN_FAILED),
        (None, "expired", "Nachweis abgelaufen", STATUS_AUTHN_FAILED),
        (None, "revoked", "Nachweis widerrufen", STATUS_AUTHN_FAILED),
        (Tamper.CANCEL, "erika", "Freigabe abgelehnt", STATUS_REQUEST_DENIED),
        (Tamper.CANCEL_UNENCRYPTED, "erika", "Freigabe abgelehnt", STATUS_REQUEST_DENIED),
    ],
    ids=lambda v: getattr(v, "value", v) if not isinstance(v, str) or not v.startswith("urn:") else None,
)
async def test_a_refused_wallet_answer_is_a_clear_page_and_a_protocol_error(
    start_gateway: StartGateway,
    browser: Browser,
    wallet_sim: WalletSim,
    tamper: Tamper | None,
    person: str,
    title: str,
    status: str,
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw)
    answer = await wallet_sim.present(invocation(page, same_device=True), person=person, tamper=tamper)
    cancelled = tamper in (Tamper.CANCEL, Tamper.CANCEL_UNENCRYPTED)
    assert answer["status"] == (200 if cancelled else 400), answer
    body = json.loads(answer["body"])
    if (
        not cancelled
    ):  # the wallet hears of the refusal (OAuth error, the failed check), and still sends the browser back
        assert body["error"] == "invalid_request", body
        assert body["error_description"] == REASONS[tamper.value if tamper else person], body
    redirect = body["redirect_uri"]
    assert redirect.startswith(gw.url("/wallet/done/"))
    failure = await browser.get(redirect)
    assert failure.status == 200 and title in failure.text, failure.text
    assert "MUSTERMANN" not in failure.text
    post_page = await browser.submit(failure)  # "return to the service"
    # on the wire: the signed error Response's status codes
    saml_status = status_on(post_page, [gw.config.keys.saml_signing.certificate])
    assert (saml_status.code, saml_status.sub_code) == (STATUS_RESPONDER, status)
    result = await deliver(browser, post_page)
    assert result.status == 200 and "MUSTERMANN" not in result.text


async def test_a_presentation_replayed_into_another_flow_is_refused(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    first = await wallet_page(browser, gw)
    answer = await wallet_sim.present(invocation(first, same_device=False), person="erika")
    assert answer["status"] == 200
    second = await wallet_page(browser, gw)
    second_url = invocation(second, same_device=False)
    tx = urlsplit(parse_qs(urlsplit(second_url).query)["request_uri"][0]).path.rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as attacker:  # the captured form, posted to the second flow
        async with attacker.post(gw.url(f"/wallet/response/{tx}"), data=answer["form"]) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_request"
    failure = await continue_(browser, second)
    assert "Nachweis nicht anerkannt" in failure.text
    # and the first flow's own answer cannot be posted again either
    first_tx = urlsplit(answer["response_uri"]).path.rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as attacker:
        async with attacker.post(gw.url(f"/wallet/response/{first_tx}"), data=answer["form"]) as response:
            assert response.status == 400


async def test_a_card_only_service_cannot_be_made_to_use_the_wallet(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, tmp_path: Path
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim, methods='["card"]'))
    start = await browser.get(gw.url("/demo/login"))
    assert "Mit der EUDI-Wallet anmelden" not in start.text
    ref = urlsplit(start.url).path.split("/")[2]
    csrf = start.doc().xpath("//input[@name='csrf_token']/@value")[0]
    async with browser.session.post(gw.url(f"/signin/{ref}/wallet"), data={"csrf_token": csrf}) as response:
        assert response.status == 404  # a service without the wallet cannot be made to use it


# --- OpenID Connect ---------------------------------------------------------------------------------------


@pytest.fixture
def id_tokens(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The claims the demo's relying party verified (ID token, then userinfo) and showed."""
    verified: list[dict[str, Any]] = []
    shown = OidcDemoPages.signed_in

    def signed_in(
        self: OidcDemoPages, request: web.Request, claims: dict[str, Any], userinfo: dict[str, Any]
    ) -> web.Response:
        verified.append({**userinfo, **claims})  # the ID token's claims and what userinfo added
        return shown(self, request, claims, userinfo)

    monkeypatch.setattr(OidcDemoPages, "signed_in", signed_in)
    return verified


async def oidc_wallet_page(browser: Browser, gw: Gateway) -> Page:
    """Demo "… (OpenID Connect)" -> authorize -> start page -> "Mit der EUDI-Wallet anmelden"."""
    start = await open_oidc_start_page(browser, gw)
    [index] = [i for i, f in enumerate(start.forms()) if str(f.action).split("?")[0].endswith("/wallet")]
    page = await browser.submit(start, index)
    assert page.status == 200 and urlsplit(page.url).path.endswith("/wallet"), page.text
    return page


@pytest.mark.parametrize(("person", "same_device"), [("erika", True), ("andre", False)])
async def test_oidc_sign_in_with_the_wallet_gives_an_id_token_at_substantial(
    start_gateway: StartGateway,
    browser: Browser,
    wallet_sim: WalletSim,
    id_tokens: list[dict[str, Any]],
    person: str,
    same_device: bool,
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await oidc_wallet_page(browser, gw)
    answer = await wallet_sim.present(invocation(page, same_device=same_device), person=person)
    assert answer["status"] == 200
    result = await browser.get(answer["redirect_uri"]) if same_device else await continue_(browser, page)
    assert result.status == 200 and urlsplit(result.url).path == "/demo/oidc/callback", result.text
    [claims] = id_tokens
    assert claims["acr"] == LevelOfAssurance.SUBSTANTIAL.value
    assert claims["family_name"] == "MUSTERMANN"
    assert claims["given_name"] == {"erika": "ERIKA", "andre": "ANDRÉ"}[person]
    assert re.fullmatch(r"[a-z2-7]{52}", claims["sub"])
    assert "nationalities" not in claims and "place_of_birth" not in claims  # not registered: not asked


async def test_oidc_revoked_pid_is_access_denied_for_the_service(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, id_tokens: list[dict[str, Any]]
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await oidc_wallet_page(browser, gw)
    answer = await wallet_sim.present(invocation(page, same_device=False), person="revoked")
    assert answer["status"] == 400 and json.loads(answer["body"])["error_description"] == "revoked"
    failure = await continue_(browser, page)
    assert "Nachweis widerrufen" in failure.text
    back = await browser.session.post(
        URL(urljoin(failure.url, str(failure.forms()[0].action)), encoded=True),
        data={"csrf_token": failure.doc().xpath("//input[@name='csrf_token']/@value")[0]},
        allow_redirects=False,
    )
    location = back.headers["Location"]
    back.release()
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(gw.url("/demo/oidc/callback"))
    assert query["error"] == ["access_denied"] and query["error_description"] == [
        "the wallet's credential has been revoked"
    ]
    assert id_tokens == []


async def test_status_list_unreachable_is_never_an_accept(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    wallet_sim.status_mode("unavailable")
    try:
        page = await wallet_page(browser, gw)
        answer = await wallet_sim.present(invocation(page, same_device=False), person="erika")
    finally:
        wallet_sim.status_mode("ok")
    assert answer["status"] == 400 and json.loads(answer["body"])["error_description"] == "status_unavailable"
    failure = await continue_(browser, page)
    assert "Nachweis gerade nicht prüfbar" in failure.text
    post_page = await browser.submit(failure)
    saml_status = status_on(post_page, [gw.config.keys.saml_signing.certificate])
    assert (saml_status.code, saml_status.sub_code) == (STATUS_RESPONDER, STATUS_AUTHN_FAILED)


# --- bad input: protocol errors for the wallet, pages for the browser, never 5xx -------------------------


async def test_bad_wallet_requests_get_4xx(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw)
    tx = urlsplit(parse_qs(urlsplit(invocation(page, same_device=False)).query)["request_uri"][0]).path.rsplit("/")[-1]
    unknown = "A" * 43
    async with aiohttp.ClientSession() as wallet:
        for path in (f"/wallet/request/{unknown}", "/wallet/request/short", f"/wallet/done/{unknown}"):
            async with wallet.get(gw.url(path), allow_redirects=False) as response:
                assert response.status == 404, path
        async with wallet.post(gw.url(f"/wallet/response/{unknown}"), data={"response": "x"}) as response:
            assert response.status == 404 and (await response.json())["error"] == "invalid_request"
        async with wallet.post(
            gw.url(f"/wallet/response/{tx}"), data=b"\xff\xfe", headers={"Content-Type": "text/plain"}
        ) as response:
            assert response.status == 415 and (await response.json())["error"] == "invalid_request"
        async with wallet.get(gw.url(f"/wallet/request/{tx}")) as response:  # still answerable
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/oauth-authz-req+jwt"
            assert (await response.text()).count(".") == 2
        async with wallet.post(gw.url(f"/wallet/response/{tx}"), data={"response": "not.a.jwe"}) as response:
            assert response.status == 400 and (await response.json())["error_description"] == "malformed"
        async with wallet.get(gw.url(f"/wallet/request/{tx}")) as response:  # answered: the request is gone
            assert response.status == 404
    failure = await continue_(browser, page)
    assert "Nachweis nicht anerkannt" in failure.text


@pytest.mark.parametrize(("person", "of_age"), [("erika", True), ("minor", False)])
async def test_an_age_check_asks_the_wallet_only_for_the_age_over_answer(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, person: str, of_age: bool
) -> None:
    def edit(text: str) -> str:
        text = with_wallet(wallet_sim)(text)
        old_attributes = 'attributes = ["given_names", "family_names", "date_of_birth", "address", "pseudonym"]\n'
        old_required = 'required = ["given_names", "family_names", "date_of_birth", "address", "pseudonym"]\n'
        assert old_attributes in text and old_required in text
        text = text.replace(old_attributes, 'attributes = ["age_verification", "pseudonym"]\nminimum_age = 18\n', 1)
        return text.replace(old_required, 'required = ["pseudonym"]\n', 1)

    gw = await start_gateway(edit_config=edit)
    page = await wallet_page(browser, gw)
    assert "mindestens 18 Jahre" in page.text  # the wallet page says what is asked
    answer = await wallet_sim.present(invocation(page, same_device=False), person=person)
    assert answer["status"] == 200
    assert [tuple(p) for p in answer["requested_paths"]] == [("age_equal_or_over", "18")]  # nothing else
    result = await deliver(browser, await continue_(browser, page))
    table = demo_table(result)
    assert "Familienname" not in table and "Geburtsdatum" not in table
    assert table["Altersbestätigung"] == ("ja" if of_age else "nein")


async def test_a_wallet_only_service_offers_no_card_step(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim, methods='["wallet"]'))
    start = await browser.get(gw.url("/demo/login"))
    assert start.status == 200 and "Mit der EUDI-Wallet anmelden" in start.text
    assert "AusweisApp" not in start.text and "/eid/tctoken/" not in start.text
    ref = urlsplit(start.url).path.split("/")[2]
    async with aiohttp.ClientSession() as ausweisapp:  # the TC Token asked for anyway: an error token
        async with ausweisapp.get(gw.url(f"/eid/tctoken/{ref}")) as response:
            assert response.status == 200 and b"RefreshAddress" not in await response.read()
    again = await browser.get(gw.url(f"/signin/{ref}"))
    assert "Mit der EUDI-Wallet anmelden" not in again.text  # the flow has ended


async def test_the_wallet_choice_and_page_belong_to_the_browser_that_began(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim
) -> None:
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    start = await browser.get(gw.url("/demo/login"))
    ref = urlsplit(start.url).path.split("/")[2]
    csrf = start.doc().xpath("//input[@name='csrf_token']/@value")[0]
    choose = gw.url(f"/signin/{ref}/wallet")
    async with browser.session.post(choose, data={"csrf_token": "wrong"}, allow_redirects=False) as response:
        assert response.status == 403 and "text/html" in response.headers["Content-Type"]
    async with aiohttp.ClientSession() as other:  # another browser, even with the right token
        async with other.post(choose, data={"csrf_token": csrf}, allow_redirects=False) as response:
            assert response.status == 403 and "text/html" in response.headers["Content-Type"]
    async with browser.session.post(
        choose, data=b"\xff", headers={"Content-Type": "multipart/form-data"}, allow_redirects=False
    ) as response:
        assert 400 <= response.status < 500
    page = await browser.get(choose)
    assert urlsplit(page.url).path == f"/signin/{ref}"  # not chosen yet: back to the start page
    async with browser.session.post(choose, data={"csrf_token": csrf}, allow_redirects=False) as response:
        assert response.status == 303
    async with aiohttp.ClientSession() as other:
        for path in (f"/signin/{ref}/wallet", f"/signin/{ref}/wallet/status"):
            async with other.get(gw.url(path), allow_redirects=False) as response:
                assert response.status in (403, 404), path


async def test_on_redis_the_aof_holds_no_personal_data_of_a_wallet_sign_in(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, own_redis: RedisServer
) -> None:
    """The shared store of several nodes: the whole write history (AOF), the waiting PID included."""

    def redis_store(config: GatewayConfig) -> Store:
        return create_redis_store(RedisSettings(url=own_redis.url, key_prefix="eidgw:"))

    gw = await start_gateway(edit_config=with_wallet(wallet_sim), store=redis_store)
    for person, same_device in (("erika", True), ("andre", False)):
        page = await wallet_page(browser, gw)
        answer = await wallet_sim.present(invocation(page, same_device=same_device), person=person)
        post_page = await browser.get(answer["redirect_uri"]) if same_device else await continue_(browser, page)
        assert "MUSTERMANN" in demo_table(await deliver(browser, post_page))["Familienname"]
    aof = [f for f in own_redis.directory.rglob("*") if f.is_file() and ".aof" in f.name]
    assert aof and sum(f.stat().st_size for f in aof) > 0
    assert b"wallet_pid" in b"".join(f.read_bytes() for f in aof)  # the waiting PID was written (sealed) ...
    for file in aof:
        assert personal_data_in(file.read_bytes()) == [], file  # ... and nothing personal in the clear
