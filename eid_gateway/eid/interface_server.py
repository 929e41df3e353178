"""The server side of the TR-03130 eID-Interface, sans-I/O: signed SOAP in, signed SOAP out.

One implementation for every eID-Server this project runs (the simulator and the embedded PAOS server),
so that envelope checks, WS-Security, the SOAPAction rule and the mapping of refused requests to
``common#internalError`` / ``schemaViolation`` cannot drift apart between them. What a server does with
a verified request is its own business, behind :class:`EidInterfaceBackend`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography import x509
from lxml import etree

from eid_gateway.eid import results
from eid_gateway.eid.errors import EidMessageError, TimestampError, WsSecurityError
from eid_gateway.eid.messages import (
    OPERATION_NAMES,
    SOAP_ACTIONS,
    GetResultRequest,
    GetResultResponse,
    GetServerInfoResponse,
    Result,
    Selection,
    UseIDRequest,
    UseIDResponse,
    body_payload,
    build_fault,
    build_get_result_response,
    build_get_server_info_response,
    build_use_id_response,
    parse_request,
    soap_envelope,
    split_envelope,
)
from eid_gateway.eid.wssec import sign_envelope, verify_envelope
from saml.errors import XmlSecurityError
from saml.keys import KeyPair
from saml.xml import parse_xml, to_bytes


@dataclass(frozen=True)
class SoapAnswer:
    """An HTTP answer: status (200, or 400 for a SOAP Fault) and body; the content type is the adapter's."""

    status: int
    body: bytes


class EidInterfaceBackend(Protocol):
    """What a server does with an already verified and parsed request (it does its own locking)."""

    def use_id(self, request: UseIDRequest, now: datetime) -> UseIDResponse: ...

    def get_result(self, request: GetResultRequest, now: datetime) -> GetResultResponse: ...

    def server_info(self) -> GetServerInfoResponse: ...


@dataclass(frozen=True)
class InterfaceKeys:
    """``key`` signs every answer; requests must be signed by ``gateway_cert`` and nothing else."""

    key: KeyPair
    gateway_cert: x509.Certificate
    signature_algorithm: str | None = None


def error_result(minor: str) -> Result:
    """A ``resultmajor#error`` Result with the given minor code."""
    return Result(results.MAJOR_ERROR, minor)


def use_id_refusal(req: UseIDRequest) -> str | None:
    """The minor code a useID request is refused with on its own (before any session), or None.

    Nothing asked, or AgeVerification / PlaceVerification asked without their argument (or the
    argument sent without the operation), is ``missingArgument``.
    """
    asked = {name for name in OPERATION_NAMES if req.selection(name) is not Selection.PROHIBITED}
    if not asked:
        return results.MISSING_ARGUMENT
    if ("AgeVerification" in asked) != (req.age is not None) or (
        ("PlaceVerification" in asked) != (req.community_id is not None)
    ):
        return results.MISSING_ARGUMENT
    return None


def handle_soap(
    backend: EidInterfaceBackend,
    keys: InterfaceKeys,
    data: bytes,
    soap_action: str | None,
    now: datetime,
    log: logging.Logger,
    log_label: str,
) -> SoapAnswer:
    """One request to the eID-Interface endpoint: parse, check SOAPAction, verify, dispatch, sign.

    The unverified payload only picks the response type, so a refused signature still gets the answer
    shape the caller expects; getServerInfo has no Result, so its refusal is a SOAP Fault.
    """
    try:
        root = parse_xml(data)
        env = split_envelope(root)
        claimed = body_payload(env.body)  # unverified: used only to pick the response type
    except (XmlSecurityError, EidMessageError):
        return _fault("malformed SOAP request")
    operation = etree.QName(claimed).localname
    if operation not in SOAP_ACTIONS:
        return _fault("unknown operation")
    if soap_action is not None and soap_action.strip().strip('"') not in ("", SOAP_ACTIONS[operation]):
        return _fault("SOAPAction does not match the payload")
    try:
        body = verify_envelope(root, keys.gateway_cert, now=now)
    except (WsSecurityError, TimestampError) as exc:
        log.warning("%s refused a request signature: %s", log_label, type(exc).__name__)
        return _error_answer(keys, operation, results.INTERNAL_ERROR, now)
    try:
        request = parse_request(body_payload(body))
    except EidMessageError as exc:
        log.info("%s: schema violation in %s: %s", log_label, operation, exc.code)
        return _error_answer(keys, operation, results.SCHEMA_VIOLATION, now)
    if isinstance(request, UseIDRequest):
        payload = build_use_id_response(backend.use_id(request, now))
    elif isinstance(request, GetResultRequest):
        payload = build_get_result_response(backend.get_result(request, now))
    else:
        payload = build_get_server_info_response(backend.server_info())
    return SoapAnswer(200, _sign(keys, payload, now))


def _sign(keys: InterfaceKeys, payload: etree._Element, now: datetime) -> bytes:
    return sign_envelope(soap_envelope(payload), keys.key, now=now, algorithm=keys.signature_algorithm)


def _fault(reason: str) -> SoapAnswer:
    """A Client fault with HTTP 400: every fault here answers a request the sender got wrong.

    SOAP 1.1 (§6.2) sends every fault with 500, but a 5xx says the server failed and is what monitoring
    counts as an outage; WS-I Basic Profile 1.1 R1125 asks for a 4xx when the request is at fault, as
    the SOAP 1.2 HTTP binding does for env:Sender. Clients read the envelope, not the status (R1107):
    the gateway's own client reports a Fault as such whatever the status.
    """
    return SoapAnswer(400, to_bytes(build_fault("soapenv:Client", reason)))


def _error_answer(keys: InterfaceKeys, operation: str, minor: str, now: datetime) -> SoapAnswer:
    if operation == "useIDRequest":
        return SoapAnswer(200, _sign(keys, build_use_id_response(UseIDResponse(error_result(minor))), now))
    if operation == "getResultRequest":
        return SoapAnswer(200, _sign(keys, build_get_result_response(GetResultResponse(error_result(minor))), now))
    return _fault("request refused")  # getServerInfoResponse has no Result; the signature is the sender's
