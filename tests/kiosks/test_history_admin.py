"""Roles and the history: `view` may only look (board and history), `admin` exports a kiosk's history
(CSV, JSON, as a download) and removes a decommissioned kiosk from the board (its credential void on
every node); every action is POST with the session's CSRF token, audit-logged without names, and a
`view` account gets a readable 403 page in German or English. In the composed gateway from its TOML."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from cardreader.identify import card_info
from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from cardreader.testing.vcard import NPA_ATR, npa_card_access
from eid_gateway.app import create_app
from eid_gateway.config import load_config
from eid_gateway.kiosks.credentials import new_kiosk_credential
from eid_gateway.kiosks.texts import ADMIN, HISTORY, LABELS
from eid_gateway.store.sqlite import SqliteStore
from tr03110.security_infos import parse_security_infos

from .test_credentials_reload import until
from .test_gateway_wiring import KIOSK_TOKEN, kiosk_config, kiosk_gateway
from .test_staff_login import ADMIN as ADMIN_NAME
from .test_staff_login import ADMIN_PW, CSRF, VIEWER, VIEWER_PW, sign_in, staff_toml

READER = "REINER SCT cyberJack RFID komfort 00 00"
#: a reader name a kiosk could send to turn an exported CSV cell into a spreadsheet formula
FORMULA_READER = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Path]]:
    async with kiosk_gateway(tmp_path, staff_toml()) as served:
        yield served


async def report(client: TestClient, seq: int, readers: tuple[ReaderStatus, ...], token: str = KIOSK_TOKEN) -> int:
    snap = KioskSnapshot(ServiceState.OK, readers)
    resp = await client.post(
        "/kiosks/api/v1/kiosks/mitte-1/state",
        json={"instance": "history-test", "seq": seq, "status": snapshot_to_json(snap)},
        headers={"Authorization": f"Bearer {token}"},
    )
    return resp.status


async def a_day_at_the_kiosk(client: TestClient) -> None:
    """Reader connected (empty), an ID card in, out, a reader whose name is a formula, the agent stops."""
    _, card = card_info(NPA_ATR, parse_security_infos(npa_card_access()))
    assert await report(client, 1, (ReaderStatus(READER, ReaderState.EMPTY),)) == 200
    assert await report(client, 2, (ReaderStatus(READER, ReaderState.ID_CARD, card),)) == 200
    assert await report(client, 3, (ReaderStatus(READER, ReaderState.EMPTY),)) == 200
    assert await report(client, 4, (ReaderStatus(FORMULA_READER, ReaderState.EMPTY),)) == 200
    stop = await client.post(
        "/kiosks/api/v1/kiosks/mitte-1/offline",
        json={"instance": "history-test", "seq": 5},
        headers={"Authorization": f"Bearer {KIOSK_TOKEN}"},
    )
    assert stop.status == 200


async def signed_in(client: TestClient, name: str, password: str) -> None:
    client.session.cookie_jar.clear()
    assert (await sign_in(client, name, password)).status == 303


async def history(client: TestClient, lang: str = "de") -> str:
    resp = await client.get(f"/kiosks/history/mitte-1?lang={lang}")
    assert resp.status == 200
    return await resp.text()


@pytest.mark.parametrize("lang", ["de", "en"])
async def test_a_viewer_reads_the_history_in_local_time_and_has_no_actions(
    gateway: tuple[TestClient, Path], lang: str
) -> None:
    client, _ = gateway
    await a_day_at_the_kiosk(client)
    await signed_in(client, VIEWER, VIEWER_PW)
    board = await (await client.get(f"/kiosks/dashboard?lang={lang}")).text()
    assert f'href="history/mitte-1?lang={lang}"' in board and HISTORY["link"][lang] in board
    html = await history(client, lang)
    events = re.findall(r'<tr data-kind="([a-z_]+)">', html)
    # newest first: the stop, the formula reader's appearance, the card out and in, the reader
    assert events[0] == "agent_offline" and "reader_state" in events and events[-1] in ("agent_online", "reader_added")
    assert HISTORY["agent_offline_stopped"][lang] in html
    assert f"{READER}: {LABELS['id_card'][lang]}" in html  # the card's type, nothing read from it
    # times in the configured zone (Europe/Berlin: +01:00 or +02:00), readable without JavaScript
    assert re.search(r'<time class="ts" datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00">', html)
    assert 'action="/kiosks/history/mitte-1/export' not in html and "/remove" not in html


async def test_a_viewer_is_refused_every_action_with_a_readable_page(
    gateway: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = gateway
    caplog.set_level(logging.INFO, logger="eid_gateway.kiosks.audit")
    await signed_in(client, VIEWER, VIEWER_PW)
    token = CSRF.search(await (await client.get("/kiosks/dashboard")).text())
    assert token is not None  # the logout form's token: a viewer has a valid one, and still may not act
    for lang in ("de", "en"):
        for path, data in (
            ("/kiosks/history/mitte-1/export", {"format": "csv"}),
            ("/kiosks/admin/kiosks/mitte-1/remove", {}),
        ):
            resp = await client.post(f"{path}?lang={lang}", data={"csrf_token": token.group(1), **data})
            assert resp.status == 403
            page = await resp.text()
            assert f'<html lang="{lang}">' in page and ADMIN["forbidden"][lang] in page
            assert "attachment" not in resp.headers.get("Content-Disposition", "")
    assert "kiosk admin action refused" in caplog.text and VIEWER not in caplog.text
    # nothing happened: the kiosk is still on the board and its token works
    assert await report(client, 1, (ReaderStatus(READER, ReaderState.EMPTY),)) == 200


async def admin_token(client: TestClient) -> str:
    found = CSRF.search(await history(client))
    assert found is not None
    return found.group(1)


async def test_an_admin_exports_the_history_as_csv_and_json(
    gateway: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = gateway
    caplog.set_level(logging.INFO, logger="eid_gateway.kiosks.audit")
    await a_day_at_the_kiosk(client)
    await signed_in(client, ADMIN_NAME, ADMIN_PW)
    token = await admin_token(client)

    resp = await client.post("/kiosks/history/mitte-1/export?lang=de", data={"csrf_token": token, "format": "csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert re.fullmatch(
        r'attachment; filename="kiosk-mitte-1-history-\d{8}-\d{6}\.csv"', resp.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["event"] for r in rows][-1] == "agent_offline"  # oldest first, like a log
    card_in = next(r for r in rows if r["state"] == "id_card")
    assert card_in["reader"] == READER and card_in["text"] == f"{READER}: {LABELS['id_card']['de']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", card_in["time_local"])
    formula = [r for r in rows if FORMULA_READER[1:] in r["reader"]]
    assert formula and all(r["reader"].startswith("'=") for r in formula)  # no live formula in a spreadsheet
    body = await resp.read()
    assert NPA_ATR.hex().upper().encode() not in body.upper()  # card types only: no ATR, nothing read

    resp = await client.post("/kiosks/history/mitte-1/export?lang=en", data={"csrf_token": token, "format": "json"})
    assert resp.status == 200 and resp.content_type == "application/json"
    assert resp.headers["Content-Disposition"].endswith('.json"')
    doc = json.loads(await resp.text())
    assert doc["kiosk"] == "mitte-1" and doc["time_zone"] == "Europe/Berlin"
    assert {"time_utc", "time_local", "event", "reader", "state", "detail", "text"} == set(doc["events"][0])
    assert any(e["text"] == HISTORY["agent_offline_stopped"]["en"] for e in doc["events"])

    assert "action=export_history kiosk=mitte-1 format=csv" in caplog.text
    assert ADMIN_NAME not in caplog.text and "staff=" in caplog.text


@pytest.mark.parametrize(
    ("data", "status"),
    [({"format": "csv"}, 403), ({"csrf_token": "wrong-" + "x" * 30, "format": "csv"}, 403), ({"format": "xls"}, 400)],
)
async def test_an_export_without_the_csrf_token_or_with_an_unknown_format_is_refused(
    gateway: tuple[TestClient, Path], data: dict[str, str], status: int
) -> None:
    client, _ = gateway
    await signed_in(client, ADMIN_NAME, ADMIN_PW)
    if data.get("format") == "xls":
        data = {**data, "csrf_token": await admin_token(client)}
    resp = await client.post("/kiosks/history/mitte-1/export", data=data)
    assert resp.status == status and "Content-Disposition" not in resp.headers
    assert "<h1>" in await resp.text()


async def test_an_admin_removes_a_decommissioned_kiosk_and_a_new_credential_brings_it_back(
    gateway: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = gateway
    caplog.set_level(logging.INFO, logger="eid_gateway.kiosks.audit")
    assert await report(client, 1, (ReaderStatus(READER, ReaderState.EMPTY),)) == 200
    await signed_in(client, ADMIN_NAME, ADMIN_PW)
    token = await admin_token(client)
    resp = await client.post(
        "/kiosks/admin/kiosks/mitte-1/remove?lang=en", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/kiosks/dashboard?lang=en&removed=mitte-1"
    board = await (await client.get(resp.headers["Location"])).text()
    assert ADMIN["removed"]["en"].format(name="mitte-1") in board and 'id="kiosk-mitte-1"' not in board
    status = await (await client.get("/kiosks/status.json")).json()
    assert "mitte-1" not in {k["id"] for k in status["kiosks"]}
    assert await report(client, 2, (ReaderStatus(READER, ReaderState.EMPTY),)) == 401  # its token is void
    assert (await client.get("/kiosks/history/mitte-1")).status == 404
    assert "action=remove_from_board kiosk=mitte-1 role=admin" in caplog.text and ADMIN_NAME not in caplog.text

    # IT issues a new credential for the replacement PC: the kiosk is back, with the new token only
    new_token, new_hash = new_kiosk_credential()
    text = path.read_text(encoding="utf-8")
    old_hash = text.split('id = "mitte-1"', 1)[1].split('credential_hash = "', 1)[1].split('"', 1)[0]
    path.write_text(text.replace(old_hash, new_hash), encoding="utf-8")

    async def back() -> bool:
        return await report(client, 3, (ReaderStatus(READER, ReaderState.EMPTY),), token=new_token) == 200

    await until(back)
    assert await report(client, 4, (ReaderStatus(READER, ReaderState.EMPTY),)) == 401  # the old one stays void


async def test_the_removal_holds_on_another_node_of_the_same_store(tmp_path: Path) -> None:
    """Two gateways on one store file: an admin removes the kiosk on node A; node B drops it within its tick."""
    store_file = tmp_path / "store.sqlite3"
    path = kiosk_config(tmp_path, staff_toml())
    a = TestClient(TestServer(create_app(load_config(path), store=SqliteStore(store_file))))
    b = TestClient(TestServer(create_app(load_config(path), store=SqliteStore(store_file))))
    await a.start_server()
    await b.start_server()
    try:
        assert await report(b, 1, (ReaderStatus(READER, ReaderState.EMPTY),)) == 200
        await signed_in(a, ADMIN_NAME, ADMIN_PW)
        token = await admin_token(a)
        resp = await a.post("/kiosks/admin/kiosks/mitte-1/remove", data={"csrf_token": token}, allow_redirects=False)
        assert resp.status == 303
        seq = 1

        async def refused_on_b() -> bool:
            nonlocal seq
            seq += 1
            return await report(b, seq, (ReaderStatus(READER, ReaderState.EMPTY),)) == 401

        await until(refused_on_b)
    finally:
        await a.close()
        await b.close()


async def test_an_unknown_kiosks_history_is_a_404_page_and_no_sign_in_goes_to_the_login(
    gateway: tuple[TestClient, Path],
) -> None:
    client, _ = gateway
    await signed_in(client, VIEWER, VIEWER_PW)
    resp = await client.get("/kiosks/history/no-such-kiosk?lang=en")
    assert resp.status == 404 and HISTORY["unknown_kiosk"]["en"] in await resp.text()
    client.session.cookie_jar.clear()
    anonymous = await client.get("/kiosks/history/mitte-1?lang=en", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "/kiosks/login?lang=en"


async def snapshot_rows(stream: ClientResponse) -> str:
    """The rows of the stream's first event, the snapshot (read line by line up to its data line)."""
    while True:
        line = await asyncio.wait_for(stream.content.readline(), timeout=20)
        assert line, "the stream ended before its snapshot"
        if line.startswith(b"data: "):
            return " ".join(json.loads(line[6:])["rows"])


async def test_open_dashboards_get_the_board_without_the_removed_kiosk(gateway: tuple[TestClient, Path]) -> None:
    """A removal (as a kiosk added or removed in the file) ends the open event streams; the browser's
    EventSource reconnects, and its new snapshot is the new board."""
    client, _ = gateway
    await signed_in(client, ADMIN_NAME, ADMIN_PW)
    token = await admin_token(client)
    stream = await client.get("/kiosks/dashboard/events")
    assert 'id="kiosk-mitte-1"' in await snapshot_rows(stream)
    removed = await client.post(
        "/kiosks/admin/kiosks/mitte-1/remove", data={"csrf_token": token}, allow_redirects=False
    )
    assert removed.status == 303
    await asyncio.wait_for(stream.content.read(), timeout=20)  # returns when the server ends the stream
    again = await client.get("/kiosks/dashboard/events")
    try:
        assert 'id="kiosk-mitte-1"' not in await snapshot_rows(again)
    finally:
        again.close()
