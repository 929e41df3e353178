"""Debian's Chromium, driven by Playwright in the browser tests (one place that finds it and starts it)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

#: Debian's package (apt-get install chromium); Playwright's own downloaded browsers are not used.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Headless, no sandbox (tests run as root in CI containers), nothing that talks to the network by itself.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Skips a test with a reason where Chromium is not installed.
requires_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

#: ``pytestmark`` of a module that drives Chromium: marked ``browser`` (and so ``slow``, see
#: tests/conftest.py), skipped where Chromium is not installed.
BROWSER_MARKS = [pytest.mark.browser, requires_chromium]


@asynccontextmanager
async def launched() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's ``Browser``), closed on the way out. Playwright is imported here,
    not at the top: only the browser tests need it installed."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()
