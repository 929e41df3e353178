"""The direct_post.jwt response: decryption and reading the one presentation (eid_gateway/wallet/response.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import ECKey

from eid_gateway.wallet.errors import PresentationRejected, RejectReason, WalletCancelled
from eid_gateway.wallet.request import new_response_key
from eid_gateway.wallet.response import decrypt_response, parse_response, read_form


def encrypt(payload: dict[str, Any] | bytes, public: dict[str, Any], **header: Any) -> str:
    protected = {"alg": "ECDH-ES", "enc": "A128GCM", "kid": public["kid"]} | header
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    algorithms = ["ECDH-ES", "ECDH-ES+A128KW", "A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256"]
    return jwe.encrypt_compact(protected, data, ECKey.import_key(public), algorithms=algorithms)


def test_a_response_encrypted_to_the_transaction_key_opens() -> None:
    private, public = new_response_key()
    payload = {"vp_token": {"pid": ["a~b~c"]}, "state": "s"}
    assert decrypt_response(encrypt(payload, public), private) == payload
    assert decrypt_response(encrypt(payload, public, enc="A256GCM"), private) == payload
    without_kid = {k: v for k, v in public.items()}
    assert decrypt_response(encrypt(payload, without_kid), private) == payload


@pytest.mark.parametrize(
    "change",
    [{"enc": "A192GCM"}, {"enc": "A128CBC-HS256"}, {"alg": "ECDH-ES+A128KW"}, {"kid": "another-key"}],
)
def test_other_algorithms_and_keys_are_refused(change: dict[str, str]) -> None:
    private, public = new_response_key()
    with pytest.raises(PresentationRejected) as caught:
        decrypt_response(encrypt({"state": "s"}, public, **change), private)
    assert caught.value.reason is RejectReason.MALFORMED


def test_a_response_for_another_transaction_does_not_open() -> None:
    private, _ = new_response_key()
    _, other_public = new_response_key()
    other_public = other_public | {"kid": json.loads(private)["kid"]}  # same kid, other key
    with pytest.raises(PresentationRejected) as caught:
        decrypt_response(encrypt({"state": "s"}, other_public), private)
    assert caught.value.reason is RejectReason.MALFORMED


@pytest.mark.parametrize("junk", ["", "a.b.c.d.e", "x" * 300_000, "....", "e30.a.b.c.d"])
def test_junk_is_malformed(junk: str) -> None:
    private, _ = new_response_key()
    with pytest.raises(PresentationRejected) as caught:
        decrypt_response(junk, private)
    assert caught.value.reason is RejectReason.MALFORMED


def test_a_payload_that_is_not_a_json_object_is_malformed() -> None:
    private, public = new_response_key()
    for plaintext in (b"[1]", b"not json", b'{"a": 1, "a": 2}'):
        with pytest.raises(PresentationRejected) as caught:
            decrypt_response(encrypt(plaintext, public), private)
        assert caught.value.reason is RejectReason.MALFORMED


def test_the_one_presentation_is_read() -> None:
    assert parse_response({"vp_token": {"pid": ["p~"]}, "state": "s"}, state="s") == "p~"
    assert parse_response({"vp_token": {"q": "p~"}, "state": "s"}, state="s", query_id="q") == "p~"


@pytest.mark.parametrize(
    "vp_token",
    [None, "p~", {"other": ["p~"]}, {"pid": ["p~"], "other": ["q~"]}, {"pid": []}, {"pid": ["a~", "b~"]}, {"pid": [1]}],
)
def test_anything_but_one_presentation_for_the_query_is_malformed(vp_token: object) -> None:
    with pytest.raises(PresentationRejected) as caught:
        parse_response({"vp_token": vp_token, "state": "s"}, state="s")
    assert caught.value.reason is RejectReason.MALFORMED


@pytest.mark.parametrize("state", [None, "", "other", 1])
def test_another_state_is_refused(state: object) -> None:
    with pytest.raises(PresentationRejected) as caught:
        parse_response({"vp_token": {"pid": ["p~"]}, "state": state}, state="s")
    assert caught.value.reason is RejectReason.STATE


def test_the_wallet_declining_is_a_cancel_encrypted_or_not() -> None:
    private, public = new_response_key()
    answer = {"error": "access_denied", "error_description": "user declined", "state": "s"}
    with pytest.raises(WalletCancelled) as caught:
        read_form({"response": encrypt(answer, public)}, private_jwk_json=private, state="s")
    assert (caught.value.error, caught.value.description) == ("access_denied", "user declined")
    with pytest.raises(WalletCancelled) as caught:
        read_form({"error": "access_denied", "state": "s"}, private_jwk_json=private, state="s")
    assert caught.value.error == "access_denied"
    # a cancel for another transaction does not end this one
    with pytest.raises(PresentationRejected) as rejected:
        read_form({"error": "access_denied", "state": "t"}, private_jwk_json=private, state="s")
    assert rejected.value.reason is RejectReason.STATE
    # an error code with characters OAuth does not allow is not passed on as such
    with pytest.raises(WalletCancelled) as caught:
        read_form({"error": 'bad"code\n', "state": "s"}, private_jwk_json=private, state="s")
    assert caught.value.error == "invalid_error"


def test_a_form_with_neither_response_nor_error_is_malformed() -> None:
    private, _ = new_response_key()
    with pytest.raises(PresentationRejected) as caught:
        read_form({"vp_token": "x", "state": "s"}, private_jwk_json=private, state="s")
    assert caught.value.reason is RejectReason.MALFORMED
