"""The HTTP-POST binding page the gateway answers with: it submits itself by the gateway's static script
(allowed by ``script-src 'self'``, no inline script, no event-handler attributes), and without
JavaScript the citizen still has the button and the text (in the citizen's language). The browser behaviour
itself is shown in tests/e2e/test_browser.py."""

from __future__ import annotations

from typing import Any

import lxml.html
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from eid_gateway.core.port import FailureKind
from eid_gateway.frontends.base import FlowContext
from eid_gateway.frontends.saml_idp import AUTOSUBMIT_SCRIPT_PATH
from eid_gateway.identity import Identity, LevelOfAssurance
from eid_gateway.web.render import STATIC_DIR
from saml.bindings import AUTOSUBMIT_SCRIPT, FORM_ID

from .conftest import Harness
from .helpers import SP_ACS, authn_request, get_raw, redirect_query

ERIKA = Identity(
    restricted_id="cd" * 32, given_names="ERIKA", family_names="MUSTERMANN", level_of_assurance=LevelOfAssurance.HIGH
)


def _flow(h: Harness) -> FlowContext:
    service = h.config.services.by_id("portal")
    assert service is not None
    state = {
        "request_id": "_req1",
        "acs_url": SP_ACS,
        "relay_state": "rs",
        "has_relay_state": "1",
        "binding": "post",
        "released": "family_names",
    }
    return FlowContext("ref", service, state, "de")


def _text(response: web.StreamResponse) -> str:
    body = response.body  # type: ignore[attr-defined]
    assert isinstance(body, bytes)
    return body.decode("utf-8")


async def _pages(h: Harness) -> dict[str, str]:
    """The three ways the POST page is made: success, failed card step, refused request."""
    request = make_mocked_request("GET", "/eid/refresh/ref")
    refused = await get_raw(h.client, "/saml/sso", redirect_query(authn_request(is_passive=True), h.keys.sp))
    assert refused.status == 200
    return {
        "finish": _text(await h.frontend.finish(request, _flow(h), ERIKA, "pseudonym")),
        "fail": _text(await h.frontend.fail(request, _flow(h), FailureKind.CANCELLED)),
        "refused": await refused.text(),
    }


async def test_every_post_page_submits_itself_with_the_static_script_only(harness: Harness) -> None:
    for name, page in (await _pages(harness)).items():
        doc: Any = lxml.html.fromstring(page)
        scripts = doc.xpath("//script")
        assert [s.get("src") for s in scripts] == [AUTOSUBMIT_SCRIPT_PATH], name
        assert not (scripts[0].text or "").strip(), f"{name}: inline script"
        handlers = [a for el in doc.iter() for a in el.attrib if a.lower().startswith("on")]
        assert handlers == [], name


async def test_without_javascript_the_button_and_the_text_stay(harness: Harness) -> None:
    """The page is the gateway's own (layout, stylesheet) in the citizen's language only, without a
    language switch (its link would repeat the request)."""
    for name, page in (await _pages(harness)).items():
        doc: Any = lxml.html.fromstring(page)
        [form] = doc.forms
        assert form.get("id") == FORM_ID and form.method.upper() == "POST", name
        assert doc.xpath(f'//form[@id="{FORM_ID}"]//button[@type="submit"]'), name
        assert "bitte auf „Weiter“ klicken" in page and "press “Continue”" not in page, name
        assert doc.xpath('//link[@href="/static/style.css"]') and doc.get("lang") == "de", name
        assert not doc.xpath("//a[@hreflang]"), name


async def test_the_post_page_speaks_the_flows_language(harness: Harness) -> None:
    request = make_mocked_request("GET", "/eid/refresh/ref", headers={"Accept-Language": "de"})
    english = FlowContext("ref", _flow(harness).service, _flow(harness).frontend_state, "en")
    page = _text(await harness.frontend.finish(request, english, ERIKA, "pseudonym"))
    assert 'lang="en"' in page and "press “Continue”" in page and "Weiter" not in page


def test_the_static_file_is_the_toolkits_script() -> None:
    """One script: the file the gateway serves is byte for byte the toolkit's AUTOSUBMIT_SCRIPT, which
    submits the form with the id the page uses."""
    name = AUTOSUBMIT_SCRIPT_PATH.removeprefix("/static/")
    assert (STATIC_DIR / name).read_bytes() == AUTOSUBMIT_SCRIPT
    assert f'getElementById("{FORM_ID}")'.encode() in AUTOSUBMIT_SCRIPT
