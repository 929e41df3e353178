"""Who is at the refresh address: a person's browser or AusweisApp (eid_gateway.web.navigation)?

Header sets as the clients send them on the refresh address: browsers on a top-level navigation
(the one AusweisApp triggers), AusweisApp 1.x/2.x on its own GET/HEAD, scripts' fetches."""

from __future__ import annotations

import pytest

from eid_gateway.web.navigation import is_ausweisapp, is_browser_navigation

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

BROWSERS = {
    "chromium": {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0",
        "Accept": HTML,
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
        "Sec-Fetch-Site": "cross-site",
    },
    "firefox": {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Accept": HTML,
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    },
    "safari 17": {
        "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    },
    "old browser, no fetch metadata": {"User-Agent": "Mozilla/5.0 (Windows NT 6.1) Safari/534", "Accept": HTML},
}

NOT_BROWSERS = {
    "AusweisApp 1.26 GET": {"User-Agent": "AusweisApp2/1.26.2 (TR-03124-1/1.3) Debian/12", "Accept": "*/*"},
    "AusweisApp 2.x GET": {"User-Agent": "AusweisApp/2.2.0 (TR-03124-1/1.4) Windows", "Accept-Language": "de"},
    "AusweisApp claiming HTML": {"User-Agent": "AusweisApp2/1.26.2", "Accept": HTML},
    "script fetch()": {
        "User-Agent": "Mozilla/5.0 Chrome/130.0",
        "Accept": "*/*",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Dest": "empty",
    },
    "image or iframe embed": {
        "User-Agent": "Mozilla/5.0 Chrome/130.0",
        "Accept": HTML,
        "Sec-Fetch-Mode": "no-cors",
        "Sec-Fetch-Dest": "image",
    },
    "curl": {"User-Agent": "curl/7.88.1", "Accept": "*/*"},
    "no headers": {},
}


@pytest.mark.parametrize("name", sorted(BROWSERS))
def test_browsers_navigating_are_recognised(name: str) -> None:
    assert is_browser_navigation(BROWSERS[name])
    assert not is_ausweisapp(BROWSERS[name])


@pytest.mark.parametrize("name", sorted(NOT_BROWSERS))
def test_ausweisapp_and_programs_are_not_browser_navigations(name: str) -> None:
    assert not is_browser_navigation(NOT_BROWSERS[name])


def test_header_names_and_values_are_case_insensitive() -> None:
    from multidict import CIMultiDict

    assert is_browser_navigation(CIMultiDict({"sec-fetch-mode": "Navigate"}))
    assert not is_browser_navigation(CIMultiDict({"user-agent": "ausweisapp2/1.26.2", "sec-fetch-mode": "navigate"}))
