"""The kiosk liveness steps (pure functions): a missed heartbeat reaches the history exactly once, whether
a node's clock tick noticed it or the agent came back before any tick did."""

from cardreader.model import KioskSnapshot, ServiceState
from eid_gateway.kiosks import kiosk_state as ks
from eid_gateway.kiosks.history import AGENT_OFFLINE, AGENT_ONLINE

STALE = 8.0


def _heard_at(t: float) -> ks.KioskState:
    return ks.on_heartbeat(ks.KioskState(), "run-1", 1, 0, 0, t, STALE).state or ks.KioskState()


def _kinds(step: ks.Step) -> list[tuple[str, str | None, float]]:
    return [(e.kind, e.detail, e.at) for e in step.events]


def test_a_silence_no_tick_noticed_is_written_when_the_agent_comes_back() -> None:
    s = _heard_at(100.0)
    back = ks.on_heartbeat(s, "run-1", 2, 0, 0, 120.0, STALE)
    assert _kinds(back) == [(AGENT_OFFLINE, "silent", 108.0), (AGENT_ONLINE, None, 120.0)]


def test_a_silence_a_tick_noted_is_not_written_again() -> None:
    s = _heard_at(100.0)
    tick = ks.on_clock(s, 109.0, STALE)
    assert _kinds(tick) == [(AGENT_OFFLINE, "silent", 109.0)] and tick.state is not None
    back = ks.on_state(tick.state, "run-1", 2, KioskSnapshot(ServiceState.OK, ()), 0, 0, 120.0, STALE)
    assert [k for k, _, _ in _kinds(back) if k == AGENT_OFFLINE] == []
    assert (AGENT_ONLINE, None, 120.0) in _kinds(back)


def test_back_after_an_announced_stop_is_no_silence() -> None:
    s = _heard_at(100.0)
    stopped = ks.on_offline(s, "run-1", 2, 101.0).state
    assert stopped is not None
    back = ks.on_heartbeat(stopped, "run-2", 1, 0, 0, 130.0, STALE)
    assert _kinds(back) == [(AGENT_ONLINE, None, 130.0)]


def test_a_heartbeat_in_time_writes_nothing() -> None:
    s = _heard_at(100.0)
    assert ks.on_heartbeat(s, "run-1", 2, 0, 0, 104.0, STALE).events == ()
