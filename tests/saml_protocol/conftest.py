"""Shared fixtures: one IdP (EC P-256 signing key), one SP (RSA-3072 key for decryption), and a factory
that builds a well-formed, correctly signed Response which each test then bends in one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree

from saml import messages as m
from saml.keys import KeyPair, generate_key_pair
from saml.stores import InMemoryReplayCache, InMemoryRequestStore
from saml.validate import ResponseValidator
from saml.xml import to_bytes
from saml.xmlenc import encrypt_assertion

IDP = "https://idp.example.de/saml/metadata"
SP = "https://service.stadt.example/saml/metadata"
ACS = "https://service.stadt.example/saml/acs"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

#: An AuthnRequest with every optional field set but the extensions (and acs_index, which excludes acs_url).
FULL_AUTHN_REQUEST = m.AuthnRequest(
    issuer=SP,
    id="_r1",
    issue_instant=NOW,
    destination="https://idp.example.de/sso",
    acs_url=ACS,
    protocol_binding=m.BINDING_HTTP_POST,
    force_authn=True,
    is_passive=False,
    provider_name="Stadt",
    name_id_policy=m.NameIDPolicy(m.NAMEID_PERSISTENT, SP, True),
    requested_authn_context=m.RequestedAuthnContext((m.AC_SMARTCARD_PKI,), "minimum"),
)


@pytest.fixture(scope="session")
def idp_key() -> KeyPair:
    return generate_key_pair("ec-p256", "test idp")


@pytest.fixture(scope="session")
def other_key() -> KeyPair:
    return generate_key_pair("ec-p256", "attacker")


@pytest.fixture(scope="session")
def sp_key() -> KeyPair:
    return generate_key_pair("rsa-3072", "test sp")


@dataclass
class Parts:
    """Knobs of one Response; defaults give a valid solicited response at NOW."""

    request_id: str | None = "_req0123456789abcdef0123456789abcdef"
    name_id: str = "user@city.de"
    assertion_id: str = field(default_factory=m.new_id)
    issuer: str = IDP
    response_issuer: str | None = IDP
    destination: str | None = ACS
    recipient: str | None = ACS
    audience: str = SP
    not_before: datetime = NOW - timedelta(seconds=30)
    not_on_or_after: datetime = NOW + timedelta(minutes=5)
    status: m.Status = field(default_factory=m.Status)
    attributes: tuple[m.Attribute, ...] = (
        m.Attribute("urn:oid:2.5.4.42", ("ERIKA",), friendly_name="givenName"),
        m.Attribute("urn:oid:0.9.2342.19200300.100.1.3", ("a@x.de", "b@x.de"), friendly_name="mail"),
    )


class Factory:
    def __init__(self, idp_key: KeyPair, sp_key: KeyPair) -> None:
        self.idp_key = idp_key
        self.sp_key = sp_key

    def assertion(self, p: Parts) -> m.Assertion:
        return m.Assertion(
            issuer=p.issuer,
            id=p.assertion_id,
            issue_instant=NOW,
            subject=m.Subject(
                m.NameID(p.name_id, m.NAMEID_TRANSIENT, sp_name_qualifier=SP),
                (
                    m.SubjectConfirmation(
                        recipient=p.recipient, not_on_or_after=p.not_on_or_after, in_response_to=p.request_id
                    ),
                ),
            ),
            conditions=m.Conditions(
                not_before=p.not_before,
                not_on_or_after=p.not_on_or_after,
                audience_restrictions=((p.audience,),),
                one_time_use=True,
            ),
            authn_statements=(m.AuthnStatement(authn_instant=NOW, session_index="_s1", class_ref=m.AC_SMARTCARD_PKI),),
            attributes=p.attributes,
        )

    def assertion_element(self, p: Parts, *, sign: bool = True, key: KeyPair | None = None) -> etree._Element:
        el = m.build_assertion(self.assertion(p))
        if sign:
            m.sign_message(el, key or self.idp_key)
        return el

    def response_element(
        self,
        p: Parts | None = None,
        *,
        sign_assertion: bool = True,
        sign_response: bool = False,
        encrypt: bool = False,
        assertions: list[etree._Element] | None = None,
    ) -> etree._Element:
        p = p or Parts()
        if assertions is None:
            a = self.assertion_element(p, sign=sign_assertion) if p.status.is_success else None
            if a is not None and encrypt:
                a = encrypt_assertion(a, self.sp_key.certificate)
            assertions = [] if a is None else [a]
        resp = m.build_response(
            m.Response(
                issuer=p.response_issuer,
                status=p.status,
                issue_instant=NOW,
                destination=p.destination,
                in_response_to=p.request_id,
            ),
            assertions,
        )
        if sign_response:
            m.sign_message(resp, self.idp_key)
        return resp

    def response(self, p: Parts | None = None, **kw: Any) -> bytes:
        return to_bytes(self.response_element(p, **kw))


@pytest.fixture()
def factory(idp_key: KeyPair, sp_key: KeyPair) -> Factory:
    return Factory(idp_key, sp_key)


@pytest.fixture()
def make_validator(idp_key: KeyPair, sp_key: KeyPair) -> Callable[..., ResponseValidator]:
    def make(**kw: Any) -> ResponseValidator:
        options: dict[str, Any] = dict(
            sp_entity_id=SP,
            acs_url=ACS,
            idp_entity_id=IDP,
            idp_certs=[idp_key.certificate],
            decryption_keys=[sp_key],
            request_store=InMemoryRequestStore(),
            replay_cache=InMemoryReplayCache(),
        )
        options.update(kw)
        v = ResponseValidator(**options)
        v.request_store.add(Parts().request_id or "", expires_at=NOW + timedelta(minutes=10))
        return v

    return make


__all__ = ["ACS", "IDP", "NOW", "SP", "Factory", "Parts", "replace"]
