"""Fixtures for the Store contract: every test runs on SQLite and on a real redis-server.

The run's one redis-server process (``redis_server`` in tests/conftest.py) serves every test; each test
gets its own key prefix, so tests never see each other's keys.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from eid_gateway.config import RedisSettings
from eid_gateway.store.base import Store
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.redis_server import RedisServer
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The store reads time only through it; the tests move it."""
    return FakeClock()


StoreMaker = Callable[..., Store]


@pytest.fixture(params=["sqlite", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Store]]:
    """Builds stores of this test's kind on one shared database: two calls = two gateway nodes."""
    made: list[Store] = []
    prefix = f"t{secrets.token_hex(6)}:"
    server: RedisServer | None = request.getfixturevalue("redis_server") if kind == "redis" else None

    def make(clock: Callable[[], float] = time.time) -> Store:
        s: Store
        if kind == "sqlite":
            s = SqliteStore(tmp_path / "store.sqlite3", clock=clock)
        else:
            assert server is not None
            s = create_redis_store(RedisSettings(url=server.url, key_prefix=prefix), clock=clock)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


@pytest.fixture
async def store(make_store: StoreMaker, clock: FakeClock) -> Store:
    return make_store(clock)
