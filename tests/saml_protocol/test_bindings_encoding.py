"""The Redirect encoder's shortcuts (small DEFLATE window, base64 quoting by replacement) must produce
what any reader decodes: the standard library's quote and a default raw-DEFLATE inflater."""

from __future__ import annotations

import base64
import os
import zlib
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from lxml import etree

from saml import bindings as b
from saml.keys import KeyPair
from saml.xml import to_bytes


@pytest.mark.parametrize("size", [0, 1, 2, 3, 47, 48, 49, 512, 4096])
def test_base64_quoting_equals_quote(size: int) -> None:
    text = base64.b64encode(os.urandom(size)).decode("ascii")
    assert b._q_b64(text) == quote(text, safe="")


def test_message_beyond_the_deflate_window_round_trips(sp_key: KeyPair) -> None:
    """A message far larger than the 4 KiB window, with repeats farther apart than the window."""
    root = etree.Element("{urn:oasis:names:tc:SAML:2.0:protocol}LogoutRequest", ID="_big")
    chunk = os.urandom(3000).hex()  # 6000 characters: a repeat of it lies beyond the window
    for i in range(6):
        etree.SubElement(root, "{urn:example}Part", n=str(i)).text = chunk
    url = b.redirect_url("https://idp.example.de/slo", root, key=sp_key)
    query = urlsplit(url).query
    raw = base64.b64decode(parse_qs(query)["SAMLRequest"][0])
    assert zlib.decompressobj(-15).decompress(raw) == to_bytes(root)  # the inflater any peer uses
    msg = b.parse_redirect(query, trusted=[sp_key.certificate], require_signature=True)
    assert msg.signed and to_bytes(msg.element) == to_bytes(root)
