"""Exception types of the TR-03130 / TR-03124 protocol core.

They extend the ``saml`` toolkit's types so that one ``except SamlError`` still catches every refusal of
untrusted XML, while each failure keeps a type of its own (tests are named after them). Messages name
elements and reasons only, never values read from a card.
"""

from __future__ import annotations

from saml.errors import MessageError, SignatureError, ValidationError


class EidMessageError(MessageError):
    """A TR-03130 SOAP message does not have the structure the eID schema requires."""

    code = "eid_message_malformed"


class NotSoapError(EidMessageError):
    """The document is not a SOAP 1.1 envelope (wrong root, no Body, several payloads)."""

    code = "not_soap"


class UnexpectedElementError(EidMessageError):
    """An element is not allowed where it stands (unknown, repeated or out of schema order)."""

    code = "unexpected_element"


class MissingElementError(EidMessageError):
    """A mandatory element is absent."""

    code = "missing_element"


class InvalidValueError(EidMessageError):
    """An element's text does not match its schema type (pattern, enumeration, date, hex, integer)."""

    code = "invalid_value"


class SoapFaultError(EidMessageError):
    """The peer answered with a SOAP Fault instead of the expected response."""

    code = "soap_fault"

    def __init__(self, faultcode: str, faultstring: str):
        super().__init__(f"SOAP fault {faultcode}")
        self.faultcode = faultcode
        self.faultstring = faultstring


class WsSecurityError(SignatureError):
    """The WS-Security header is missing, malformed, not laid out as the policy demands, or forged."""

    code = "wssec_invalid"


class TimestampError(ValidationError):
    """The signed ``wsu:Timestamp`` is expired, not yet valid, or implausibly long-lived."""

    code = "wssec_timestamp"


class TcTokenError(EidMessageError):
    """A TC Token is malformed or violates TR-03124 (schema, binding, PSK, https)."""

    code = "tctoken_invalid"
