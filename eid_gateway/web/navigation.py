"""Is this request a person's browser opening a page, or a program fetching a URL?

The refresh address (TR-03124) is requested by two kinds of clients: the citizen's browser, which
AusweisApp sends there after the card step, and AusweisApp itself, which may GET it to follow redirects
and sends a HEAD to check its TLS certificate. AusweisApp's requests must change nothing. A browser
that is not the flow's owner arriving there after the card step is the mark of a relayed sign-in (the
victim's browser, redirected by the victim's AusweisApp, while the attacker holds the flow): that ends
the flow. Telling the two apart by what real clients send:

* AusweisApp (Qt's network stack) names itself in ``User-Agent`` (``AusweisApp2/1.26.2 …``,
  ``AusweisApp/2.x``) and sends neither Fetch Metadata nor an ``Accept`` asking for HTML.
* Browsers send Fetch Metadata on every request (Chromium since 76, Firefox since 90, Safari since
  16.4): a top-level navigation carries ``Sec-Fetch-Mode: navigate``. Older browsers send no Fetch
  Metadata but ask for ``text/html`` in ``Accept`` on a navigation.

Pure functions over the request headers, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

#: Product names at the start of AusweisApp's User-Agent (all versions, all platforms).
_AUSWEISAPP: Final = ("ausweisapp",)


def is_ausweisapp(headers: Mapping[str, str]) -> bool:
    """The request names AusweisApp as its client."""
    return headers.get("User-Agent", "").strip().lower().startswith(_AUSWEISAPP)


def is_browser_navigation(headers: Mapping[str, str]) -> bool:
    """A person's browser opening this URL as a page (not AusweisApp, not a script's fetch)."""
    if is_ausweisapp(headers):
        return False
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.strip().lower() == "navigate"
    return "text/html" in headers.get("Accept", "").lower()


#: The official download page of AusweisApp (Governikus for the BSI), shown where AusweisApp is missing.
AUSWEISAPP_DOWNLOAD_URL: Final = "https://www.ausweisapp.bund.de/download"

#: User-Agent marks of phones and tablets, where AusweisApp is an app opened by the ``eid://`` scheme.
_PHONE: Final = re.compile(r"Mobi|Android|iPhone|iPad|iPod", re.IGNORECASE)


def is_phone(headers: Mapping[str, str]) -> bool:
    """A phone or tablet: the smartphone button is the primary one there (the desktop activation URL on
    127.0.0.1 reaches nothing on a phone). Chromium says so in ``Sec-CH-UA-Mobile``; others in the UA."""
    if headers.get("Sec-CH-UA-Mobile", "").strip() == "?1":
        return True
    return bool(_PHONE.search(headers.get("User-Agent", "")))
