"""The hardened parser's size limits, exactly at and just past each bound (checked in libxml2's XPath)."""

from __future__ import annotations

import pytest

from saml.errors import XmlSecurityError
from saml.xml import MAX_DEPTH, parse_xml


def _nested(levels: int) -> bytes:
    return b"<e>" * levels + b"x" + b"</e>" * levels


def _flat(elements: int) -> bytes:
    return b"<r>" + b"<c/>" * (elements - 1) + b"</r>"


def test_depth_at_the_limit_is_accepted_one_more_is_refused() -> None:
    assert parse_xml(_nested(MAX_DEPTH)).tag == "e"
    with pytest.raises(XmlSecurityError, match="deeper than 48"):
        parse_xml(_nested(MAX_DEPTH + 1))


def test_custom_depth_bound() -> None:
    assert len(parse_xml(_nested(4), max_depth=4)) == 1
    with pytest.raises(XmlSecurityError, match="deeper than 3"):
        parse_xml(_nested(4), max_depth=3)


def test_depth_counts_the_deepest_branch_not_the_first() -> None:
    doc = b"<r><a/><b><c><d/></c></b></r>"  # depth 4, reached in the second child only
    assert parse_xml(doc, max_depth=4).tag == "r"
    with pytest.raises(XmlSecurityError, match="deeper than 3"):
        parse_xml(doc, max_depth=3)


def test_element_count_at_the_limit_is_accepted_one_more_is_refused() -> None:
    assert len(parse_xml(_flat(16), max_elements=16)) == 15
    with pytest.raises(XmlSecurityError, match="more than 16 elements"):
        parse_xml(_flat(17), max_elements=16)


def test_element_count_includes_nested_elements_and_ignores_text() -> None:
    doc = b"<r>text<a>t<b/>t</a>tail<c><d/></c></r>"  # 5 elements
    assert parse_xml(doc, max_elements=5).tag == "r"
    with pytest.raises(XmlSecurityError, match="more than 4 elements"):
        parse_xml(doc, max_elements=4)


def test_default_element_limit() -> None:
    with pytest.raises(XmlSecurityError, match="more than 20000 elements"):
        parse_xml(_flat(20_001))
    assert len(parse_xml(_flat(20_000))) == 19_999
