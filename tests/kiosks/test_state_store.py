"""Kiosk states live in the gateway's store: a gateway restart (or another node) sees them, live by
their time, and the agent is not asked to resend what the store already has."""

import aiohttp

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from eid_gateway.kiosks.state_store import SharedKioskStateStore
from eid_gateway.store.sqlite import SqliteStore
from helpers.ports import free_port

from .conftest import TOKENS, RunningGateway, make_settings

CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),))


async def test_shared_store_compare_and_set(tmp_path):
    path = tmp_path / "gateway.sqlite3"
    store = SqliteStore(path)
    s = SharedKioskStateStore(store)
    assert await s.put("mitte-1", "one", expected_version=0, message="m1") == 1
    assert await s.put("mitte-1", "two", expected_version=0, message="m2") is None
    assert await s.put("mitte-1", "two", expected_version=1, message="m3") == 2
    await store.close()
    store2 = SqliteStore(path)
    got = await SharedKioskStateStore(store2).load_all()
    assert {k: (v.value, v.version) for k, v in got.items()} == {"mitte-1": ("two", 2)}
    await store2.close()


async def test_gateway_restart_keeps_the_state_and_the_agent_need_not_resend(tmp_path):
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
            assert row["summary"] == "id_card" and row["status"] == "id_card"  # reported seconds ago
            r = await http.post(
                f"{gw2.base}api/v1/kiosks/mitte-1/heartbeat", headers=auth, json={"instance": "agent-run-1", "seq": 2}
            )
            assert (await r.json()) == {"applied": True, "want_state": False}
            r = await http.post(
                f"{gw2.base}api/v1/kiosks/mitte-1/heartbeat", headers=auth, json={"instance": "agent-run-2", "seq": 1}
            )
            assert (await r.json())["want_state"] is True  # a restarted agent sends its whole state
        finally:
            await gw2.stop()
            await store.close()
