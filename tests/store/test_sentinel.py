"""Redis Sentinel: the store finds the master through Sentinel and follows a failover."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eid_gateway.config import RedisSettings
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.redis_server import RedisServer, free_port


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, int]]:
    """A master, a replica, and one Sentinel watching them (quorum 1, fast failure detection)."""
    master = RedisServer(tmp_path / "master")
    replica = RedisServer(tmp_path / "replica")
    sentinel: subprocess.Popen[bytes] | None = None
    try:
        master.start()
        replica.start()
        replica.command("REPLICAOF", "127.0.0.1", str(master.port))
        sentinel_port = free_port()
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor eidgw 127.0.0.1 {master.port} 1\n"
            "sentinel down-after-milliseconds eidgw 500\nsentinel failover-timeout eidgw 5000\n",
            encoding="utf-8",
        )
        exe = shutil.which("redis-server")
        assert exe is not None
        sentinel = subprocess.Popen(
            [exe, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if b"slaves=1" in RedisServer.command_at(sentinel_port, "INFO", "sentinel"):
                    break
            except OSError:
                pass  # not listening yet
            assert time.monotonic() < deadline, "sentinel did not see the replica"
            time.sleep(0.05)
        yield master, replica, sentinel_port
    finally:
        if sentinel is not None:
            sentinel.send_signal(signal.SIGTERM)
            sentinel.wait(10)
        master.stop()
        replica.stop()


async def test_store_follows_a_sentinel_failover(replicated: tuple[RedisServer, RedisServer, int]) -> None:
    master, replica, sentinel_port = replicated
    store = create_redis_store(
        RedisSettings(
            sentinels=(("127.0.0.1", sentinel_port),),
            sentinel_master="eidgw",
            key_prefix="sent:",
            retries=5,
            timeout_seconds=0.5,
            connect_timeout_seconds=0.3,
        )
    )
    try:
        await store.create_flow("r", "pending", {"n": 1}, ttl=600)
        assert await store.consume_once("ids", "a", 600)
        # wait until the replica has the writes, then lose the master
        deadline = time.monotonic() + 5
        while b"sent:f:r" not in replica.command("KEYS", "sent:*"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        master.stop(signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:
            try:
                flow = await store.get_flow("r")
                break
            except Exception:  # noqa: BLE001 - StoreUnavailable until Sentinel promoted the replica
                assert time.monotonic() < deadline, "no failover"
                await asyncio.sleep(0.2)
        assert flow is not None and flow.data == {"n": 1}
        assert not await store.consume_once("ids", "a", 600)  # the replay cache came along
        assert await store.transition("r", "pending", "card") is not None  # and the new master takes writes
    finally:
        await store.close()
