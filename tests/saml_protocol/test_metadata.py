"""Metadata build / parse / sign."""

from __future__ import annotations

from datetime import timedelta

import pytest

from saml import messages as m
from saml import metadata as md
from saml.errors import MetadataError
from saml.keys import KeyPair
from saml.xml import to_bytes

from .conftest import ACS, IDP, NOW, SP


def _idp_entity(idp_key: KeyPair, other_key: KeyPair, sp_key: KeyPair) -> md.EntityDescriptor:
    return md.EntityDescriptor(
        entity_id=IDP,
        idp=md.IDPSSODescriptor(
            sso_services=(
                md.Endpoint(m.BINDING_HTTP_REDIRECT, "https://idp/sso"),
                md.Endpoint(m.BINDING_HTTP_POST, "https://idp/sso-post"),
            ),
            keys=(
                md.KeyDescriptor(idp_key.certificate, md.USE_SIGNING),
                md.KeyDescriptor(other_key.certificate, md.USE_SIGNING),  # rollover: next key
                md.KeyDescriptor(sp_key.certificate, md.USE_ENCRYPTION),
            ),
            slo_services=(md.Endpoint(m.BINDING_HTTP_REDIRECT, "https://idp/slo"),),
            name_id_formats=(m.NAMEID_TRANSIENT, m.NAMEID_PERSISTENT),
            want_authn_requests_signed=True,
        ),
        valid_until=NOW + timedelta(days=7),
        cache_duration=timedelta(hours=6),
    )


def test_idp_metadata_round_trip(idp_key: KeyPair, other_key: KeyPair, sp_key: KeyPair) -> None:
    entity = _idp_entity(idp_key, other_key, sp_key)
    parsed = md.parse_metadata(to_bytes(md.build_metadata(entity)), now=NOW)
    assert parsed.entity_id == IDP and parsed.valid_until == entity.valid_until
    assert parsed.cache_duration == timedelta(hours=6) and not parsed.signed
    assert parsed.idp is not None
    assert parsed.idp.signing_certificates() == [idp_key.certificate, other_key.certificate]
    assert parsed.idp.encryption_certificates() == [sp_key.certificate]
    assert parsed.idp.sso_location(m.BINDING_HTTP_POST) == "https://idp/sso-post"
    assert parsed.idp.name_id_formats == (m.NAMEID_TRANSIENT, m.NAMEID_PERSISTENT)
    assert parsed.idp.want_authn_requests_signed and parsed.sp is None


def test_sp_metadata_round_trip(sp_key: KeyPair) -> None:
    entity = md.EntityDescriptor(
        SP,
        sp=md.SPSSODescriptor(
            acs_services=(md.Endpoint(m.BINDING_HTTP_POST, ACS, is_default=True),),
            keys=(md.KeyDescriptor(sp_key.certificate),),
            authn_requests_signed=True,
            want_assertions_signed=True,
        ),
    )
    parsed = md.parse_metadata(to_bytes(md.build_metadata(entity)), now=NOW)
    assert parsed.sp is not None and parsed.sp.acs_locations() == [ACS]
    assert parsed.sp.acs_services[0].index == 0 and parsed.sp.acs_services[0].is_default
    assert parsed.sp.signing_certificates() == parsed.sp.encryption_certificates() == [sp_key.certificate]


def test_signed_metadata(idp_key: KeyPair, other_key: KeyPair, sp_key: KeyPair) -> None:
    xml = to_bytes(md.build_metadata(_idp_entity(idp_key, other_key, sp_key), sign_key=sp_key))
    assert md.parse_metadata(xml, trusted=[sp_key.certificate], require_signature=True, now=NOW).signed
    with pytest.raises(md.MetadataSignatureInvalid):
        md.parse_metadata(xml, trusted=[other_key.certificate], now=NOW)
    with pytest.raises(md.MetadataSignatureMissing, match="no trusted certificate"):
        md.parse_metadata(xml, require_signature=True, now=NOW)
    tampered = xml.replace(b"https://idp/sso-post", b"https://evil/sso-post")
    with pytest.raises(md.MetadataSignatureInvalid):
        md.parse_metadata(tampered, trusted=[sp_key.certificate], now=NOW)


def test_unsigned_metadata_refused_when_signature_required(
    idp_key: KeyPair, other_key: KeyPair, sp_key: KeyPair
) -> None:
    xml = to_bytes(md.build_metadata(_idp_entity(idp_key, other_key, sp_key)))
    with pytest.raises(md.MetadataSignatureMissing, match="not signed"):
        md.parse_metadata(xml, trusted=[sp_key.certificate], require_signature=True, now=NOW)


def test_expired_metadata(idp_key: KeyPair, other_key: KeyPair, sp_key: KeyPair) -> None:
    xml = to_bytes(md.build_metadata(_idp_entity(idp_key, other_key, sp_key)))
    with pytest.raises(md.MetadataExpired):
        md.parse_metadata(xml, now=NOW + timedelta(days=8))


def test_malformed_metadata() -> None:
    with pytest.raises(MetadataError, match="EntityDescriptor"):
        md.parse_metadata(b"<EntitiesDescriptor xmlns='urn:oasis:names:tc:SAML:2.0:metadata'/>")
    with pytest.raises(MetadataError, match="neither"):
        md.parse_metadata(b"<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata' entityID='x'/>")
    bad_cert = (
        b"<md:EntityDescriptor xmlns:md='urn:oasis:names:tc:SAML:2.0:metadata' "
        b"xmlns:ds='http://www.w3.org/2000/09/xmldsig#' entityID='x'>"
        b"<md:IDPSSODescriptor protocolSupportEnumeration='urn:oasis:names:tc:SAML:2.0:protocol'>"
        b"<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate>"
        b"</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        b"<md:SingleSignOnService Binding='b' Location='l'/></md:IDPSSODescriptor></md:EntityDescriptor>"
    )
    with pytest.raises(MetadataError, match="unreadable"):
        md.parse_metadata(bad_cert)


def test_duration_parsing() -> None:
    assert md.parse_duration("P1DT2H3M4.5S") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
    assert md.parse_duration("PT0S") == timedelta(0)
    for bad in ("P", "PT", "1D", "P1H"):
        with pytest.raises(MetadataError):
            md.parse_duration(bad)
