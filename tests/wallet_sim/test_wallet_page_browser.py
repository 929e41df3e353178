"""The wallet-sim's page in a real headless Chromium: axe-core finds no WCAG 2.1 AA violation (German and
English, 1280 and 360 px: the request page, the answer-sent page, the bad-request page), no horizontal
scrolling, one language per page; sharing by a click sends the browser on to the verifier."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.test_accessibility import AXE, NAVIGATION_TIMEOUT_MS, Report

from eid_gateway.identity import Attribute
from eid_gateway.wallet.dcql import dcql_query
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from helpers.chromium import BROWSER_MARKS
from helpers.wallet_sim import WalletSim, wallet_sim  # noqa: F401  (fixture)
from wallet_sim.verifier import StubVerifier

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node"),
]

QUERY = dcql_query(
    frozenset({Attribute.GIVEN_NAMES, Attribute.ADDRESS, Attribute.DATE_OF_BIRTH}),
    minimum_age=18,
    vct_values=DEFAULT_VCT_VALUES,
)


async def test_the_wallet_page_is_accessible_and_shares_by_a_click(
    wallet_sim: WalletSim, verifier: StubVerifier, chromium: Any
) -> None:
    report = Report()
    for lang, locale, share, sent in (
        ("de", "de-DE", "Als André Mustermann freigeben", "Antwort gesendet"),
        ("en", "en-GB", "Share as André Mustermann", "Answer sent"),
    ):
        for width in (1280, 360):
            ctx = await chromium.new_context(locale=locale, viewport={"width": width, "height": 800})
            ctx.set_default_timeout(NAVIGATION_TIMEOUT_MS)
            page = await ctx.new_page()
            # same-device: the verifier's redirect_uri is followed
            tx, url = verifier.begin(QUERY, wallet_base=wallet_sim.authorize_url)
            await page.goto(url)
            assert await page.evaluate("document.documentElement.lang") == lang
            await report.check(page, f"request {lang} {width}px")
            await page.get_by_role("button", name=share, exact=True).click()
            await page.wait_for_url(f"{verifier.base}/done/{tx}")
            (presentation,) = verifier.transactions[tx].payload()["vp_token"]["pid"]
            assert presentation.count("~") >= 5
            # cross-device answer (no redirect_uri): the wallet says it has answered
            _, url = verifier.begin(QUERY, same_device=False, wallet_base=wallet_sim.authorize_url)
            await page.goto(url)
            await page.get_by_role("button", name=share, exact=True).click()
            await page.wait_for_load_state("load")
            assert await page.get_by_role("heading", level=1).inner_text() == sent
            await report.check(page, f"sent {lang} {width}px")
            # a request the wallet cannot answer: a readable page
            await page.goto(f"{wallet_sim.authorize_url}?client_id=x&request_uri={verifier.base}/request/none")
            await report.check(page, f"bad request {lang} {width}px")
            await ctx.close()
    report.assert_clean(pages=12)
