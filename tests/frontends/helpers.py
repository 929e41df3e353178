"""Helpers for the SAML IdP frontend tests: requests built the way a city service builds them, the citizen
the tests hand to ``finish``, and readers for the pages the gateway answers with."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import lxml.html
from lxml import etree

from eid_gateway.identity import Identity, LevelOfAssurance, PartialDate
from saml import AuthnRequest, KeyPair, build_authn_request, parse_xml, redirect_url, sign_message

ORIGIN = "http://127.0.0.1:8080"
SSO_URL = ORIGIN + "/saml/sso"
SP_ENTITY = "https://buergerportal.example.de/saml"
SP_ACS = "https://buergerportal.example.de/saml/acs"
SP_ACS_2 = "https://buergerportal.example.de/saml/acs2"
OPEN_ENTITY = "https://open.example.de/saml"
OPEN_ACS = "https://open.example.de/acs"

#: The signed-in citizen the tests hand to the frontend's ``finish`` (a test adds what it needs more).
ERIKA = Identity(
    restricted_id="cd" * 32,
    given_names="ERIKA",
    family_names="MUSTERMANN",
    date_of_birth=PartialDate(1964, 8, 12),
    level_of_assurance=LevelOfAssurance.HIGH,
)


def authn_request(issuer: str = SP_ENTITY, **kw: Any) -> AuthnRequest:
    kw.setdefault("destination", SSO_URL)
    kw.setdefault("acs_url", SP_ACS)
    return AuthnRequest(issuer=issuer, **kw)


def redirect_query(request: AuthnRequest, key: KeyPair | None, relay_state: str | None = "rs-1") -> str:
    """The raw query string a service's redirect would carry."""
    url = redirect_url(SSO_URL, build_authn_request(request), relay_state=relay_state, key=key)
    return url.split("?", 1)[1]


def post_fields(request: AuthnRequest, key: KeyPair | None, relay_state: str | None = "rs-1") -> dict[str, str]:
    element = build_authn_request(request)
    if key is not None:
        sign_message(element, key)
    fields = {"SAMLRequest": base64.b64encode(etree.tostring(element)).decode("ascii")}
    if relay_state is not None:
        fields["RelayState"] = relay_state
    return fields


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """(action, hidden fields) of the one form on an HTML page the gateway produced."""
    doc: Any = lxml.html.fromstring(page)
    forms = doc.forms
    assert len(forms) == 1, "expected exactly one form"
    form = forms[0]
    return str(form.action), {str(i.name): str(i.value) for i in form.inputs if i.get("type") == "hidden"}


def saml_response_of(page: str) -> tuple[str, etree._Element, str | None]:
    """(ACS URL, parsed Response element, RelayState) from a POST-binding page."""
    action, fields = form_of(page)
    return action, parse_xml(base64.b64decode(fields["SAMLResponse"])), fields.get("RelayState")


def now() -> datetime:
    return datetime.now(UTC)


def stale() -> datetime:
    return now() - timedelta(minutes=20)


async def get_raw(client: Any, path: str, raw_query: str) -> Any:
    """GET with the query octets exactly as given (the client must not re-encode them)."""
    from yarl import URL

    url = URL(str(client.make_url(path)) + "?" + raw_query, encoded=True)
    return await client.session.get(url, allow_redirects=False)
