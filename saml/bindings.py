"""The HTTP-Redirect and HTTP-POST bindings (SAML bindings 3.4 and 3.5), sans-I/O.

Redirect: the message is raw-DEFLATEd, base64'd and URL-encoded; a signature covers the octets
``SAMLRequest=…&RelayState=…&SigAlg=…`` *as they appear in the URL*. The verifier therefore signs over the
raw, still URL-encoded parts it received, never over a re-encoding (two encoders disagree on case and on
which characters to escape; re-encoding is how signatures got bypassed or broken).

POST: the message is base64'd into a form that the browser submits. The page has no inline script, so it
works under ``script-src 'self'``: the user presses a visible button, or an external script (optional)
submits the form.
"""

from __future__ import annotations

import base64
import binascii
import html
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import quote, unquote_plus, urlsplit

from cryptography import x509
from lxml import etree

from saml import algorithms
from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.dsig import sign_bytes, verify_bytes
from saml.errors import BindingError, SignatureError
from saml.keys import KeyPair
from saml.xml import MAX_DOCUMENT_BYTES, parse_xml, to_bytes

MAX_INFLATED_BYTES: Final = 100 * 1024
MAX_RELAY_STATE_BYTES: Final = 80
MAX_POST_VALUE_CHARS: Final = (MAX_DOCUMENT_BYTES * 4) // 3 + 4096
MAX_QUERY_CHARS: Final = 64 * 1024
_MESSAGE_PARAMS: Final = ("SAMLRequest", "SAMLResponse")


class RelayStateTooLong(BindingError):
    """RelayState is longer than the 80 bytes SAML bindings 3.4.3 allows."""

    code = "relay_state_too_long"


class InflateLimitExceeded(BindingError):
    """A Redirect message inflates to more than the cap (a DEFLATE bomb or an absurd message)."""

    code = "inflate_limit"


class MissingBindingSignature(SignatureError):
    """A signature was required on the Redirect binding but the query carries none."""

    code = "binding_signature_missing"


class BindingSignatureInvalid(SignatureError):
    """The Redirect query signature does not verify over the received octets."""

    code = "binding_signature_invalid"


@dataclass(frozen=True)
class RedirectMessage:
    """A message received on the Redirect binding. ``signed`` is True only if its signature verified."""

    element: etree._Element
    param: str
    relay_state: str | None
    signed: bool
    sig_alg: str | None
    #: The octets a query signature covers, rebuilt from the raw received parts, and that signature
    #: (both None when the query carries no Signature); kept so that :func:`verify_redirect` can check
    #: a message decoded before its sender's certificates were known.
    signed_octets: str | None = field(default=None, repr=False)
    signature: str | None = field(default=None, repr=False)  # as received (URL- and base64-encoded)


def check_relay_state(relay_state: str | None) -> None:
    """Enforce the 80-byte limit. RelayState is opaque: it is echoed, never parsed or followed."""
    if relay_state is not None and len(relay_state.encode("utf-8")) > MAX_RELAY_STATE_BYTES:
        raise RelayStateTooLong(f"RelayState exceeds {MAX_RELAY_STATE_BYTES} bytes")


def default_signature_algorithm(key: KeyPair) -> str:
    """ECDSA-SHA256 for EC keys, RSA-SHA256 (PKCS#1 v1.5, the one every SAML stack verifies) for RSA."""
    return algorithms.ECDSA_SHA256 if key.is_ec else algorithms.RSA_SHA256


def _check_param(param: str) -> None:
    if param not in _MESSAGE_PARAMS:
        raise ValueError("param must be SAMLRequest or SAMLResponse")


# ------------------------------------------------------------------------------------------ Redirect ---


def _deflate(data: bytes) -> bytes:
    # Raw DEFLATE (RFC 1951) with a 4 KiB window and a small hash table: any inflater reads it, and
    # setting up zlib's default 32 KiB state cost more than compressing a whole AuthnRequest.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -12, 4)
    return compressor.compress(data) + compressor.flush()


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise BindingError("Redirect message is not raw DEFLATE data") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InflateLimitExceeded(f"Redirect message inflates to more than {limit} bytes")
    if not inflater.eof:
        raise BindingError("Redirect message is a truncated DEFLATE stream")
    if inflater.unused_data:
        raise BindingError("Redirect message has data after the DEFLATE stream")
    return out


def _q(value: str) -> str:
    return quote(value, safe="")


def _q_b64(value: str) -> str:
    """:func:`_q` for base64 text, whose only reserved characters are ``+``, ``/`` and ``=``."""
    return value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def redirect_url(
    destination: str,
    message: etree._Element,
    *,
    param: str = "SAMLRequest",
    relay_state: str | None = None,
    key: KeyPair | None = None,
    sig_alg: str | None = None,
) -> str:
    """The URL to redirect the browser to, with the message and (if ``key``) the query signature."""
    _check_param(param)
    check_relay_state(relay_state)
    encoded = base64.b64encode(_deflate(to_bytes(message))).decode("ascii")
    query = f"{param}={_q_b64(encoded)}"
    if relay_state is not None:
        query += f"&RelayState={_q(relay_state)}"
    if key is not None:
        alg = sig_alg or default_signature_algorithm(key)
        query += f"&SigAlg={_q(alg)}"
        signature = sign_bytes(key, query.encode("ascii"), alg)
        query += f"&Signature={_q_b64(base64.b64encode(signature).decode('ascii'))}"
    elif sig_alg is not None:
        raise ValueError("sig_alg given without a key")
    if urlsplit(destination).fragment:
        raise ValueError("destination must not contain a fragment")
    return destination + ("&" if "?" in destination else "?") + query


def _split_query(raw_query: str) -> dict[str, str]:
    """Raw (still URL-encoded) value of each parameter; duplicates are refused, unknown ones kept."""
    parts: dict[str, str] = {}
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        name = unquote_plus(name)
        if name in parts:
            raise BindingError(f"query parameter {name} appears more than once")
        parts[name] = value
    return parts


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BindingError(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class _RedirectParts:
    """A Redirect query split and checked for structure; the message itself not yet inflated."""

    param: str
    relay_state: str | None
    sig_alg: str | None
    signed_octets: str | None
    signature: str | None
    deflated: bytes


def _split_redirect(raw_query: str) -> _RedirectParts:
    if len(raw_query) > MAX_QUERY_CHARS:
        raise BindingError(f"query string longer than {MAX_QUERY_CHARS} characters")
    parts = _split_query(raw_query)
    present = [p for p in _MESSAGE_PARAMS if p in parts]
    if len(present) != 1:
        raise BindingError("query must carry exactly one of SAMLRequest / SAMLResponse")
    param = present[0]
    relay_state = unquote_plus(parts["RelayState"]) if "RelayState" in parts else None
    check_relay_state(relay_state)
    sig_alg = unquote_plus(parts["SigAlg"]) if "SigAlg" in parts else None
    signed_octets: str | None = None
    signature: str | None = None
    if "Signature" in parts:
        if sig_alg is None:
            raise BindingSignatureInvalid("Signature without SigAlg")
        # The signed octets, rebuilt in the order bindings 3.4.4.1 fixes, from the raw received parts.
        signed_octets = f"{param}={parts[param]}"
        if "RelayState" in parts:
            signed_octets += f"&RelayState={parts['RelayState']}"
        signed_octets += f"&SigAlg={parts['SigAlg']}"
        signature = parts["Signature"]
    elif sig_alg is not None:
        raise BindingSignatureInvalid("SigAlg without Signature")
    deflated = _b64decode(unquote_plus(parts[param]), param)
    return _RedirectParts(param, relay_state, sig_alg, signed_octets, signature, deflated)


def _verify_query_signature(
    signed_octets: str | None,
    signature: str | None,
    sig_alg: str | None,
    trusted: Sequence[x509.Certificate],
    require_signature: bool,
    policy: AlgorithmPolicy,
) -> bool:
    """True when the query signature verifies against ``trusted``; False when there is none and none is
    required; else a BindingError subclass."""
    if signed_octets is None or signature is None or sig_alg is None:
        if require_signature:
            raise MissingBindingSignature("the Redirect message is not signed")
        return False
    signature_bytes = _b64decode(unquote_plus(signature), "Signature")
    if sig_alg not in policy.signature:
        raise BindingSignatureInvalid("SigAlg is not an allowed signature algorithm")
    try:
        octets = signed_octets.encode("ascii", "strict")
    except UnicodeEncodeError:
        raise BindingSignatureInvalid("query contains non-ASCII octets") from None
    try:
        verify_bytes(trusted, octets, signature_bytes, sig_alg, policy=policy)
    except SignatureError as exc:
        raise BindingSignatureInvalid(f"query signature does not verify: {exc}") from None
    return True


def _message(parts: _RedirectParts, signed: bool) -> RedirectMessage:
    element = parse_xml(_inflate(parts.deflated, MAX_INFLATED_BYTES))
    return RedirectMessage(
        element=element,
        param=parts.param,
        relay_state=parts.relay_state,
        signed=signed,
        sig_alg=parts.sig_alg,
        signed_octets=parts.signed_octets,
        signature=parts.signature,
    )


def parse_redirect(
    raw_query: str,
    *,
    trusted: Sequence[x509.Certificate] | None,
    require_signature: bool,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> RedirectMessage:
    """Decode a Redirect-binding query string (everything after ``?``, exactly as received).

    With ``trusted`` given, a present signature is verified against those certificates only (the query
    cannot choose its key), before the message is inflated and parsed. With ``trusted=None`` the message
    is decoded but not verified (``signed`` False); see :func:`verify_redirect` for checking it later.
    """
    parts = _split_redirect(raw_query)
    signed = False
    if trusted is not None:
        signed = _verify_query_signature(
            parts.signed_octets, parts.signature, parts.sig_alg, trusted, require_signature, policy
        )
    elif require_signature:
        if parts.signature is None:
            raise MissingBindingSignature("the Redirect message is not signed")
        raise BindingError("a signature is required but no trusted certificates were given")
    return _message(parts, signed)


def decode_redirect(raw_query: str) -> RedirectMessage:
    """Decode without verifying (``signed`` False): an IdP reads the Issuer first, then calls
    :func:`verify_redirect` with that service's certificates. Same as ``parse_redirect(raw_query,
    trusted=None, require_signature=False)``."""
    return _message(_split_redirect(raw_query), signed=False)


def verify_redirect(
    message: RedirectMessage,
    *,
    trusted: Sequence[x509.Certificate],
    require_signature: bool,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> RedirectMessage:
    """Verify the query signature of a message decoded with ``trusted=None`` (an IdP that first read the
    Issuer to pick that service's certificates), without decoding it again; ``signed`` True on success."""
    signed = _verify_query_signature(
        message.signed_octets, message.signature, message.sig_alg, trusted, require_signature, policy
    )
    return replace(message, signed=signed)


# ---------------------------------------------------------------------------------------------- POST ---

FORM_ID: Final = "saml-post-form"
#: The external auto-submit script for ``post_form(script_src=...)``; an adapter serves it as a static,
#: same-origin file (``Content-Type: text/javascript``), so the page needs no inline script.
AUTOSUBMIT_SCRIPT: Final = (
    b'document.addEventListener("DOMContentLoaded",function(){'
    b'var f=document.getElementById("saml-post-form");if(f){f.submit();}});\n'
)

_PAGE: Final = """<!DOCTYPE html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Weiterleitung / Redirect</title>
{script}</head>
<body>
<form method="post" action="{action}" id="{form_id}">
{fields}<p>Ihr Browser wird weitergeleitet. Falls nicht, bitte auf „Weiter“ klicken.<br>
Your browser is being redirected. If nothing happens, press “Continue”.</p>
<button type="submit">Continue / Weiter</button>
</form>
</body>
</html>
"""


def post_fields(
    destination: str, message: etree._Element, *, param: str = "SAMLResponse", relay_state: str | None = None
) -> list[tuple[str, str]]:
    """The (name, value) pairs of the POST binding's form, checked: for an adapter that renders its own page
    around them (escaping the values); :func:`post_form` is the toolkit's plain page."""
    _check_param(param)
    check_relay_state(relay_state)
    scheme = urlsplit(destination).scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("POST destination must be an http(s) URL")
    fields = [(param, base64.b64encode(to_bytes(message)).decode("ascii"))]
    if relay_state is not None:
        fields.append(("RelayState", relay_state))
    return fields


def post_form(
    destination: str,
    message: etree._Element,
    *,
    param: str = "SAMLResponse",
    relay_state: str | None = None,
    script_src: str | None = None,
) -> bytes:
    """An HTML page with a form that POSTs the message to ``destination``.

    ``script_src`` optionally names an external (same-origin) script that submits ``#saml-post-form``;
    without it the user presses the button. Every value is HTML-escaped.
    """
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value, quote=True)}">\n'
        for name, value in post_fields(destination, message, param=param, relay_state=relay_state)
    )
    script = "" if script_src is None else f'<script src="{html.escape(script_src, quote=True)}" defer></script>\n'
    return _PAGE.format(
        action=html.escape(destination, quote=True), fields=fields, script=script, form_id=FORM_ID
    ).encode("utf-8")


def parse_post(form_value: str, relay_state: str | None = None) -> etree._Element:
    """Decode the SAMLRequest/SAMLResponse form value of the POST binding into a parsed element."""
    check_relay_state(relay_state)
    if len(form_value) > MAX_POST_VALUE_CHARS:
        raise BindingError(f"POST value longer than {MAX_POST_VALUE_CHARS} characters")
    return parse_xml(_b64decode(form_value, "POST value"))
