"""The TC Token of BSI TR-03124 (what AusweisApp fetches from the tcTokenURL) and the refresh URL.

The token tells the eID-Client where the eID-Server's PAOS endpoint is (ServerAddress), which session
to join (SessionIdentifier, the PSK's ID), the PSK for TLS-2, and where to send the browser afterwards
(RefreshAddress). It is validated against our own schema (``tctoken.xsd``) both when we build one and
when the simulated client reads one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from lxml import etree

from eid_gateway.eid.errors import TcTokenError
from eid_gateway.eid.results import REFRESH_ERROR, REFRESH_MINORS, REFRESH_OK
from saml.errors import XmlSecurityError
from saml.xml import parse_xml

CONTENT_TYPE: Final = "text/xml; charset=utf-8"
BINDING_PAOS: Final = "urn:liberty:paos:2006-08"
PATH_SECURITY_PSK: Final = "urn:ietf:rfc:4279"
MAX_TC_TOKEN_BYTES: Final = 16 * 1024


@dataclass(frozen=True)
class TcToken:
    """A TC Token for a session. ``psk`` (hex) absent = the attached model (TLS session reuse)."""

    server_address: str
    session_identifier: str
    refresh_address: str
    communication_error_address: str | None = None
    psk: str | None = None


@dataclass(frozen=True)
class ErrorTcToken:
    """The token for an error before any session exists: only CommunicationErrorAddress."""

    communication_error_address: str


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    data = resources.files("eid_gateway.eid").joinpath("tctoken.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(data))  # our own packaged file, not untrusted input


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def build_tc_token(token: TcToken) -> bytes:
    """The TC Token document (UTF-8, to be served as :data:`CONTENT_TYPE`)."""
    root = etree.Element("TCTokenType")
    etree.SubElement(root, "ServerAddress").text = token.server_address
    etree.SubElement(root, "SessionIdentifier").text = token.session_identifier
    etree.SubElement(root, "RefreshAddress").text = token.refresh_address
    if token.communication_error_address is not None:
        etree.SubElement(root, "CommunicationErrorAddress").text = token.communication_error_address
    etree.SubElement(root, "Binding").text = BINDING_PAOS
    if token.psk is not None:
        etree.SubElement(root, "PathSecurity-Protocol").text = PATH_SECURITY_PSK
        params = etree.SubElement(root, "PathSecurity-Parameters")
        etree.SubElement(params, "PSK").text = token.psk
    data = _serialise(root)
    validate_tc_token(data)
    return data


def build_error_tc_token(communication_error_address: str) -> bytes:
    """The token for a failure before a session exists (AusweisApp then opens this address)."""
    root = etree.Element("TCTokenType")
    etree.SubElement(root, "CommunicationErrorAddress").text = communication_error_address
    data = _serialise(root)
    validate_tc_token(data)
    return data


def _check_https(url: str, what: str) -> None:
    if urlsplit(url).scheme != "https":
        raise TcTokenError(f"{what} must be an https URL")


def validate_tc_token(xml: bytes, *, require_https: bool = False) -> etree._Element:
    """Parse (hardened) and check against ``tctoken.xsd``; returns the root. Raises :class:`TcTokenError`.

    ``require_https`` adds TR-03124's https rule for every address (off for loopback tests).
    """
    try:
        root = parse_xml(xml, max_bytes=MAX_TC_TOKEN_BYTES, max_depth=4, max_elements=16)
    except XmlSecurityError as exc:
        raise TcTokenError(f"TC Token is not acceptable XML: {exc}") from None
    schema = _schema()
    try:
        schema.assertValid(root)
    except etree.DocumentInvalid as exc:
        raise TcTokenError(f"TC Token violates its schema: {exc}") from None
    if require_https:
        for child in root:
            if child.tag in ("ServerAddress", "RefreshAddress", "CommunicationErrorAddress"):
                _check_https((child.text or "").strip(), child.tag)
    return root


def parse_tc_token(xml: bytes, *, require_https: bool = False) -> TcToken | ErrorTcToken:
    """A validated TC Token as a dataclass (the error form when only CommunicationErrorAddress is set)."""
    root = validate_tc_token(xml, require_https=require_https)
    values = {child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)}
    if "ServerAddress" not in values:
        return ErrorTcToken(values["CommunicationErrorAddress"])
    psk_el = root.find("PathSecurity-Parameters/PSK")
    return TcToken(
        server_address=values["ServerAddress"],
        session_identifier=(root.findtext("SessionIdentifier") or ""),
        refresh_address=values["RefreshAddress"],
        communication_error_address=values.get("CommunicationErrorAddress"),
        psk=(psk_el.text or "").strip() if psk_el is not None else None,
    )


def refresh_url(refresh_address: str, result_major: str, result_minor: str | None = None) -> str:
    """``refresh_address`` with ``ResultMajor`` (and for errors ``ResultMinor``) appended to its query.

    Accepts the short values AusweisApp appends (``ok`` / ``error``; minor one of
    :data:`~eid_gateway.eid.results.REFRESH_MINORS`) or ResultMajor URIs, whose fragment is used.
    """
    major = result_major.rsplit("#", 1)[-1]
    params: list[tuple[str, str]] = [("ResultMajor", major)]
    if major == REFRESH_OK:
        if result_minor is not None:
            raise ValueError("ResultMinor only accompanies ResultMajor=error")
    elif major == REFRESH_ERROR:
        if result_minor not in REFRESH_MINORS:
            raise ValueError("ResultMajor=error needs one of the TR-03124 refresh ResultMinor values")
        params.append(("ResultMinor", result_minor))
    else:
        raise ValueError("ResultMajor must be ok or error")
    parts = urlsplit(refresh_address)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def communication_error_url(communication_error_address: str) -> str:
    """Where a client sends the browser when there is no usable RefreshAddress."""
    return refresh_url(communication_error_address, REFRESH_ERROR, "communicationError")
