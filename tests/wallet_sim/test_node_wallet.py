"""A second wallet against the gateway's verifier: the maintained TypeScript libraries @openid4vc/openid4vp
(OpenID4VP 1.0 wallet side: request object with x509_hash client id, encrypted direct_post.jwt response)
and @sd-jwt/sd-jwt-vc (presentation and KB-JWT) present the test provider's PIDs; the gateway's
response check (eid_gateway.wallet.verifier) accepts them with exactly the claims asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e.test_wallet_signin import continue_, demo_table, invocation, wallet_page, with_wallet

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.errors import PresentationRejected, RejectReason
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from eid_gateway.wallet.sdjwt import VerifiedPid
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet_sim.wallet import TestWallet
from helpers.gateway import Browser, StartGateway, deliver
from helpers.wallet_sim import WalletSim, node_wallet_present, wallet_sim  # noqa: F401 - the fixture
from wallet_sim.verifier import StubVerifier

REGISTERED = (
    (frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.ADDRESS}), 18),
    (frozenset({Attribute.DATE_OF_BIRTH, Attribute.NATIONALITY, Attribute.PLACE_OF_BIRTH}), None),
    (frozenset({Attribute.PSEUDONYM}), None),
)
PLAIN = {"iss", "iat", "exp", "vct", "status", "nbf"}


def check(wallet: TestWallet, verifier: StubVerifier, tx: str) -> VerifiedPid:
    return verifier.verified(tx, TrustList([wallet.keys.ca.certificate]))


@pytest.mark.parametrize("person", ["erika", "andre"])
@pytest.mark.parametrize(("attributes", "minimum_age"), REGISTERED)
async def test_the_node_wallets_presentation_is_accepted(
    wallet_dir: Path, verifier: StubVerifier, person: str, attributes: frozenset[Attribute], minimum_age: int | None
) -> None:
    wallet = TestWallet.open(wallet_dir, status_uri=None)  # PIDs without a status list entry
    query = dcql_query(attributes, minimum_age=minimum_age, vct_values=DEFAULT_VCT_VALUES)
    tx, url = verifier.begin(query)
    answer = await node_wallet_present(url, wallet, person)
    assert answer["status"] == 200 and answer["client_id"] == verifier.client_id
    pid = check(wallet, verifier, tx)
    asked = {str(c["path"][0]) for c in query["credentials"][0].get("claims", [])}
    present = asked & set(wallet.persons[person].claims) | ({"age_equal_or_over"} if minimum_age else set())
    assert set(pid.claims) - PLAIN == present
    assert pid.holder_jwk_thumbprint == wallet.holder_thumbprint(person)
    if minimum_age:
        assert pid.claims["age_equal_or_over"] == {"18": True}
    if Attribute.ADDRESS in attributes:
        assert pid.claims["address"] == wallet.persons[person].claims["address"]


async def test_a_node_presentation_replayed_into_another_transaction_is_refused(
    wallet_dir: Path, verifier: StubVerifier
) -> None:
    """The library's presentation, made for one transaction, posted into another: its nonce is refused."""
    wallet = TestWallet.open(wallet_dir, status_uri=None)
    query = dcql_query(frozenset({Attribute.GIVEN_NAMES}), minimum_age=None, vct_values=DEFAULT_VCT_VALUES)
    first, url = verifier.begin(query)
    await node_wallet_present(url, wallet, "erika")
    second, _ = verifier.begin(query)
    verifier.transactions[second].forms.append(verifier.transactions[first].forms[0])
    verifier.transactions[second].private_jwk = verifier.transactions[first].private_jwk  # decryptable
    verifier.transactions[second].state = verifier.transactions[first].state
    with pytest.raises(PresentationRejected) as caught:
        check(wallet, verifier, second)
    assert caught.value.reason is RejectReason.NONCE


@pytest.mark.parametrize("same_device", [False, True])
async def test_the_node_wallet_signs_in_to_the_demo_through_the_gateway(
    start_gateway: StartGateway, browser: Browser, wallet_sim: WalletSim, same_device: bool
) -> None:
    """End to end with the second wallet: demo -> gateway -> @openid4vc/openid4vp wallet -> SAML Response
    to the demo, the PID issued by the test provider (trusted CA) and its status list fetched by the gateway."""
    gw = await start_gateway(edit_config=with_wallet(wallet_sim))
    page = await wallet_page(browser, gw, button="signin-wallet")
    url = invocation(page, same_device=same_device)
    answer = await node_wallet_present(url, wallet_sim.wallet(), "andre")
    assert answer["status"] == 200, answer
    body = json.loads(answer["body"])
    if same_device:
        assert body["redirect_uri"].startswith(gw.url("/wallet/done/"))
        post_page = await browser.get(body["redirect_uri"])
    else:
        assert "redirect_uri" not in body
        post_page = await continue_(browser, page)
    result = await deliver(browser, post_page)
    assert result.status == 200, result.text
    table = demo_table(result)
    assert (table["Familienname"], table["Vornamen"]) == ("MUSTERMANN", "ANDRÉ")
    assert table["Vertrauensniveau"] == "substanziell (eIDAS)"
