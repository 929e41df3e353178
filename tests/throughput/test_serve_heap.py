"""`eid-gateway serve` moves the start-up heap out of the cyclic collector's reach once the app is up."""

from __future__ import annotations

import gc

from eid_gateway.cli import _freeze_startup_heap


def _collectable_ids() -> set[int]:
    return {id(o) for generation in (0, 1, 2) for o in gc.get_objects(generation=generation)}


async def test_startup_hook_freezes_what_exists() -> None:
    gc.unfreeze()
    survivors = [[i] for i in range(100)]  # lists are tracked by the collector
    assert {id(s) for s in survivors} <= _collectable_ids()
    try:
        await _freeze_startup_heap(object())
        assert gc.get_freeze_count() >= len(survivors)
        assert not {id(s) for s in survivors} & _collectable_ids()
        later = [0]
        assert id(later) in _collectable_ids()  # what requests allocate afterwards is still collected
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
