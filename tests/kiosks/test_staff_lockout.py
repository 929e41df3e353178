"""Staff sign-in backoff in the composed gateway: a guess flood is answered with 429 before scrypt runs,
staff from another address still get in, and two gateway nodes on one store share the locks.

The limits are the documented defaults (docs/kiosks.md): 5 failures per address, 20 per account, in
windows of 15 minutes; the first lock lasts 60 s and each further one twice as long.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.kiosks import auth
from eid_gateway.kiosks.credentials import hash_staff_password
from eid_gateway.store.sqlite import SqliteStore

from .conftest import STAFF_PASSWORD, STAFF_USER
from .test_gateway_wiring import kiosk_config

PER_ADDRESS = 5
PER_ACCOUNT = 20
WINDOW = 900.0
FIRST_LOCK = 60
ATTACKER = "198.51.100.7"
STAFF_DESK = "203.0.113.20"


def aligned_clock() -> Callable[[], float]:
    """Wall time moved to 100 s after the start of a day, so that no 15-minute counting window ends
    while a test runs (the counters use fixed windows of the store's clock)."""
    now = time.time()
    offset = (now // 86400 + 1) * 86400 + 100 - now
    return lambda: time.time() + offset


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class ScryptCalls:
    """Counts the staff password checks (scrypt runs) of every node in this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._lock = threading.Lock()
        real = auth.verify_staff_password

        def counting(password: str, stored: str) -> bool:
            with self._lock:
                self.count += 1
            return real(password, stored)

        monkeypatch.setattr(auth, "verify_staff_password", counting)


@pytest.fixture
def scrypt(monkeypatch: pytest.MonkeyPatch) -> ScryptCalls:
    return ScryptCalls(monkeypatch)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    staff = hash_staff_password(STAFF_PASSWORD, n=2**14)  # the cheapest accepted scrypt keeps this fast
    return load_config(
        kiosk_config(
            tmp_path_factory.mktemp("lockout"),
            f'''
[kiosk_monitor]
staff_user = "{STAFF_USER}"
staff_password_hash = "{staff}"
''',
        )
    )


@pytest.fixture
async def nodes(config: GatewayConfig, tmp_path: Path) -> AsyncIterator[tuple[TestClient, TestClient]]:
    """Two gateway nodes sharing one SQLite store file (behind a proxy on loopback, which is trusted
    by default, so X-Forwarded-For names the client)."""
    clock = aligned_clock()
    clients = [
        TestClient(TestServer(create_app(config, store=SqliteStore(tmp_path / "shared.sqlite3", clock=clock))))
        for _ in range(2)
    ]
    for c in clients:
        await c.start_server()
    try:
        yield clients[0], clients[1]
    finally:
        for c in clients:
            await c.close()


async def dashboard(client: TestClient, address: str, password: str) -> tuple[int, str | None]:
    resp = await client.get("/kiosks/dashboard", headers={**basic(STAFF_USER, password), "X-Forwarded-For": address})
    await resp.read()
    return resp.status, resp.headers.get("Retry-After")


async def test_twenty_wrong_passwords_lock_the_address_before_scrypt(
    nodes: tuple[TestClient, TestClient], scrypt: ScryptCalls
) -> None:
    node, _ = nodes
    answers = [await dashboard(node, ATTACKER, f"guess-{i}") for i in range(20)]
    statuses = [status for status, _ in answers]
    assert statuses == [401] * (PER_ADDRESS - 1) + [429] * (20 - PER_ADDRESS + 1), statuses
    # scrypt ran for the guesses up to the lock, never while locked
    assert scrypt.count == PER_ADDRESS
    retry = [int(r) for status, r in answers if status == 429 and r is not None]
    assert len(retry) == 20 - PER_ADDRESS + 1 and all(1 <= r <= FIRST_LOCK for r in retry), retry
    # even the right password from the locked address waits for the lock to end, without scrypt
    assert (await dashboard(node, ATTACKER, STAFF_PASSWORD))[0] == 429
    assert scrypt.count == PER_ADDRESS
    # staff at another address are within the account's budget (5 failures of 20): they get in
    assert (await dashboard(node, STAFF_DESK, STAFF_PASSWORD))[0] == 200
    assert scrypt.count == PER_ADDRESS + 1


async def test_a_concurrent_flood_does_not_hold_the_scrypt_slots(
    nodes: tuple[TestClient, TestClient], scrypt: ScryptCalls
) -> None:
    """40 guesses at once plus a real staff sign-in: the guesses run scrypt only until the address is
    locked (the two slots may each have admitted one more), and the staff member gets in."""
    node, _ = nodes
    flood = [asyncio.create_task(dashboard(node, ATTACKER, f"guess-{i}")) for i in range(40)]
    await asyncio.sleep(0)  # the guesses queue first
    staff = await dashboard(node, STAFF_DESK, STAFF_PASSWORD)
    statuses = [status for status, _ in await asyncio.gather(*flood)]
    assert staff[0] == 200
    assert statuses.count(401) <= PER_ADDRESS and statuses.count(429) >= 40 - PER_ADDRESS - 1, statuses
    assert scrypt.count <= PER_ADDRESS + 1 + 1, scrypt.count  # + the two slots' overlap, + staff


async def test_locks_are_shared_by_the_nodes_on_one_store(
    nodes: tuple[TestClient, TestClient], scrypt: ScryptCalls
) -> None:
    a, b = nodes
    for i in range(PER_ADDRESS):
        await dashboard(a, ATTACKER, f"guess-{i}")
    # the other node refuses the locked address at once
    status, retry = await dashboard(b, ATTACKER, "guess-on-b")
    assert status == 429 and retry is not None and int(retry) >= 1
    assert scrypt.count == PER_ADDRESS
    # guesses from many addresses, spread over both nodes, lock the account itself: then staff
    # from a fresh address are refused too (the documented price), without scrypt
    for n in range(1, PER_ACCOUNT // PER_ADDRESS):
        for i in range(PER_ADDRESS):
            await dashboard((a, b)[i % 2], f"198.51.100.{10 + n}", f"guess-{n}-{i}")
    assert scrypt.count == PER_ACCOUNT
    for node in (a, b):
        status, retry = await dashboard(node, STAFF_DESK, STAFF_PASSWORD)
        assert status == 429 and retry is not None
    assert scrypt.count == PER_ACCOUNT


async def test_a_success_resets_no_count(nodes: tuple[TestClient, TestClient], scrypt: ScryptCalls) -> None:
    """Someone who knows the password (or shares the address of staff) cannot wipe the guesses."""
    node, _ = nodes
    for i in range(PER_ADDRESS - 1):
        assert (await dashboard(node, ATTACKER, f"guess-{i}"))[0] == 401
    assert (await dashboard(node, ATTACKER, STAFF_PASSWORD))[0] == 200
    assert (await dashboard(node, ATTACKER, "one-more-guess"))[0] == 429


async def test_staff_signed_in_before_a_flood_stay_signed_in(
    nodes: tuple[TestClient, TestClient], scrypt: ScryptCalls
) -> None:
    node, _ = nodes
    assert (await dashboard(node, STAFF_DESK, STAFF_PASSWORD))[0] == 200
    for i in range(PER_ACCOUNT):
        await dashboard(node, f"198.51.100.{100 + i // PER_ADDRESS}", f"guess-{i}")
    count = scrypt.count
    assert (await dashboard(node, "192.0.2.1", "another-guess"))[0] == 429  # the account is locked
    assert scrypt.count == count
    # the sign-in remembered on this node still works (from any address: it is the right password)
    assert (await dashboard(node, STAFF_DESK, STAFF_PASSWORD))[0] == 200


async def test_locks_grow_and_a_success_clears_nothing(tmp_path: Path) -> None:
    from aiohttp.test_utils import make_mocked_request

    from eid_gateway.kiosks.lockout import LockoutPolicy, StaffLockout

    start = aligned_clock()()
    now = [start]
    store = SqliteStore(tmp_path / "store.sqlite3", clock=lambda: now[0])
    address = ["198.51.100.7"]
    lockout = StaffLockout(store, b"k" * 32, lambda request: address[0], clock=lambda: now[0])
    policy = LockoutPolicy()
    request = make_mocked_request("GET", "/kiosks/dashboard")
    try:
        for _ in range(policy.per_address - 1):
            assert await lockout.failed(request, STAFF_USER) is None
        first = await lockout.failed(request, STAFF_USER)
        assert first is not None and first.scope == "address" and first.retry_after == FIRST_LOCK
        now[0] += 30
        locked = await lockout.locked(request, STAFF_USER)
        assert locked is not None and locked.retry_after == FIRST_LOCK - 30
        now[0] += 31  # the lock ran out; the window still holds the failures: one more locks longer
        assert await lockout.locked(request, STAFF_USER) is None
        second = await lockout.failed(request, STAFF_USER)
        assert second is not None and second.retry_after == 2 * FIRST_LOCK
        now[0] += 2 * FIRST_LOCK + 1
        third = await lockout.failed(request, STAFF_USER)
        assert third is not None and third.retry_after == 4 * FIRST_LOCK
        # another address is not locked
        address[0] = "203.0.113.20"
        assert await lockout.locked(request, STAFF_USER) is None
        assert policy.lock_seconds(100) == policy.max_lock_seconds
    finally:
        await store.close()
