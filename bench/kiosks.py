"""Benchmark: 1,000 kiosks heartbeating every 10 s against the gateway, plus the SSE dashboard fan-out.

The gateway (the kiosk sub-app mounted at /kiosks/ with the gateway's security-header hook) runs in
its own process on loopback; this process plays the kiosks and the staff dashboards. Every kiosk
sends its first state, then a heartbeat every period (spread evenly over the period), and now and
then a state change instead. Each request is timed from send to answer; each dashboard stream
event is matched to the update that caused it (per kiosk, in order) and timed from the update's send.

    .venv/bin/python bench/kiosks.py [--kiosks 1000] [--period 10] [--duration 30] [--dashboards 20]
                                     [--store memory|sqlite|redis]

Prints the figures and exits 1 when the p99 update latency is 50 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json  # noqa: E402
from eid_gateway.store.redis_server import RedisServer  # noqa: E402

STAFF_USER, STAFF_PASSWORD = "bench", "bench staff password"


def token(i: int) -> str:
    return f"bench-kiosk-token-{i:05d}-" + "k" * 24


def kiosk_id(i: int) -> str:
    return f"kiosk-{i:05d}"


def serve(
    port: int, n: int, period: float, ready: multiprocessing.synchronize.Event, store_kind: str, where: str
) -> None:
    """The gateway side; ``where``: the SQLite file, or the URL of the redis-server (started by main)."""
    from eid_gateway.config import RedisSettings
    from eid_gateway.kiosks import create_kiosk_app
    from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password
    from eid_gateway.kiosks.settings import KioskEntry, KioskSettings
    from eid_gateway.kiosks.state_store import SharedKioskStateStore
    from eid_gateway.store.base import Store
    from eid_gateway.store.redis import create_redis_store
    from eid_gateway.store.sqlite import SqliteStore
    from eid_gateway.web.middlewares import security_headers

    settings = KioskSettings(
        kiosks=tuple(KioskEntry(kiosk_id(i), f"Kiosk {i}", hash_kiosk_credential(token(i))) for i in range(n)),
        staff_user=STAFF_USER,
        staff_password_hash=hash_staff_password(STAFF_PASSWORD, n=2**14),
        heartbeat_seconds=period,
    )
    store: Store | None = None
    if store_kind == "sqlite":
        store = SqliteStore(where)
    elif store_kind == "redis":
        store = create_redis_store(RedisSettings(url=where))
    app = web.Application()
    kiosks = (
        create_kiosk_app(settings)
        if store is None
        else create_kiosk_app(settings, state_store=SharedKioskStateStore(store), store=store)
    )
    app.add_subapp("/kiosks/", kiosks)
    app.on_response_prepare.append(security_headers([], hsts=False))

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def snapshot(state: ReaderState) -> dict[str, object]:
    return snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("REINER SCT cyberJack RFID komfort", state),)))


class Bench:
    def __init__(self, base: str, n: int, period: float, duration: float, dashboards: int, change_rate: float):
        self.base, self.n, self.period, self.duration = base, n, period, duration
        self.dashboards, self.change_rate = dashboards, change_rate
        self.latencies: list[float] = []
        self.when: list[float] = []
        self.errors = 0
        self.sent: dict[str, deque[float]] = defaultdict(deque)  # per kiosk: send times awaiting events
        self.sent_by_dash: list[dict[str, deque[float]]] = []
        self.fanout: list[float] = []
        self.events = 0

    async def kiosk(self, session: aiohttp.ClientSession, i: int, start: float) -> None:
        kid = kiosk_id(i)
        headers = {"Authorization": f"Bearer {token(i)}"}
        seq = 0
        state = ReaderState.EMPTY
        t = start + (i / self.n) * self.period  # spread over the period
        end = start + self.duration
        first = True
        while t < end:
            await asyncio.sleep(max(0.0, t - time.monotonic()))
            seq += 1
            if first or random.random() < self.change_rate:
                state = ReaderState.ID_CARD if state is ReaderState.EMPTY and not first else ReaderState.EMPTY
                url, body = (
                    f"{self.base}api/v1/kiosks/{kid}/state",
                    {"instance": "bench-instance", "seq": seq, "status": snapshot(state)},
                )
                first = False
            else:
                url, body = f"{self.base}api/v1/kiosks/{kid}/heartbeat", {"instance": "bench-instance", "seq": seq}
            sent = time.monotonic()
            for q in self.sent_by_dash:
                q[kid].append(sent)
            try:
                async with session.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        self.errors += 1
            except aiohttp.ClientError:
                self.errors += 1
            self.latencies.append(time.monotonic() - sent)
            self.when.append(sent)
            t += self.period

    async def dashboard(self, k: int, connected: asyncio.Event, stop: asyncio.Event) -> None:
        auth = base64.b64encode(f"{STAFF_USER}:{STAFF_PASSWORD}".encode()).decode()
        pending = self.sent_by_dash[k]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as s:
            async with s.get(f"{self.base}dashboard/events", headers={"Authorization": f"Basic {auth}"}) as resp:
                assert resp.status == 200, resp.status
                name = None
                while raw := await resp.content.readline(max_line_length=64 * 1024 * 1024):  # the snapshot
                    if stop.is_set():
                        return
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        name = line[7:]
                        continue
                    if not line.startswith("data: "):
                        continue
                    if name == "snapshot":
                        connected.set()
                        continue
                    data = json.loads(line[6:])
                    kid = data["id"]  # kiosk events carry the id beside the rendered row
                    now = time.monotonic()
                    if pending[kid]:
                        self.fanout.append(now - pending[kid].popleft())
                        self.events += 1

    async def run(self) -> None:
        self.sent_by_dash = [defaultdict(deque) for _ in range(self.dashboards)]
        stop = asyncio.Event()
        conns = [asyncio.Event() for _ in range(self.dashboards)]
        dash_tasks = [asyncio.create_task(self.dashboard(k, conns[k], stop)) for k in range(self.dashboards)]
        await asyncio.wait_for(asyncio.gather(*(c.wait() for c in conns)), 30)
        connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per busy kiosk, like real ones
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.monotonic() + 0.5
            await asyncio.gather(*(self.kiosk(session, i, start) for i in range(self.n)))
        await asyncio.sleep(1.0)  # let the last events arrive
        stop.set()
        for t in dash_tasks:
            t.cancel()
        await asyncio.gather(*dash_tasks, return_exceptions=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiosks", type=int, default=1000)
    ap.add_argument("--period", type=float, default=10.0, help="heartbeat period, seconds")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--dashboards", type=int, default=20, help="open SSE dashboard streams")
    ap.add_argument("--change-rate", type=float, default=0.05, help="share of updates that are state changes")
    ap.add_argument(
        "--store",
        choices=["memory", "sqlite", "redis"],
        default="memory",
        help="where kiosk states live: in the process, the gateway's SQLite file, or a redis-server of its own",
    )
    args = ap.parse_args(argv)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = multiprocessing.Event()
    directory = Path(tempfile.mkdtemp(prefix="bench-kiosks-"))
    redis = RedisServer(directory / "redis") if args.store == "redis" else None
    if redis is not None:
        redis.start()
    where = redis.url if redis is not None else str(directory / "gateway.sqlite3")
    server = multiprocessing.Process(
        target=serve, args=(port, args.kiosks, args.period, ready, args.store, where), daemon=True
    )
    server.start()
    try:
        if not ready.wait(60):
            print("gateway did not start", file=sys.stderr)
            return 2
        bench = Bench(
            f"http://127.0.0.1:{port}/kiosks/",
            args.kiosks,
            args.period,
            args.duration,
            args.dashboards,
            args.change_rate,
        )
        cpu0, t0 = cpu_seconds(server.pid or 0), time.monotonic()
        asyncio.run(bench.run())
        cpu1, t1 = cpu_seconds(server.pid or 0), time.monotonic()
    finally:
        server.terminate()
        server.join(5)
        if redis is not None:
            redis.stop()
        shutil.rmtree(directory, ignore_errors=True)

    lat = [x * 1000 for x in bench.latencies]
    fan = [x * 1000 for x in bench.fanout]
    expected_events = len(lat) * args.dashboards
    print(
        f"kiosks {args.kiosks}, heartbeat every {args.period:g} s, {args.duration:g} s of load, "
        f"{args.dashboards} dashboard streams, {args.change_rate:.0%} state changes, store {args.store}"
    )
    print(f"updates: {len(lat)} ({len(lat) / args.duration:.0f}/s), errors {bench.errors}")
    print(
        f"update latency ms: p50 {pct(lat, 50):.2f}  p90 {pct(lat, 90):.2f}  p99 {pct(lat, 99):.2f}  "
        f"max {max(lat):.2f}  mean {statistics.fmean(lat):.2f}"
    )
    print(
        f"dashboard fan-out: {bench.events} events received of {expected_events} expected; latency ms "
        f"p50 {pct(fan, 50):.2f}  p99 {pct(fan, 99):.2f}  max {max(fan) if fan else float('nan'):.2f}"
    )
    print(
        f"gateway process CPU: {cpu1 - cpu0:.2f} s over {t1 - t0:.1f} s ({(cpu1 - cpu0) / (t1 - t0):.0%} of one core)"
    )
    if os.environ.get("BENCH_DEBUG"):
        t0w = min(bench.when)
        for sec in range(int(args.duration) + 1):
            bucket = [x for x, w in zip(lat, bench.when, strict=True) if sec <= w - t0w < sec + 1]
            if bucket:
                print(f"  second {sec:3d}: n {len(bucket)} p99 {pct(bucket, 99):.1f} max {max(bucket):.1f}")
        print(f"bench client CPU: {time.process_time():.2f} s")
    ok = pct(lat, 99) < 50 and bench.errors == 0 and bench.events == expected_events
    print("PASS: p99 < 50 ms, no errors, every update reached every dashboard" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
