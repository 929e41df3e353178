"""The dashboard says what happened and what to do, in German and English, with times in the configured
zone for a page without JavaScript (over real HTTP; the browser side is test_dashboard_browser.py)."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from markupsafe import escape

from cardreader.model import ReaderState, ServiceState
from eid_gateway.kiosks import create_kiosk_app
from eid_gateway.kiosks.registry import DOWN_WORDS
from eid_gateway.kiosks.texts import ADVICE, DETAILS, LABELS, PACE_CAPABILITIES, UI

from .conftest import post_scene, scene_settings
from .test_api import STAFF


@pytest.fixture
async def scene(aiohttp_client):
    app = web.Application()
    app.add_subapp("/kiosks/", create_kiosk_app(scene_settings(time_zone="America/New_York")))
    client = await aiohttp_client(app)
    await post_scene(str(client.make_url("")).rstrip("/"))
    return client


async def page(client, lang):
    r = await client.get(f"/kiosks/dashboard?lang={lang}", headers=STAFF)
    assert r.status == 200
    return await r.text()


def row_html(html, kiosk):
    return re.search(rf'<tr id="kiosk-{kiosk}".*?</tr>', html, re.S).group(0)


def test_every_state_and_status_word_has_a_label():
    """Every state the agent can report and every status word (both languages: tests/test_catalog.py)."""
    assert {s.value for s in ReaderState} | {s.value for s in ServiceState if s is not ServiceState.OK} | set(
        DOWN_WORDS
    ) <= set(LABELS)


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_dead_and_refused_kiosks_override_reader_lines(scene, lang):
    html = await page(scene, lang)
    offline, refused = row_html(html, "sued-3"), row_html(html, "nord-2")
    assert 'class="badge status-offline"' in offline and UI["offline_since"][lang] in offline
    assert escape(ADVICE["offline_stopped"][lang]) in offline
    assert LABELS["empty"][lang] not in offline  # its last reader line is not shown as if true
    assert UI["readers_unknown"][lang] in offline
    assert (
        'class="badge status-credential_refused"' in refused and escape(ADVICE["credential_refused"][lang]) in refused
    )
    unknown = row_html(html, "ost-4")
    assert "status-unknown" in unknown and LABELS["unknown"][lang] in unknown


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_errors_say_what_to_do_with_the_code_folded_away(scene, lang):
    html = await page(scene, lang)
    down = row_html(html, "west-5")
    assert escape(DETAILS["SCARD_E_NO_SERVICE"][lang]) in down
    assert re.search(r"<details class=\"tech\"><summary>[^<]+</summary><code>SCARD_E_NO_SERVICE</code></details>", down)
    assert down.count("SCARD_E_NO_SERVICE") == 1  # only inside <details>
    mitte = row_html(html, "mitte-1")
    assert escape(DETAILS["malformed response"][lang]) in mitte and "<code>malformed response</code>" in mitte
    # the comfort reader's PACE functions spelled out, not "[PACE im Leser]"
    for cap in ("eID", "eSign", "generic", "DestroyPACEChannel"):
        assert escape(PACE_CAPABILITIES[cap][lang]) in mitte
    assert "PACE im Leser" not in mitte
    assert ("Ausweis-Chip" if lang == "de" else "ID card chip") in mitte


async def test_english_page_has_no_german_staff_text(scene):
    html = await page(scene, "en")
    assert '<html lang="en">' in html
    text = re.sub(r"<[^>]+>", " ", html.split("<main", 1)[1])
    text = text.replace("Deutsch", "")  # the language switch
    text = re.sub(r"Bürgerbüro[^<\n]*", "", text)  # kiosk names are the city's own
    assert not re.search(r"\b(und|der|die|das|nicht|Lesegerät|Karte|bereit)\b", text), text


async def test_times_in_the_configured_zone_without_javascript(scene):
    html = await page(scene, "de")
    times = re.findall(r'<time class="ts" datetime="([^"]+)">([^<]+)</time>', row_html(html, "mitte-1"))
    assert times
    for iso, text in times:
        t = datetime.fromisoformat(iso)
        assert t.utcoffset() == t.astimezone(ZoneInfo("America/New_York")).utcoffset()  # offset of the zone
        assert text == t.strftime("%d.%m.%Y, %H:%M:%S")
    assert "(America/New_York)" in html  # said in the <noscript> part
    assert "+00:00" not in html


async def test_default_zone_is_europe_berlin(aiohttp_client):
    from .conftest import make_settings

    assert make_settings().time_zone == "Europe/Berlin"
    from eid_gateway.kiosks.settings import parse_kiosk_settings

    with pytest.raises(Exception, match="time_zone"):
        parse_kiosk_settings(
            {
                "kiosk_monitor": {
                    "staff_user": "s",
                    "staff_password_hash": make_settings().staff_password_hash,
                    "time_zone": "Mars/Olympus",
                }
            }
        )
