"""Personal data at rest (issue 13, item 2): after sign-ins over SAML and OIDC have been handed over,
the gateway's store on disk holds none of the citizen's data, read as bytes (SQLite file, WAL and shared
memory; Redis DUMP of every key and its append-only file), and every file of the store is 0600.

No sweep and no waiting: what is checked is the disk right after the hand-over."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from eid_gateway.config import GatewayConfig, RedisSettings
from eid_gateway.store.base import Store
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.redis_server import RedisServer
from helpers.gateway import (
    Browser,
    Gateway,
    Servers,
    StartGateway,
    ausweisapp,
    open_oidc_start_page,
    sign_in,
    tc_token_url_of,
)

#: ERIKA MUSTERMANN of the simulator, as any layer might write her: names, birth date (both forms),
#: place of birth, birth name, address.
PERSONAL = [
    b"MUSTERMANN",
    b"ERIKA",
    b"Mustermann",
    b"1964-08-12",
    b"19640812",
    b"BERLIN",
    b"GABLER",
    b"HEIDESTRASSE",
    "KÖLN".encode(),
    b"K\\u00d6LN",
    b"51147",
]


def personal_data_in(blob: bytes) -> list[str]:
    return [p.decode("utf-8", "replace") for p in PERSONAL if p in blob]


async def saml_sign_in(browser: Browser, servers: Servers, gw: Gateway) -> None:
    result = await sign_in(browser, servers, gw, identity="erika")
    assert "MUSTERMANN" in result.text  # handed over to the service


async def oidc_sign_in(browser: Browser, servers: Servers, gw: Gateway) -> None:
    start = await open_oidc_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    result = await browser.get(step.next_url)  # -> the demo's callback: token request, then userinfo
    assert result.status == 200 and "MUSTERMANN" in result.text, result.text


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of its own with the append-only file on, as production runs it (not the run's shared
    ``redis_server``: the test reads every key and the whole AOF, other tests' writes included)."""
    server = RedisServer(tmp_path / "redis", appendfsync="always")
    server.start()
    yield server
    server.stop()


async def test_sqlite_store_on_disk_holds_no_personal_data(
    start_gateway: StartGateway, browser: Browser, servers: Servers
) -> None:
    gw = await start_gateway()
    for _ in range(2):
        await saml_sign_in(browser, servers, gw)
        await oidc_sign_in(browser, servers, gw)
    path = gw.config.store.path
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")]
    assert files[0].stat().st_size > 0 and files[1].stat().st_size > 0  # the WAL is there, not yet merged
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert personal_data_in(file.read_bytes()) == [], file


async def test_redis_store_holds_no_personal_data_in_keys_or_aof(
    start_gateway: StartGateway, browser: Browser, servers: Servers, own_redis: RedisServer
) -> None:
    def redis_store(config: GatewayConfig) -> Store:
        return create_redis_store(RedisSettings(url=own_redis.url, key_prefix="eidgw:"))

    gw = await start_gateway(store=redis_store)
    for _ in range(2):
        await saml_sign_in(browser, servers, gw)
        await oidc_sign_in(browser, servers, gw)
    client = redis.Redis.from_url(own_redis.url)
    try:
        keys = list(client.scan_iter("*"))
        assert any(k.startswith(b"eidgw:") for k in keys)
        for key in keys:
            dumped = client.dump(key)
            assert dumped is not None and personal_data_in(dumped) == [], key
    finally:
        client.close()
    aof = [f for f in own_redis.directory.rglob("*") if f.is_file() and ".aof" in f.name]
    assert aof and sum(f.stat().st_size for f in aof) > 0
    for file in aof:  # the history of every write, deleted keys included
        assert personal_data_in(file.read_bytes()) == [], file
