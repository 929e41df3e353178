"""Redirect-binding signatures are verified over the query octets as the service sent them.

.NET stacks (and others) percent-encode with lower-case hex (``%2b``, ``%2f``) and sign those octets;
saml-bindings 3.4.4.1 says the verifier uses the octets as received. The gateway must not verify over a
re-encoding (yarl upper-cases escapes and decodes ``%2F`` in ``raw_query_string``).
"""

from __future__ import annotations

import base64
import itertools
import re
from urllib.parse import quote

import pytest
from aiohttp.test_utils import make_mocked_request

from eid_gateway.web.query import raw_query_string
from saml import KeyPair
from saml.bindings import default_signature_algorithm
from saml.dsig import sign_bytes

from .conftest import Harness
from .helpers import authn_request, get_raw, redirect_query

RELAY_STATE = "a/b+c=d"  # escapes in RelayState too, not only in SAMLRequest and SigAlg


def _recase(query: str, case: str) -> str:
    """Every percent-escape in ``case`` ("upper", "lower" or "mixed": alternating)."""
    flips = itertools.count()

    def one(m: re.Match[str]) -> str:
        lower = case == "lower" or (case == "mixed" and next(flips) % 2 == 0)
        return m.group(0).lower() if lower else m.group(0).upper()

    return re.sub(r"%[0-9A-Fa-f]{2}", one, query)


def signed_query(key: KeyPair, case: str, relay_state: str = RELAY_STATE) -> str:
    """A signed Redirect query as a service with another URL encoder sends it: the octets are encoded in
    ``case`` first, then signed exactly as they stand."""
    unsigned = redirect_query(authn_request(), None, relay_state)
    algorithm = default_signature_algorithm(key)
    octets = _recase(f"{unsigned}&SigAlg={quote(algorithm, safe='')}", case)
    signature = base64.b64encode(sign_bytes(key, octets.encode("ascii"), algorithm)).decode("ascii")
    return f"{octets}&Signature={_recase(quote(signature, safe=''), case)}"


@pytest.mark.parametrize("case", ["lower", "upper", "mixed"])
async def test_redirect_signed_over_the_escapes_as_sent_is_accepted(harness: Harness, case: str) -> None:
    query = signed_query(harness.keys.sp, case)
    if case == "lower":
        assert "%2f" in query and "%3a" in query and not re.search(r"%[0-9A-F][A-F]|%[A-F][0-9A-F]", query)
    resp = await get_raw(harness.client, "/saml/sso", query)
    assert resp.status == 303, await resp.text()
    [begun] = harness.flows.begun
    assert begun.service.id == "portal"
    assert begun.state["relay_state"] == RELAY_STATE


async def test_lower_case_query_with_a_changed_relay_state_is_refused(harness: Harness) -> None:
    query = signed_query(harness.keys.sp, "lower", relay_state="a/b+c=d")
    tampered = query.replace("RelayState=a%2fb%2bc%3dd", "RelayState=a%2fb%2bc%3de")
    assert tampered != query
    resp = await get_raw(harness.client, "/saml/sso", tampered)
    assert resp.status == 400
    assert "nicht vertrauenswürdig" in await resp.text()
    assert harness.flows.begun == []


async def test_re_encoded_escapes_do_not_verify(harness: Harness) -> None:
    """The same query with its escapes upper-cased means the same to a URL parser, but it is not what
    was signed: verifying over a normalised form would accept it (and refuse the original)."""
    query = signed_query(harness.keys.sp, "lower")
    signed_part, _, signature = query.rpartition("&Signature=")
    re_encoded = f"{_recase(signed_part, 'upper')}&Signature={signature}"
    assert re_encoded != query
    resp = await get_raw(harness.client, "/saml/sso", re_encoded)
    assert resp.status == 400
    assert harness.flows.begun == []


async def test_lower_case_query_signed_by_another_key_is_refused(harness: Harness) -> None:
    resp = await get_raw(harness.client, "/saml/sso", signed_query(harness.keys.other, "lower"))
    assert resp.status == 400
    assert harness.flows.begun == []


async def test_the_handler_reads_the_request_line_not_the_parsed_url(harness: Harness) -> None:
    """The installed aiohttp keeps the octets in ``rel_url.raw_query_string`` for an origin-form target,
    but other aiohttp/yarl versions and any ``request.clone(rel_url=...)`` rebuild it normalised (as
    ``make_mocked_request`` does: ``%2b`` -> ``%2B``, ``%2f`` -> ``/``); the request line is what was signed."""
    query = signed_query(harness.keys.sp, "lower")
    request = make_mocked_request("GET", f"/saml/sso?{query}")
    assert request.rel_url.raw_query_string != query  # a normalised URL object ...
    assert request.raw_path == f"/saml/sso?{query}"  # ... beside the request line as sent
    resp = await harness.frontend.sso_redirect(request)
    assert resp.status == 303
    assert [b.service.id for b in harness.flows.begun] == ["portal"]


@pytest.mark.parametrize(
    ("target", "query"),
    [
        ("/saml/sso?SAMLRequest=a%2bb%2f&SigAlg=x%3a", "SAMLRequest=a%2bb%2f&SigAlg=x%3a"),
        ("http://gw.example:8080/saml/sso?a=%2f", "a=%2f"),  # absolute form (a proxy's request line)
        ("/saml/sso?a=%2f#fragment", "a=%2f"),  # cut off as aiohttp does
        ("/saml/sso", ""),
        ("/saml/sso?", ""),
    ],
)
def test_raw_query_string_is_the_request_line_after_the_question_mark(target: str, query: str) -> None:
    assert raw_query_string(make_mocked_request("GET", target)) == query
