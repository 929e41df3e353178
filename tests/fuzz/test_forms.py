"""The strict form reader (eid_gateway.web.forms), sans I/O: what it refuses, with which status, and
that it reads what browsers and OAuth clients really send."""

from __future__ import annotations

import pytest

from eid_gateway.web.forms import FormError, parse_form

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"a=%zz", "invalid percent-escape in the form"),
        (b"a=%", "invalid percent-escape in the form"),
        (b"a=%4", "invalid percent-escape in the form"),
        (b"a=%ff", "the form is not UTF-8"),
        (b"a=%ed%a0%80", "the form is not UTF-8"),  # an encoded surrogate
        (b"a=\xe4", "the form is not UTF-8"),
        (b"a=1" + b"&a=1" * 100, "too many form fields"),
    ],
)
def test_parse_form_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(FormError) as err:
        parse_form(body, FORM, None)
    assert err.value.reason == reason
    assert err.value.status in (400, 413)


@pytest.mark.parametrize(
    "content_type,charset,body",
    [
        ("multipart/form-data", None, b"--x\r\n"),
        ("text/plain", None, b"a=b"),
        (FORM, "latin-1", b"a=b"),
        (FORM, "unknown-8bit", b"a=b"),
        (None, None, b"a=b"),
    ],
)
def test_parse_form_refuses_other_media_types(content_type: str | None, charset: str | None, body: bytes) -> None:
    with pytest.raises(FormError) as err:
        parse_form(body, content_type, charset)
    assert err.value.status == 415


def test_parse_form_reads_what_browsers_and_clients_send() -> None:
    form = parse_form(b"a=%C3%A4+b&a=&c=%2B%25&d", FORM, "UTF-8")
    assert list(form.items()) == [("a", "ä b"), ("a", ""), ("c", "+%"), ("d", "")]
    assert parse_form("x=ä".encode(), FORM, None)["x"] == "ä"  # raw UTF-8, as some clients send it
    assert list(parse_form(b"", None, None).items()) == []  # no body at all: an empty form
