"""Fuzzing the SAML toolkit's parsers of outside input: only the declared ``SamlError`` types may come out.

Seeds are real messages built by the toolkit's own builders (and the Response factory and keys of the SAML
protocol tests); every test feeds a fixed number of deterministic mutants (see :mod:`.mutate`).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from urllib.parse import quote

from lxml import etree
from saml_protocol.conftest import (
    ACS,
    FULL_AUTHN_REQUEST,
    IDP,
    NOW,
    SP,
    Factory,
    Parts,
    factory,  # noqa: F401  (fixture)
    idp_key,  # noqa: F401  (fixture)
    make_validator,  # noqa: F401  (fixture)
    sp_key,  # noqa: F401  (fixture)
)

from saml import errors
from saml import messages as m
from saml import metadata as md
from saml.bindings import decode_redirect, parse_post, parse_redirect, redirect_url
from saml.keys import KeyPair
from saml.validate import ResponseValidator
from saml.xml import parse_xml, qname, to_bytes
from saml.xmlenc import decrypt_assertion

from .mutate import binary_mutants, fuzz, xml_mutants


def _authn_requests() -> list[bytes]:
    full = replace(
        FULL_AUTHN_REQUEST,
        name_id_policy=m.NameIDPolicy(m.NAMEID_TRANSIENT, SP, True),
        extensions=(etree.Element("{urn:x}Ext"),),
    )
    by_index = m.AuthnRequest(issuer=SP, id="_r2", issue_instant=NOW, acs_index=3)
    return [to_bytes(m.build_authn_request(r)) for r in (full, by_index)]


def _logout_messages() -> list[bytes]:
    request = m.LogoutRequest(
        issuer=SP,
        name_id=m.NameID("abc", m.NAMEID_PERSISTENT, "q", SP),
        id="_l1",
        issue_instant=NOW,
        destination="https://idp.example.de/slo",
        not_on_or_after=NOW + timedelta(minutes=5),
        reason=m.LOGOUT_REASON_USER,
        session_indexes=("_s1", "_s2"),
    )
    response = m.LogoutResponse(
        issuer=IDP,
        in_response_to="_l1",
        id="_l2",
        issue_instant=NOW,
        status=m.Status(m.STATUS_REQUESTER, m.STATUS_PARTIAL_LOGOUT, "partly"),
    )
    return [to_bytes(m.build_logout_request(request)), to_bytes(m.build_logout_response(response))]


def _parse_message(data: bytes) -> object:
    """What a receiver does with a message it has decoded: parse the envelope, and the assertion in it."""
    root = parse_xml(data)
    if root.tag == qname("samlp", "AuthnRequest"):
        return m.parse_authn_request(root)
    if root.tag == qname("samlp", "LogoutRequest"):
        return m.parse_logout_request(root)
    if root.tag == qname("samlp", "LogoutResponse"):
        return m.parse_logout_response(root)
    if root.tag == qname("samlp", "Response"):
        m.parse_response(root)
        return [m.parse_assertion(a) for a in root if a.tag == qname("saml", "Assertion")]
    return m.parse_assertion(root)


def test_xml_parser(factory: Factory) -> None:
    samples = [factory.response(), *_authn_requests(), *_logout_messages()]
    tally = fuzz(
        "saml.xml.parse_xml", parse_xml, xml_mutants(samples, 2000, seed=1, raw_share=0.7), (errors.XmlSecurityError,)
    )
    tally.check(min_inputs=2000)


def test_message_parsers(factory: Factory) -> None:
    assertion = to_bytes(factory.assertion_element(Parts(), sign=False))
    samples = [factory.response(sign_assertion=False), assertion, *_authn_requests(), *_logout_messages()]
    tally = fuzz(
        "saml.messages.parse_*",
        _parse_message,
        xml_mutants(samples, 2000, seed=2),
        (errors.MessageError, errors.XmlSecurityError),
    )
    tally.check(min_inputs=2000)


def test_response_validator(factory: Factory, make_validator: Callable[[], ResponseValidator]) -> None:
    """The whole SP pipeline: XML, dsig (signature shape, references, IDs), decryption, protocol checks."""

    def validate(data: bytes) -> object:
        return make_validator().validate(data, now=NOW)

    samples = [factory.response(), factory.response(sign_response=True), factory.response(encrypt=True)]
    tally = fuzz(
        "saml.validate.ResponseValidator.validate", validate, xml_mutants(samples, 400, seed=3), (errors.SamlError,)
    )
    tally.check(min_inputs=400)


def test_decrypt_assertion(factory: Factory, sp_key: KeyPair) -> None:
    response = factory.response_element(encrypt=True)
    sample = to_bytes(next(iter(response.iterchildren(qname("saml", "EncryptedAssertion")))))

    def decrypt(data: bytes) -> object:
        return decrypt_assertion(parse_xml(data), [sp_key])

    tally = fuzz(
        "saml.xmlenc.decrypt_assertion",
        decrypt,
        xml_mutants([sample], 200, seed=4),
        (errors.EncryptionError, errors.XmlSecurityError),
    )
    tally.check(min_inputs=200)


def _metadata(idp_key: KeyPair, sp_key: KeyPair) -> list[bytes]:
    idp = md.EntityDescriptor(
        entity_id=IDP,
        id="_md1",
        valid_until=NOW + timedelta(days=30),
        cache_duration=timedelta(hours=6),
        idp=md.IDPSSODescriptor(
            sso_services=(
                md.Endpoint(m.BINDING_HTTP_REDIRECT, "https://idp.example.de/sso"),
                md.Endpoint(m.BINDING_HTTP_POST, "https://idp.example.de/sso/post"),
            ),
            keys=(md.KeyDescriptor(idp_key.certificate, "signing"), md.KeyDescriptor(sp_key.certificate)),
            slo_services=(
                md.Endpoint(
                    m.BINDING_HTTP_REDIRECT, "https://idp.example.de/slo", None, None, "https://idp.example.de/slo/r"
                ),
            ),
            name_id_formats=(m.NAMEID_TRANSIENT,),
            want_authn_requests_signed=True,
            valid_until=NOW + timedelta(days=10),
        ),
    )
    sp = md.EntityDescriptor(
        entity_id=SP,
        id="_md2",
        sp=md.SPSSODescriptor(
            acs_services=(md.Endpoint(m.BINDING_HTTP_POST, ACS, 0, True),),
            keys=(md.KeyDescriptor(sp_key.certificate, "encryption"),),
            authn_requests_signed=True,
            want_assertions_signed=True,
        ),
    )
    return [
        to_bytes(md.build_metadata(idp)),
        to_bytes(md.build_metadata(idp, sign_key=idp_key)),
        to_bytes(md.build_metadata(sp)),
    ]


def test_metadata_parser(idp_key: KeyPair, sp_key: KeyPair) -> None:
    def parse(data: bytes) -> object:
        return md.parse_metadata(data, trusted=[idp_key.certificate], now=NOW)

    tally = fuzz(
        "saml.metadata.parse_metadata",
        parse,
        xml_mutants(_metadata(idp_key, sp_key), 1200, seed=5),
        (errors.MetadataError, errors.XmlSecurityError),
    )
    tally.check(min_inputs=1200)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _queries(idp_key: KeyPair) -> list[str]:
    element = m.build_authn_request(m.AuthnRequest(issuer=SP, id="_q1", issue_instant=NOW, acs_url=ACS))
    urls = [
        redirect_url("https://idp.example.de/sso", element, relay_state="rs-1"),
        redirect_url("https://idp.example.de/sso", element, relay_state="r s/ä", key=idp_key),
        redirect_url("https://idp.example.de/sso", element, param="SAMLResponse", key=idp_key),
    ]
    return [u.split("?", 1)[1] for u in urls]


def _query_mutants(queries: list[str], messages: list[bytes], count: int, seed: int) -> list[str]:
    """Raw character mutants of real queries, and real queries carrying a mutated (inflatable) message."""
    out = list(queries)
    raw = binary_mutants([q.encode("latin-1") for q in queries], count // 2, seed)
    out += [q.decode("latin-1") for q in list(raw)[len(queries) :]]
    for i, xml in enumerate(xml_mutants(messages, count - len(out), seed)):
        payload = _deflate(xml) if i % 7 else xml  # now and then not DEFLATE at all
        value = quote(base64.b64encode(payload).decode("ascii"), safe="")
        rest = queries[i % len(queries)].split("&", 1)[1] if i % 3 else "RelayState=x"
        out.append(f"SAMLRequest={value}&{rest}")
    return out[:count]


def test_redirect_binding(idp_key: KeyPair) -> None:
    inputs = _query_mutants(_queries(idp_key), _authn_requests(), 1200, seed=6)
    # SignatureError: a query with Signature but no SigAlg (or the reverse) is refused even undecoded.
    declared = (errors.BindingError, errors.SignatureError, errors.XmlSecurityError)

    def verified(query: str) -> object:
        return parse_redirect(query, trusted=[idp_key.certificate], require_signature=True)

    for name, parse in (
        ("saml.bindings.decode_redirect", decode_redirect),
        ("saml.bindings.parse_redirect (signed)", verified),
    ):
        tally = fuzz(name, parse, inputs, declared)
        tally.check(min_inputs=1200)


def test_post_binding(factory: Factory) -> None:
    samples = [factory.response(), *_authn_requests()]
    encoded = [base64.b64encode(x).decode("ascii") for x in xml_mutants(samples, 1000, seed=7)]
    raw = [x.decode("latin-1") for x in binary_mutants([e.encode("ascii") for e in encoded[:3]], 1000, seed=8)]
    tally = fuzz("saml.bindings.parse_post", parse_post, encoded + raw, (errors.BindingError, errors.XmlSecurityError))
    tally.check(min_inputs=2000)


def test_duration_parser() -> None:
    """cacheDuration comes from outside metadata; the parser's only error type is MetadataError."""
    samples = [b"PT6H", b"P1Y2M3DT4H5M6.5S", b"-P30D", b"P0D"]
    inputs = [x.decode("latin-1") for x in binary_mutants(samples, 1000, seed=9)]
    tally = fuzz("saml.metadata.parse_duration", md.parse_duration, inputs, (errors.MetadataError,))
    tally.check(min_inputs=1000)
