import asyncio
from dataclasses import replace

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState
from eid_gateway.kiosks.kiosk_state import KioskState, state_to_json
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.service import KioskService
from eid_gateway.kiosks.state_store import MemoryKioskStateStore
from helpers.clocks import FakeClock

from .conftest import make_settings

CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),))
EMPTY = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),))


class Node:
    """The registry with its service over an in-memory state store: one gateway process."""

    def __init__(self, clock: FakeClock) -> None:
        self.registry = KioskRegistry(make_settings(heartbeat=10, missed=3), clock=clock)
        self.service = KioskService(self.registry, MemoryKioskStateStore(), clock=clock)

    def __getattr__(self, name: str):
        return getattr(self.registry, name)


def registry():
    clock = FakeClock(1_700_000_000.0)
    return Node(clock), clock


async def test_retried_or_old_messages_never_roll_back():
    reg, _ = registry()
    assert (await reg.service.report_state("mitte-1", "inst-aaaa", 2, CARD)).applied
    assert not (await reg.service.report_state("mitte-1", "inst-aaaa", 1, EMPTY)).applied  # late, older
    assert not (await reg.service.report_state("mitte-1", "inst-aaaa", 2, EMPTY)).applied  # retry of an applied one
    assert reg.row("mitte-1")["summary"] == "id_card"
    assert reg.counters["duplicate"] == 2
    # an agent restart starts a new instance with small numbers again
    assert (await reg.service.report_state("mitte-1", "inst-bbbb", 1, EMPTY)).applied
    assert reg.row("mitte-1")["summary"] == "empty"


async def test_staleness_after_missed_heartbeats():
    reg, clock = registry()
    assert reg.row("mitte-1")["status"] == "unknown"
    await reg.service.report_state("mitte-1", "inst-aaaa", 1, CARD)
    assert reg.row("mitte-1")["status"] == "id_card"
    clock.now += 34  # heartbeat 10 s, three may be missed: offline when the third is half an interval late
    assert reg.refresh_staleness() == []
    clock.now += 2
    assert reg.refresh_staleness() == ["mitte-1"]
    row = reg.row("mitte-1")
    assert row["status"] == "offline" and row["offline_reason"] == "silent"
    assert row["offline_since"] == "2023-11-14T22:13:20+00:00"  # the last report
    assert (await reg.service.heartbeat("mitte-1", "inst-aaaa", 2)).applied
    assert reg.row("mitte-1")["status"] == "id_card"


async def test_heartbeat_asks_for_state_when_gateway_does_not_have_it():
    reg, _ = registry()
    assert (await reg.service.heartbeat("mitte-1", "inst-aaaa", 1)).want_state  # nothing known yet
    await reg.service.report_state("mitte-1", "inst-aaaa", 2, CARD)
    assert not (await reg.service.heartbeat("mitte-1", "inst-aaaa", 3)).want_state


async def test_states_read_from_the_store_are_stale_by_their_time_and_a_new_agent_is_asked_to_resend():
    reg, clock = registry()
    old = KioskState(snapshot=CARD, last_seen=clock.now - 100, changed_at=clock.now - 200, instance="inst-old1", seq=4)
    store = reg.service.store
    await store.put(
        "mitte-1", state_to_json(replace(old, state_instance="inst-old1")), expected_version=0, message="{}"
    )
    await store.put(
        "not-configured",
        state_to_json(KioskState(snapshot=CARD, last_seen=clock.now)),
        expected_version=0,
        message="{}",
    )
    await store.put("nord-2", '{"snapshot": {"service": "broken"}}', expected_version=0, message="{}")
    await reg.service.resync()
    row = reg.row("mitte-1")
    assert row["summary"] == "id_card" and row["stale"] and row["status"] == "offline"
    assert reg.row("nord-2")["status"] == "unknown"
    assert "not-configured" not in reg.records
    # an older or equal version (a late message from another node) changes nothing
    assert not reg.apply("mitte-1", KioskState(), 1)
    assert reg.row("mitte-1")["summary"] == "id_card"
    assert (await reg.service.heartbeat("mitte-1", "inst-new1", 1)).want_state
    assert not (await reg.service.heartbeat("mitte-1", "inst-old1", 5)).want_state


async def test_changes_fan_out_and_slow_dashboards_are_cut_off():
    reg, _ = registry()
    reg.registry.sub_queue_size = 3
    fast, slow = reg.subscribe(), reg.subscribe()
    await reg.service.report_state("mitte-1", "inst-aaaa", 1, CARD)
    ev = fast.queue.get_nowait()
    assert ev["type"] == "kiosk" and ev["row"]["summary"] == "id_card"
    await reg.service.heartbeat("mitte-1", "inst-aaaa", 2)
    assert fast.queue.get_nowait() == {"type": "seen", "id": "mitte-1", "last_seen": reg.row("mitte-1")["last_seen"]}
    for i in range(3, 6):
        await reg.service.heartbeat("mitte-1", "inst-aaaa", i)
        fast.queue.get_nowait()
    assert slow.overflowed and slow.closed.is_set()
    assert reg.subscriber_count == 1
    await asyncio.sleep(0)


async def test_announced_stop_is_offline_at_once_until_the_agent_reports_again():
    reg, clock = registry()
    await reg.service.report_state("mitte-1", "inst-aaaa", 1, EMPTY)
    clock.now += 1
    assert not (await reg.service.offline("mitte-1", "inst-aaaa", 1)).applied  # an old number changes nothing
    assert reg.row("mitte-1")["status"] == "empty"
    assert (await reg.service.offline("mitte-1", "inst-aaaa", 2)).applied
    row = reg.row("mitte-1")
    assert row["status"] == "offline" and row["offline_reason"] == "stopped"
    assert row["offline_since"] == "2023-11-14T22:13:21+00:00"
    assert reg.counts() == {"offline": 1, "unknown": 1}
    clock.now += 100
    reg.refresh_staleness()
    assert reg.row("mitte-1")["offline_reason"] == "stopped"  # still the announced stop, not "silent"
    await reg.service.report_state("mitte-1", "inst-bbbb", 1, CARD)  # the agent restarted
    assert reg.row("mitte-1")["status"] == "id_card" and reg.row("mitte-1")["offline_since"] is None


async def test_refused_credential_shows_only_while_the_kiosk_does_not_report():
    reg, clock = registry()  # heartbeat 10 s, 3 missed: the offline window is 35 s
    await reg.service.refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "credential_refused"
    await reg.service.refused("sued-9")  # not configured: nothing to show, no error
    # a kiosk that reports validly is not hidden by someone guessing at its token
    await reg.service.report_state("mitte-1", "inst-aaaa", 1, EMPTY)
    clock.now += 1
    await reg.service.refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "empty"
    # once it falls silent, the refusal is what staff see, while refusals keep coming
    clock.now += 40
    reg.refresh_staleness()
    assert reg.row("mitte-1")["status"] == "offline"
    await reg.service.refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "credential_refused"
    # refusals that stopped age out with the offline window
    clock.now += 36
    assert reg.refresh_staleness() == ["mitte-1"]
    assert reg.row("mitte-1")["status"] == "offline"
    # a valid report ends it
    await reg.service.heartbeat("mitte-1", "inst-aaaa", 2)
    assert reg.row("mitte-1")["status"] == "empty"


async def test_a_damaged_stored_state_is_replaced_by_the_next_report(caplog):
    reg, _ = registry()
    await reg.service.store.put("mitte-1", '{"seq": "many"}', expected_version=0, message="{}")
    assert (await reg.service.report_state("mitte-1", "inst-aaaa", 1, CARD)).applied
    assert reg.row("mitte-1")["status"] == "id_card"
    assert "kiosk state of mitte-1 unreadable" in caplog.text
