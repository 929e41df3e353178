"""Last kiosk states survive a gateway restart (kept in the gateway's store), shown stale until the
kiosk reports."""

import aiohttp

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from eid_gateway.kiosks.state_store import SharedKioskStateStore, StoredKiosk
from eid_gateway.store.sqlite import SqliteStore
from helpers.ports import free_port

from .conftest import TOKENS, RunningGateway, make_settings

CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),))


async def test_shared_store_round_trip(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    store = SqliteStore(path)
    s = SharedKioskStateStore(store)
    await s.save(StoredKiosk("mitte-1", snapshot_to_json(CARD), 10.0, 5.0))
    await s.save(StoredKiosk("mitte-1", snapshot_to_json(CARD), 20.0, 5.0))  # overwrite, one row
    await store.close()
    store2 = SqliteStore(path)
    assert await SharedKioskStateStore(store2).load_all() == [StoredKiosk("mitte-1", snapshot_to_json(CARD), 20.0, 5.0)]
    await store2.close()


async def test_gateway_restart_keeps_last_state_and_asks_for_a_fresh_one(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    port = free_port()
    auth = {"Authorization": f"Bearer {TOKENS['mitte-1']}"}
    store = SqliteStore(path)
    gw = RunningGateway(make_settings(), port, store=SharedKioskStateStore(store))
    await gw.start()
    async with aiohttp.ClientSession() as http:
        r = await http.post(
            f"{gw.base}api/v1/kiosks/mitte-1/state",
            headers=auth,
            json={"instance": "agent-run-1", "seq": 1, "status": snapshot_to_json(CARD)},
        )
        assert r.status == 200
        await gw.stop()
        await store.close()
        store = SqliteStore(path)
        gw2 = RunningGateway(make_settings(), port, store=SharedKioskStateStore(store))
        await gw2.start()
        try:
            row = gw2.registry.row("mitte-1")
            assert row["summary"] == "id_card" and row["status"] == "offline"
            r = await http.post(
                f"{gw2.base}api/v1/kiosks/mitte-1/heartbeat", headers=auth, json={"instance": "agent-run-1", "seq": 2}
            )
            assert (await r.json())["want_state"] is True
        finally:
            await gw2.stop()
            await store.close()
