"""Texts, language choice, headers, cookies and pseudonyms (the parts that need no running flow)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from eid_gateway.config import GatewayConfig
from eid_gateway.core.port import EidRequest
from eid_gateway.flow import FlowManager, card_request, release_identity
from eid_gateway.frontends.base import FlowStart
from eid_gateway.identity import Attribute, Identity, PartialDate, Place
from eid_gateway.pseudonym import PseudonymError, derive_pseudonym
from eid_gateway.store.sqlite import SqliteStore
from eid_gateway.web.i18n import negotiate_language
from eid_gateway.web.middlewares import content_security_policy, security_headers
from eid_gateway.web.render import STATIC_DIR, TEMPLATE_DIR


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        ("", "", "de"),
        ("", "en-US,en;q=0.9", "en"),
        ("", "fr-FR, en;q=0.5, de;q=0.8", "de"),
        ("", "fr, en;q=0.1", "en"),
        ("", "en;q=0, de;q=0", "de"),
        ("?lang=en", "de", "en"),
        ("?lang=xx", "en", "en"),
        ("", "en;q=bogus, de", "de"),
    ],
)
def test_language_negotiation(query: str, header: str, expected: str) -> None:
    request = make_mocked_request("GET", "/x" + query, headers={"Accept-Language": header} if header else {})
    assert negotiate_language(request) == expected


def test_templates_meet_the_basics() -> None:
    base = (TEMPLATE_DIR / "base.html").read_text(encoding="utf-8")
    assert '<html lang="{{ lang }}">' in base and "skip-link" in base and 'id="main"' in base
    for template in TEMPLATE_DIR.iterdir():
        text = template.read_text(encoding="utf-8")
        scripts = re.findall(r"<script[^>]*>", text)
        assert all(re.fullmatch(r'<script src="[^"]+" defer>', s) for s in scripts), template  # no inline
        assert "</script>\n" not in text.replace("></script>\n", ""), template
        assert "style=" not in text and " on" + "click" not in text, template
    css = (STATIC_DIR / "style.css").read_text(encoding="utf-8")
    assert ":focus" in css and "outline" in css


async def test_headers_in_production() -> None:
    hook = security_headers(["https://svc.example.de/acs"], hsts=True)
    request = make_mocked_request("GET", "/")
    response = web.Response(text="x")
    await hook(request, response)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "form-action 'self' https://svc.example.de/acs" in response.headers["Content-Security-Policy"]


def test_csp_sources_cannot_inject_directives() -> None:
    csp = content_security_policy(["https://svc.example.de/acs;script-src *", "https://a.de/x y"])
    assert "script-src *" not in csp and ";script-src" not in csp
    assert "https://svc.example.de/acs%3Bscript-src" in csp and "https://a.de/x%20y" in csp


async def test_https_origin_gets_host_prefixed_secure_cookie(base_config: GatewayConfig) -> None:
    config = replace(base_config, public_origin="https://eid.example.de")
    store = SqliteStore(":memory:")
    flows = FlowManager(config, store, backend=None)  # type: ignore[arg-type]  # begin() needs no backend

    class Dummy:
        name = "dummy"

    flows.add_frontend(Dummy())  # type: ignore[arg-type]
    service = config.services.by_id("demo")
    assert service is not None
    response = await flows.begin(
        make_mocked_request("GET", "/"), FlowStart(service, "dummy", {}, EidRequest(frozenset({Attribute.GIVEN_NAMES})))
    )
    assert isinstance(response, web.Response)
    morsel = response.cookies["__Host-eidgw-browser"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["domain"]
    assert response.headers["Location"].startswith("/signin/")
    await store.close()


# --- pseudonyms and release ------------------------------------------------------------------------------------


def test_pseudonym_properties() -> None:
    secret = bytes(range(32))
    p = derive_pseudonym(secret, "demo", "0A1B" * 16)
    assert len(p) == 52 and set(p) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert p == derive_pseudonym(secret, "demo", "0a1b" * 16)  # hex case does not matter
    assert p != derive_pseudonym(secret, "demo2", "0A1B" * 16)
    assert p != derive_pseudonym(bytes(32), "demo", "0A1B" * 16)
    # length prefixing: service id / RestrictedID boundaries cannot be shifted
    assert derive_pseudonym(secret, "ab", "cd") != derive_pseudonym(secret, "a", "62cd")  # b"ab" + 0xcd
    with pytest.raises(PseudonymError):
        derive_pseudonym(secret, "demo", "not hex")
    with pytest.raises(PseudonymError):
        derive_pseudonym(b"short", "demo", "00")


def test_release_is_registration_intersect_request(base_config: GatewayConfig) -> None:
    service = base_config.services.by_id("demo")
    assert service is not None
    identity = Identity(
        restricted_id="AB" * 32,
        given_names="ERIKA",
        family_names="MUSTERMANN",
        nationality="D",
        date_of_birth=PartialDate(1964, 8, 12),
        address=Place(city="KÖLN", country="D"),
    )
    asked = EidRequest(required=frozenset({Attribute.GIVEN_NAMES, Attribute.NATIONALITY}))
    released, pseudonym = release_identity(identity, service, asked, base_config.keys.pseudonym_secret)
    assert released.given_names == "ERIKA"
    assert released.nationality is None  # asked, but not registered
    assert released.family_names is None and released.address is None  # registered, but not asked
    assert released.restricted_id is None  # pseudonym not asked: neither it nor the raw RestrictedID
    assert pseudonym == derive_pseudonym(base_config.keys.pseudonym_secret, "demo", "AB" * 32)
    # the card is always asked for the RestrictedID (the subject), without widening the release
    assert Attribute.PSEUDONYM in card_request(asked).required


def test_identity_without_restricted_id_is_refused(base_config: GatewayConfig) -> None:
    from eid_gateway.core.port import EidProtocolError

    service = base_config.services.by_id("demo")
    assert service is not None
    with pytest.raises(EidProtocolError):
        release_identity(Identity(given_names="X"), service, EidRequest(frozenset()), b"k" * 32)
