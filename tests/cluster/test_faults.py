"""Fault behaviour: a node killed mid-flow, Redis restarted mid-flow, Redis down and back."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest

from eid_gateway.eid.tctoken import TcToken
from eid_gateway.store.redis_server import RedisServer

from .conftest import STATUS_SUCCESS, UNLIMITED, Citizen, Cluster, NewCitizen, close_cluster, make_cluster

N = 50


async def finish(citizen: Citizen, cluster: Cluster, node_name: str, *, fetched: bool, carded: str | None) -> str:
    """Continue a citizen's sign-in from where it stopped, on ``node_name``; the SAML status."""
    node = cluster.nodes[node_name]
    if not fetched:
        assert isinstance(await citizen.fetch_tc_token(node), TcToken)
    next_url = carded or await citizen.card_step()
    status, page = await citizen.refresh(node, next_url)
    assert status == 200, page[:300]
    return citizen.saml_status(page)


async def test_node_killed_in_the_middle_of_50_signins_all_finish_on_the_other(
    cluster: Cluster, new_citizen: NewCitizen
) -> None:
    a = cluster.nodes["a"]
    citizens = [new_citizen() for _ in range(N)]
    # 50 concurrent sign-ins, all begun on node A and left at different steps: a third only begun, a
    # third with the TC Token fetched from A (card step running), a third back from the card step.
    await asyncio.gather(*(c.begin(a) for c in citizens))
    await asyncio.gather(*(c.start_page(a) for c in citizens))
    fetched = citizens[N // 3 :]
    tokens = await asyncio.gather(*(c.fetch_tc_token(a) for c in fetched))
    assert all(isinstance(t, TcToken) for t in tokens)
    carded = citizens[2 * N // 3 :]
    next_urls = dict(zip((id(c) for c in carded), await asyncio.gather(*(c.card_step() for c in carded)), strict=True))

    cluster.kill("a", signal.SIGKILL)  # no goodbye: whatever A held in memory is gone
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(a.url("/healthz"))
        results = await asyncio.gather(
            *(finish(c, cluster, "b", fetched=c in fetched, carded=next_urls.get(id(c))) for c in citizens)
        )
        assert results == [STATUS_SUCCESS] * N
    finally:
        cluster.wait(cluster.start("a", a.port))  # back for the other tests of the session


# --- Redis faults: a cluster on its own redis-server (restarting it must not disturb other tests) ---------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path_factory.mktemp("own-redis"))
    redis.start()
    try:
        c = make_cluster(tmp_path_factory.mktemp("own-cluster"), redis, extra=UNLIMITED)
        yield c
        close_cluster(c)
    finally:
        redis.stop()


@pytest.mark.parametrize("how", ["graceful", "sigkill"])
async def test_redis_restart_with_aof_loses_no_pending_flow(own: Cluster, new_citizen: NewCitizen, how: str) -> None:
    a, b = own.nodes["a"], own.nodes["b"]
    citizens = [new_citizen(on=own) for _ in range(20)]
    await asyncio.gather(*(c.begin(a) for c in citizens))
    fetched = citizens[10:]
    assert all(isinstance(t, TcToken) for t in await asyncio.gather(*(c.fetch_tc_token(b) for c in fetched)))
    if how == "graceful":
        own.redis.restart(signal.SIGTERM)  # systemctl restart: Redis writes its AOF and exits
    else:
        own.redis.command("CONFIG", "SET", "appendfsync", "always")  # every write on disk before the reply
        own.redis.restart(signal.SIGKILL)
    results = await asyncio.gather(
        *(finish(c, own, "a" if i % 2 else "b", fetched=c in fetched, carded=None) for i, c in enumerate(citizens))
    )
    assert results == [STATUS_SUCCESS] * 20


async def test_redis_down_gives_503_and_a_clear_page_then_recovers(own: Cluster, new_citizen: NewCitizen) -> None:
    a = own.nodes["a"]
    pending = new_citizen(on=own)
    await pending.begin(a)
    own.redis.stop()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(a.url("/readyz")) as r:
                assert r.status == 503
                ready = await r.json()
            assert ready["status"] == "unavailable" and ready["store"].startswith("error")
            assert ready["eid_server"] == "ok" and ready["keys"] == "ok"
            async with http.get(a.url("/healthz")) as r:
                assert r.status == 200  # the process is alive; only readiness fails
        citizen = new_citizen(on=own)
        t0 = time.monotonic()
        resp = await citizen.get(a.url(citizen.sso_url()), headers={"Accept-Language": "de"})
        page = await resp.text()
        assert resp.status == 503 and time.monotonic() - t0 < 5
        assert resp.headers["Retry-After"] == "30"
        assert "Vorübergehend nicht verfügbar" in page and "Es wurden keine Daten übermittelt" in page
        assert "Traceback" not in page
        # the pending flow's pages answer the same way (nothing half-written: its state is unchanged)
        resp = await pending.get(a.url(f"/signin/{pending.ref}"))
        assert resp.status == 503
    finally:
        own.redis.start()
    # recovers by itself: no restart of the gateway
    deadline = time.monotonic() + 10
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(a.url("/readyz")) as r:
                if r.status == 200:
                    break
            assert time.monotonic() < deadline, "readiness did not recover"
            await asyncio.sleep(0.1)
    assert await finish(pending, own, "a", fetched=False, carded=None) == STATUS_SUCCESS
    fresh = new_citizen(on=own)
    await fresh.begin(own.nodes["b"])
    assert await finish(fresh, own, "a", fetched=False, carded=None) == STATUS_SUCCESS
