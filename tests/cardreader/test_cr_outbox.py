import pytest

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState
from cardreader.outbox import Backoff, Outbox


def snap(i):
    return KioskSnapshot(ServiceState.OK, (ReaderStatus(f"reader {i}", ReaderState.EMPTY),))


def test_states_wait_in_order_until_done():
    box = Outbox(10, instance="test-instance")
    a, b = box.put_state(snap(1)), box.put_state(snap(2))
    assert box.peek() is a and a.seq < b.seq
    body = box.body(a)
    assert (
        body["instance"] == "test-instance"
        and body["queue"] == 2
        and body["status"]["readers"][0]["name"] == "reader 1"
    )
    box.done(b)  # not the head: nothing happens
    assert box.peek() is a
    box.done(a)
    assert box.peek() is b


def test_bound_drops_oldest_and_counts():
    box = Outbox(3)
    msgs = [box.put_state(snap(i)) for i in range(5)]
    assert len(box) == 3 and box.dropped == 2
    assert box.peek() is msgs[2]
    assert box.body(box.peek())["dropped"] == 2


def test_heartbeat_only_when_empty_and_sequence_grows():
    box = Outbox(3)
    h1 = box.heartbeat()
    s = box.put_state(snap(1))
    with pytest.raises(RuntimeError):
        box.heartbeat()
    box.done(s)
    h2 = box.heartbeat()
    assert h1.seq < s.seq < h2.seq
    assert "status" not in box.body(h2)


def test_backoff_grows_caps_and_resets():
    b = Backoff(0.5, 4.0, rand=lambda: 1.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5
    low = Backoff(0.5, 4.0, rand=lambda: 0.0)
    assert low.next() == 0.25  # never below half the ceiling
