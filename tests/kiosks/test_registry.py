import asyncio

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState
from eid_gateway.kiosks.kiosk_state import KioskState, state_to_json
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.store.base import Versioned
from helpers.clocks import FakeClock

from .conftest import make_settings

CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),))
EMPTY = KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),))


def registry():
    clock = FakeClock(1_700_000_000.0)
    return KioskRegistry(make_settings(heartbeat=10, missed=3), clock=clock), clock


def test_retried_or_old_messages_never_roll_back():
    reg, _ = registry()
    assert reg.record_state("mitte-1", "inst-aaaa", 2, CARD).applied
    assert not reg.record_state("mitte-1", "inst-aaaa", 1, EMPTY).applied  # late, older
    assert not reg.record_state("mitte-1", "inst-aaaa", 2, EMPTY).applied  # retry of an applied one
    assert reg.row("mitte-1")["summary"] == "id_card"
    assert reg.counters["duplicate"] == 2
    # an agent restart starts a new instance with small numbers again
    assert reg.record_state("mitte-1", "inst-bbbb", 1, EMPTY).applied
    assert reg.row("mitte-1")["summary"] == "empty"


def test_staleness_after_missed_heartbeats():
    reg, clock = registry()
    assert reg.row("mitte-1")["status"] == "unknown"
    reg.record_state("mitte-1", "inst-aaaa", 1, CARD)
    assert reg.row("mitte-1")["status"] == "id_card"
    clock.now += 34  # heartbeat 10 s, three may be missed: offline when the third is half an interval late
    assert reg.refresh_staleness() == []
    clock.now += 2
    assert reg.refresh_staleness() == ["mitte-1"]
    row = reg.row("mitte-1")
    assert row["status"] == "offline" and row["offline_reason"] == "silent"
    assert row["offline_since"] == "2023-11-14T22:13:20+00:00"  # the last report
    assert reg.record_heartbeat("mitte-1", "inst-aaaa", 2).applied
    assert reg.row("mitte-1")["status"] == "id_card"


def test_heartbeat_asks_for_state_when_gateway_does_not_have_it():
    reg, _ = registry()
    assert reg.record_heartbeat("mitte-1", "inst-aaaa", 1).want_state  # nothing known yet
    reg.record_state("mitte-1", "inst-aaaa", 2, CARD)
    assert not reg.record_heartbeat("mitte-1", "inst-aaaa", 3).want_state


def test_restored_state_is_stale_by_its_time_and_a_new_agent_is_asked_to_resend():
    reg, clock = registry()
    old = KioskState(snapshot=CARD, last_seen=clock.now - 100, changed_at=clock.now - 200, instance="inst-old1", seq=4)
    old = KioskState(**{**old.__dict__, "state_instance": "inst-old1"})
    reg.restore(
        {
            "mitte-1": Versioned(state_to_json(old), 3),
            "not-configured": Versioned(state_to_json(KioskState(snapshot=CARD, last_seen=clock.now)), 1),
            "nord-2": Versioned('{"snapshot": {"service": "broken"}}', 1),
        }
    )
    row = reg.row("mitte-1")
    assert row["summary"] == "id_card" and row["stale"] and row["status"] == "offline"
    assert reg.row("nord-2")["status"] == "unknown"
    assert reg.record_heartbeat("mitte-1", "inst-new1", 1).want_state
    # an older version (a late message from another node) changes nothing
    assert not reg.apply("mitte-1", KioskState(), 3)
    assert reg.row("mitte-1")["summary"] == "id_card"


async def test_changes_fan_out_and_slow_dashboards_are_cut_off():
    reg, _ = registry()
    reg.sub_queue_size = 3
    fast, slow = reg.subscribe(), reg.subscribe()
    reg.record_state("mitte-1", "inst-aaaa", 1, CARD)
    ev = fast.queue.get_nowait()
    assert ev["type"] == "kiosk" and ev["row"]["summary"] == "id_card"
    reg.record_heartbeat("mitte-1", "inst-aaaa", 2)
    assert fast.queue.get_nowait() == {"type": "seen", "id": "mitte-1", "last_seen": reg.row("mitte-1")["last_seen"]}
    for i in range(3, 6):
        reg.record_heartbeat("mitte-1", "inst-aaaa", i)
        fast.queue.get_nowait()
    assert slow.overflowed and slow.closed.is_set()
    assert reg.subscriber_count == 1
    await asyncio.sleep(0)


def test_announced_stop_is_offline_at_once_until_the_agent_reports_again():
    reg, clock = registry()
    reg.record_state("mitte-1", "inst-aaaa", 1, EMPTY)
    clock.now += 1
    assert not reg.record_offline("mitte-1", "inst-aaaa", 1).applied  # an old number changes nothing
    assert reg.row("mitte-1")["status"] == "empty"
    assert reg.record_offline("mitte-1", "inst-aaaa", 2).applied
    row = reg.row("mitte-1")
    assert row["status"] == "offline" and row["offline_reason"] == "stopped"
    assert row["offline_since"] == "2023-11-14T22:13:21+00:00"
    assert reg.counts() == {"offline": 1, "unknown": 1}
    clock.now += 100
    reg.refresh_staleness()
    assert reg.row("mitte-1")["offline_reason"] == "stopped"  # still the announced stop, not "silent"
    reg.record_state("mitte-1", "inst-bbbb", 1, CARD)  # the agent restarted
    assert reg.row("mitte-1")["status"] == "id_card" and reg.row("mitte-1")["offline_since"] is None


def test_refused_credential_shows_only_while_the_kiosk_does_not_report():
    reg, clock = registry()  # heartbeat 10 s, 3 missed: the offline window is 35 s
    reg.record_refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "credential_refused"
    reg.record_refused("sued-9")  # not configured: nothing to show, no error
    # a kiosk that reports validly is not hidden by someone guessing at its token
    reg.record_state("mitte-1", "inst-aaaa", 1, EMPTY)
    clock.now += 1
    reg.record_refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "empty"
    # once it falls silent, the refusal is what staff see, while refusals keep coming
    clock.now += 40
    reg.refresh_staleness()
    assert reg.row("mitte-1")["status"] == "offline"
    reg.record_refused("mitte-1")
    assert reg.row("mitte-1")["status"] == "credential_refused"
    # refusals that stopped age out with the offline window
    clock.now += 36
    assert reg.refresh_staleness() == ["mitte-1"]
    assert reg.row("mitte-1")["status"] == "offline"
    # a valid report ends it
    reg.record_heartbeat("mitte-1", "inst-aaaa", 2)
    assert reg.row("mitte-1")["status"] == "empty"
