"""The wallet's answer at ``response_uri`` (``direct_post.jwt``): decrypt, then read the one presentation.

The form body carries ``response=<JWE>`` (ECDH-ES to this transaction's key, A128GCM or A256GCM) whose
payload is ``{"vp_token": {"<query id>": ["<presentation>"]}, "state": ...}`` or an OAuth error; an
error may also come unencrypted as form fields ``error`` / ``error_description`` / ``state``.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from eid_gateway.wallet.errors import PresentationRejected, RejectReason, WalletCancelled
from eid_gateway.wallet.jose import JoseFormatError, b64url_decode, json_object
from eid_gateway.wallet.request import RESPONSE_ALG, RESPONSE_ENC_VALUES

#: A response larger than this is refused before decryption (a PID presentation is a few kB).
MAX_RESPONSE = 256 * 1024
#: RFC 6749 §5.2: error codes are printable ASCII without ``"`` and ``\``.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_MAX_DESCRIPTION = 300


def _malformed(message: str) -> PresentationRejected:
    return PresentationRejected(RejectReason.MALFORMED, message)


def decrypt_response(form_or_jwe: str, private_jwk_json: str) -> dict[str, Any]:
    """The JSON payload of the encrypted response (a compact JWE to this transaction's key).

    The header must name ECDH-ES, an offered ``enc`` and (when it names one) our key's ``kid``.
    """
    if not isinstance(form_or_jwe, str) or len(form_or_jwe) > MAX_RESPONSE or form_or_jwe.count(".") != 4:
        raise _malformed("the response is not a compact JWE")
    try:
        header = json_object(b64url_decode(form_or_jwe.split(".", 1)[0]))
    except JoseFormatError as exc:
        raise _malformed(f"JWE header: {exc}") from None
    private = json.loads(private_jwk_json)
    if header.get("alg") != RESPONSE_ALG or header.get("enc") not in RESPONSE_ENC_VALUES:
        raise _malformed("the response is not ECDH-ES with A128GCM/A256GCM")
    if "kid" in header and header["kid"] != private.get("kid"):
        raise _malformed("the response is encrypted to another key")
    if "zip" in header or "crit" in header:
        raise _malformed("compressed or critical JWE headers are not accepted")
    key = ECKey.import_key({k: v for k, v in private.items() if k not in ("use", "alg", "kid")})
    try:
        plaintext = jwe.decrypt_compact(form_or_jwe, key, algorithms=[RESPONSE_ALG, *RESPONSE_ENC_VALUES]).plaintext
    except (JoseError, ValueError) as exc:
        raise _malformed(f"the response does not decrypt ({type(exc).__name__})") from None
    try:
        return json_object(plaintext or b"")
    except JoseFormatError as exc:
        raise _malformed(f"the decrypted response: {exc}") from None


def _check_state(received: object, state: str) -> None:
    if not isinstance(received, str) or not hmac.compare_digest(received.encode(), state.encode()):
        raise PresentationRejected(RejectReason.STATE, "the response's state is not this transaction's")


def _cancelled(payload: Mapping[str, Any]) -> WalletCancelled:
    error = payload.get("error")
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "invalid_error"
    description = payload.get("error_description")
    text = description[:_MAX_DESCRIPTION] if isinstance(description, str) else None
    return WalletCancelled(code, text)


def parse_response(payload: Mapping[str, Any], *, state: str, query_id: str = "pid") -> str:
    """The one presentation for ``query_id`` (state checked); an ``error`` raises :class:`WalletCancelled`."""
    _check_state(payload.get("state"), state)
    if "error" in payload:
        raise _cancelled(payload)
    vp_token = payload.get("vp_token")
    if not isinstance(vp_token, dict) or set(vp_token) != {query_id}:
        raise _malformed("vp_token must answer exactly the one credential query")
    presentations = vp_token[query_id]
    if isinstance(presentations, str):  # drafts before 1.0 sent the string itself
        presentations = [presentations]
    if not isinstance(presentations, list) or len(presentations) != 1 or not isinstance(presentations[0], str):
        raise _malformed("vp_token must hold one presentation")
    presentation: str = presentations[0]
    return presentation


def read_form(form: Mapping[str, str], *, private_jwk_json: str, state: str, query_id: str = "pid") -> str:
    """The presentation from the POSTed form: ``response`` (encrypted) or an unencrypted ``error``."""
    if "response" in form:
        return parse_response(decrypt_response(form["response"], private_jwk_json), state=state, query_id=query_id)
    if "error" in form:
        _check_state(form.get("state"), state)
        raise _cancelled(form)
    raise _malformed("the form has neither response nor error")
