"""Machine-checked accessibility: axe-core (the npm package pinned in tests/rp_node, run inside the real
Chromium through Playwright) over every page a citizen can see, in German and English, at 1280 px and at
390 px: no violation of the WCAG 2.1 A/AA rules (tags wcag2a, wcag2aa, wcag21a, wcag21aa). And a keyboard
walk-through: Tab reaches every control of a page in order, and the focused control is visibly marked.

The gateway runs as ``eid-gateway serve`` runs it (the connection guard's protocol, so aiohttp's own 400
for an over-long request line is the gateway's page too); every page is reached the way a citizen reaches
it (links, buttons, the simulated AusweisApp, the self-submitting SAML form), the failure kinds through
the simulator's error cards and, for a relayed sign-in, a second browser.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.instance import write_example_config
from eid_gateway.web.connections import ConnectionGuard, GuardedSite
from helpers.chromium import ARGS, BROWSER_MARKS, CHROMIUM
from helpers.keys import DevKeys
from helpers.ports import free_port

AXE = Path(__file__).resolve().parents[1] / "rp_node" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: The narrowest screen the pages are laid out for (WCAG 1.4.10 Reflow: 320 CSS px without scrolling sideways).
NARROWEST = {"width": 320, "height": 640}
LOCALES = {"de": "de-DE", "en": "en-GB"}
#: The simulator's error cards, one per failure kind the card step can end in (the relayed sign-in's
#: OTHER_BROWSER is reached with a second browser).
ERROR_CARDS = {
    "cancelled": "123456",
    "wrong-pin": "123456",
    "blocked": "123456",
    "expired": "123456",
    "timeout": "123456",
    "connection": "123456",
    "server-error": "123456",
}
#: Generous: a page's navigation, on a slow CI machine, in milliseconds.
NAVIGATION_TIMEOUT_MS = 30_000

pytestmark = [
    *BROWSER_MARKS,
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: ./dev test runs npm ci in tests/rp_node"),
]

_RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return {
    violations: result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})),
    rules: result.passes.length + result.violations.length + result.incomplete.length + result.inapplicable.length,
  };
}"""


@dataclass
class Served:
    origin: str
    config: GatewayConfig


#: Words that mark a sentence of the other language (whole words, case-sensitive where it matters).
OTHER_LANGUAGE_WORDS = {
    "de": re.compile(r"\b(the|and|you|your|please|Please|was|not|sign-in|Sign in)\b"),
    "en": re.compile(r"\b(und|der|die|das|Sie|Ihre|nicht|werden|bitte|Bitte|Anmeldung)\b"),
}
#: The page's text without the language switch (the one link that names the other language, in it).
_TEXT_IN_PAGE_LANGUAGE = """() => {
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("a[hreflang]").forEach(e => e.remove());
  return [document.documentElement.lang, clone.innerText];
}"""


@dataclass
class Report:
    """Which pages were checked, and what axe, the layout and the language check found on each."""

    pages: list[str] = field(default_factory=list)
    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rules: int = 0
    #: pages wider than the screen (horizontal scrolling), in CSS pixels
    overflow: dict[str, int] = field(default_factory=dict)
    #: pages with a word of the other language in their text
    mixed: dict[str, list[str]] = field(default_factory=dict)

    async def check(self, page: Any, name: str) -> None:
        await page.wait_for_load_state("load")
        wider = int(await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))
        if wider > 0:
            self.overflow[name] = wider
        lang, text = await page.evaluate(_TEXT_IN_PAGE_LANGUAGE)
        if lang in OTHER_LANGUAGE_WORDS:
            found = sorted(set(OTHER_LANGUAGE_WORDS[lang].findall(text)))
            if found:
                self.mixed[name] = found
        if not await page.evaluate("typeof axe !== 'undefined'"):
            await page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
        result = await page.evaluate(_RUN_AXE, WCAG_TAGS)
        self.pages.append(name)
        self.rules = max(self.rules, int(result["rules"]))
        if result["violations"]:
            self.violations[name] = result["violations"]

    def assert_clean(self, *, pages: int) -> None:
        """``pages`` pages were checked, by axe's WCAG rule set (more than 20 rules), and none had a finding."""
        assert len(self.pages) == pages and self.rules > 20
        assert self.violations == {}
        assert self.overflow == {}
        assert self.mixed == {}


@pytest.fixture
async def served(tmp_path: Path, reuse_dev_keys: DevKeys) -> AsyncIterator[Served]:
    """The gateway from `init`'s config behind the connection guard, as `serve` runs it."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = load_config(write_example_config(tmp_path / "instance", origin, port))
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    try:
        guard = ConnectionGuard(config.listen, config.limits.trusted_proxies, hsts=False)
        await GuardedSite(runner, "127.0.0.1", port, guard).start()
        yield Served(origin, config)
    finally:
        await runner.cleanup()


async def _to_card_page(page: Any, gw: Served, *, oidc: bool = False) -> str:
    """Demo service -> the gateway's start page -> the simulated AusweisApp; returns the start page's URL."""
    await page.goto(gw.origin + "/demo/")
    await page.click("#signin-oidc" if oidc else "#signin")
    await page.wait_for_url(re.compile(r".*/signin/[^/?]+.*"))
    start = str(page.url)
    await page.click('a[href^="/eid-sim/client"]')
    await page.wait_for_url(re.compile(r".*/eid-sim/client.*"))
    return start


async def _confirm(page: Any, identity: str, pin: str) -> None:
    await page.check(f"input[name=identity][value={identity}]")
    await page.fill("#pin", pin)
    await page.click("button[value=confirm]")


async def _post_instead(page: Any, url: str, body: bytes) -> None:
    """Open ``url`` as a form POST with ``body`` (a browser's navigation, its method changed on the way)."""

    async def as_post(route: Any) -> None:
        headers = {**route.request.headers, "content-type": "application/x-www-form-urlencoded"}
        await route.continue_(method="POST", post_data=body, headers=headers)

    await page.route(url, as_post)
    await page.goto(url)
    await page.unroute(url)


async def _walk_every_page(chromium: Any, gw: Served, lang: str, viewport: dict[str, int]) -> Report:
    report = Report()
    context = await chromium.new_context(locale=LOCALES[lang], viewport=viewport)
    context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
    page = await context.new_page()

    # the check can fail: a page without a language and an image without a text alternative
    canary = Report()
    await page.set_content('<!DOCTYPE html><title>x</title><img src="data:image/png;base64,AA==">')
    await canary.check(page, "canary")
    assert {v["id"] for v in canary.violations["canary"]} >= {"html-has-lang", "image-alt"}, canary.violations

    await page.goto(gw.origin + "/demo/")
    await report.check(page, "demo: start")
    for legal in ("impressum", "datenschutz", "barrierefreiheit", "hilfe"):
        await page.goto(f"{gw.origin}/demo/legal/{legal}")
        await report.check(page, f"demo: {legal} (placeholder)")

    # the SAML sign-in: start page, card step, the self-submitting POST, the demo's result
    start = await _to_card_page(page, gw)
    await page.go_back()
    await page.wait_for_url(start)
    await report.check(page, "gateway: start page (SAML)")
    await page.go_forward()
    await report.check(page, "simulator: card step")
    await _confirm(page, "erika", "123456")
    await page.wait_for_url(gw.origin + "/demo/acs")
    assert "MUSTERMANN" in await page.inner_text("#identity")
    await report.check(page, "demo: result (SAML)")
    response = await page.goto(start)
    assert response is not None and response.status >= 400
    await report.check(page, f"gateway: message (start page after the sign-in, HTTP {response.status})")

    # the OpenID Connect sign-in and its result
    await _to_card_page(page, gw, oidc=True)
    await _confirm(page, "erika", "123456")
    await page.wait_for_url(re.compile(r".*/demo/oidc/callback.*"))
    assert "MUSTERMANN" in await page.inner_text("#identity")
    await report.check(page, "demo: result (OpenID Connect)")

    # every failure kind of the card step, and for the first the service's error page
    titles = set()
    for card, pin in ERROR_CARDS.items():
        await _to_card_page(page, gw)
        await _confirm(page, card, pin)
        await page.wait_for_selector(".notice.error")
        titles.add(await page.inner_text(".notice.error h2"))
        await report.check(page, f"gateway: failure ({card})")
        if card == "cancelled":
            await page.click("form button[type=submit]")
            await page.wait_for_url(gw.origin + "/demo/acs")
            await page.wait_for_selector("#error")
            await report.check(page, "demo: error (cancelled, status in words)")

    assert len(titles) == len(ERROR_CARDS), titles  # each card ended in a failure kind of its own
    # a relayed sign-in: another browser opens the refresh address (message), the owner's gets the failure
    await _to_card_page(page, gw)
    other = await chromium.new_context(locale=LOCALES[lang], viewport=viewport)
    other.set_default_timeout(NAVIGATION_TIMEOUT_MS)
    victim = await other.new_page()
    await victim.goto(page.url)
    await _confirm(victim, "erika", "123456")
    await victim.wait_for_url(re.compile(r".*/eid/refresh/.*"))
    await report.check(victim, "gateway: message (sign-in ended for your protection)")
    await page.goto(victim.url)
    await page.wait_for_selector(".notice.error")
    await report.check(page, "gateway: failure (other browser)")
    await other.close()

    # messages and HTTP errors
    await page.goto(gw.origin + "/signin/" + "A" * 43)
    await report.check(page, "gateway: message (sign-in not found, 404)")
    await page.goto(gw.origin + "/nowhere")
    await report.check(page, "gateway: HTTP 404")
    await _post_instead(page, gw.origin + "/saml/sso", b"x" * (gw.config.limits.max_body_bytes + 1))
    await report.check(page, "gateway: HTTP 413")
    response = await page.goto(gw.origin + "/signin/" + "A" * 9000)
    assert response is not None and response.status == 400  # aiohttp's own refusal, the guard's page
    await report.check(page, "gateway: HTTP 400 (over-long request line)")
    await page.goto(gw.origin + "/oidc/authorize?client_id=nobody&response_type=code&scope=openid")
    await report.check(page, "gateway: OpenID Connect error page (unknown client)")
    await context.close()
    return report


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("lang", LOCALES)
async def test_every_citizen_page_has_no_wcag_21_aa_violation(served: Served, lang: str, viewport: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            report = await _walk_every_page(chromium, served, lang, VIEWPORTS[viewport])
        finally:
            await chromium.close()
    print(
        f"\naxe-core {lang} {viewport}: {len(report.pages)} pages, {report.rules} rules each, "
        f"{sum(len(v) for v in report.violations.values())} violations"
    )
    for name in report.pages:
        print(f"  {name}: {len(report.violations.get(name, []))}")
    assert len(report.pages) >= 25
    assert report.violations == {}, json.dumps(report.violations, indent=1, ensure_ascii=False)
    assert report.overflow == {}, f"pages wider than {VIEWPORTS[viewport]['width']} px: {report.overflow}"
    assert report.mixed == {}, f"words of the other language on {lang} pages: {report.mixed}"


# --- keyboard --------------------------------------------------------------------------------------------

#: Marks every control a keyboard user must reach (in document order; of a radio group only the checked
#: one is a tab stop) and returns how many there are.
_MARK_CONTROLS = """() => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])';
  const controls = [...document.querySelectorAll(selector)].filter(e =>
      !e.disabled && !(e.type === "radio" && !e.checked) && e.getClientRects().length > 0
      || e.classList.contains("skip-link"));
  controls.forEach((e, i) => e.dataset.kbd = String(i));
  return controls.length;
}"""

#: The focused control: its mark, whether a focus indicator is drawn, and whether it is on screen.
_FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const r = e.getBoundingClientRect();
  return {mark: e.dataset.kbd ?? null, tag: e.tagName, text: (e.innerText || e.value || "").slice(0, 40),
          outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2,
          shadow: s.boxShadow !== "none",
          onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 &&
                    r.left < window.innerWidth + 1};
}"""


async def _tab_through(page: Any) -> tuple[int, list[dict[str, Any]]]:
    """Press Tab from the top of the page until every control was focused once (bounded)."""
    count = int(await page.evaluate(_MARK_CONTROLS))
    await page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    stops: list[dict[str, Any]] = []
    for _ in range(count + 3):  # a bounded walk: every control once, plus leeway for the browser's own stops
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED)
        if focused is None or (stops and focused["mark"] == stops[0]["mark"]):
            break
        stops.append(focused)
    return count, stops


@pytest.mark.parametrize("viewport", VIEWPORTS)
async def test_keyboard_reaches_every_control_in_order_with_visible_focus(served: Served, viewport: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await chromium.new_context(locale="de-DE", viewport=VIEWPORTS[viewport])
            context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
            page = await context.new_page()
            walks: dict[str, tuple[int, list[dict[str, Any]]]] = {}
            await page.goto(served.origin + "/demo/")
            walks["demo start"] = await _tab_through(page)
            start = await _to_card_page(page, served)
            walks["card step"] = await _tab_through(page)
            await page.goto(start)
            walks["start page"] = await _tab_through(page)
            await _to_card_page(page, served)
            await _confirm(page, "cancelled", "123456")
            await page.wait_for_selector(".notice.error")
            walks["failure"] = await _tab_through(page)
            await page.goto(served.origin + "/nowhere")
            walks["404"] = await _tab_through(page)
        finally:
            await chromium.close()
    for name, (count, stops) in walks.items():
        marks = [stop["mark"] for stop in stops]
        # every control, each once, in document order (the skip link first)
        assert marks == [str(i) for i in range(count)], (name, stops)
        assert stops[0]["text"] in ("Zum Inhalt springen",), (name, stops[0])
        for stop in stops:
            assert stop["outline"] and stop["shadow"], (name, "focus not visible", stop)
            assert stop["onScreen"], (name, "focused control off screen", stop)
        print(f"\nkeyboard {viewport} {name}: {count} controls, all reached in order, focus visible")


@pytest.mark.parametrize("lang", LOCALES)
async def test_the_pages_reflow_at_320_px_and_keep_to_one_language(served: Served, lang: str) -> None:
    """WCAG 1.4.10: at 320 CSS px nothing scrolls sideways (long values such as the pseudonym wrap), axe
    finds nothing there either; every page speaks the language it declares."""
    from playwright.async_api import async_playwright

    report = Report()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await chromium.new_context(locale=LOCALES[lang], viewport=NARROWEST)
            context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
            page = await context.new_page()
            await page.goto(served.origin + "/demo/")
            await report.check(page, "demo: start")
            start = await _to_card_page(page, served)
            await report.check(page, "simulator: card step")
            await _confirm(page, "erika", "123456")
            await page.wait_for_url(served.origin + "/demo/acs")
            await report.check(page, "demo: result (SAML)")
            await page.goto(start)
            await report.check(page, "gateway: message")
            await _to_card_page(page, served)
            await page.go_back()
            await report.check(page, "gateway: start page")
            await page.go_forward()
            await _confirm(page, "blocked", "123456")
            await page.wait_for_selector(".notice.error")
            await report.check(page, "gateway: failure")
            await page.goto(served.origin + "/nowhere")
            await report.check(page, "gateway: HTTP 404")
        finally:
            await chromium.close()
    assert len(report.pages) == 7 and report.violations == {}, report.violations
    assert report.overflow == {}, f"pages wider than 320 px: {report.overflow}"
    assert report.mixed == {}, f"words of the other language on {lang} pages: {report.mixed}"
