"""Full citizen sign-ins against the embedded default (gateway + eID-Server simulator + demo service).

The gateway runs in its own processes (``eid-gateway serve --workers N`` on a config written by
``eid-gateway init``); this process plays the citizens: browser (cookie jar) and AusweisApp (the
simulator's card step). One login = demo start → signed AuthnRequest → start page → TC Token (useID) →
card step → refresh (getResult) → signed + encrypted SAML Response → demo ACS verifies it → result page.

Two load models, both printed:

* capacity (closed loop): ``--concurrency`` citizens, each starting the next sign-in the moment the last
  one ends, no pause. This finds the most logins/s the server can do; latency here is only queueing
  (Little's law: latency = concurrency / throughput).
* latency at a given load (open loop): citizens arrive at ``--rate`` per second, evenly spaced, whether
  or not earlier ones are done, at most ``--concurrency`` in flight (an arrival beyond that waits, and
  its wait counts). Latency is measured from the planned arrival time, so a stalled server cannot hide
  its backlog (no coordinated omission).

Printed: logins/s, p50/p99 latency, server CPU ms per login (all server processes), server RSS, this
process's own CPU per login (the load generator shares the machine's cores); and, as the peer in the same
run, the same number of HTTP round trips (9 per login) against a trivial handler of the same server
(``/healthz``): the floor that aiohttp and loopback HTTP alone impose. Then the memory held per pending flow
at ``--pending`` started-but-unfinished sign-ins.

    .venv/bin/python bench/login_flow.py [--workers 2] [--logins 1000] [--concurrency 50] [--rate 100]
                                         [--pending 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Final
from urllib.parse import quote

import aiohttp
from yarl import URL

from eid_gateway.ports import free_port
from eid_gateway.simulator import run_simulated_client

HOPS_PER_LOGIN = 9
START_SECONDS = 180.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def server_pids(pid: int) -> list[int]:
    """The server process and its worker processes (with ``--workers`` > 1 the parent, gunicorn's arbiter,
    serves nothing)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [pid]
    if children.exists():
        found.extend(int(c) for c in children.read_text().split())
    return found


def server_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in server_pids(pid))


def server_rss(pid: int) -> int:
    return sum(rss_bytes(p) for p in server_pids(pid))


@dataclass
class Gateway:
    origin: str
    process: subprocess.Popen[bytes]


async def start_gateway(directory: Path, workers: int) -> Gateway:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).with_name("eid-gateway")
    subprocess.run(
        [str(exe), "init", "--dir", str(directory), "--origin", origin, "--port", str(port)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    # every simulated citizen comes from 127.0.0.1: the per-address abuse limits would refuse them
    with (directory / "gateway.toml").open("a", encoding="utf-8") as config:
        config.write("\n[limits]\nenabled = false\n")
    command = [str(exe), "serve", "--config", str(directory / "gateway.toml")]
    if workers != 1:
        command += ["--workers", str(workers)]
    if os.environ.get("BENCH_PROFILE"):  # cProfile the server: BENCH_PROFILE=/tmp/gw.prof
        command = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_SECONDS  # a loaded machine takes its time to import and load keys
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(origin + "/healthz") as r:
                    if r.status == 200 and len(server_pids(process.pid)) >= (workers if workers > 1 else 1):
                        return Gateway(origin, process)
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("gateway did not start")


_B64_TEXT: Final = re.compile(r"[A-Za-z0-9+/=\r\n]*")


def _form_value(value: str) -> str:
    """application/x-www-form-urlencoded value. A browser does this in native code; urllib's quote()
    walks a 15 KB SAMLResponse character by character in Python and would make the load generator,
    which shares the cores with the server, the bottleneck. Base64 needs only these five escapes."""
    if _B64_TEXT.fullmatch(value):
        return (
            value.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D").replace("\n", "%0A").replace("\r", "%0D")
        )
    return quote(value, safe="")


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    if not m:
        raise RuntimeError(f"no {name} in page")
    return unescape(m.group(1))


async def start_flow(http: aiohttp.ClientSession, origin: str) -> str:
    """Browser: demo start → AuthnRequest → the gateway's start page; returns the flow reference."""
    async with http.get(origin + "/demo/login", allow_redirects=False) as r:
        sso = r.headers["Location"]
    async with http.get(URL(sso, encoded=True), allow_redirects=False) as r:  # signed query as sent
        start = r.headers["Location"]
    async with http.get(URL(origin).join(URL(start))) as r:
        await r.read()
    return start.rsplit("/", 1)[1]


async def one_login(origin: str, ausweisapp: aiohttp.ClientSession) -> float:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:  # IP host
        ref = await start_flow(browser, origin)
        refresh = await run_simulated_client(ausweisapp, f"{origin}/eid/tctoken/{ref}")
        async with browser.get(URL(refresh, encoded=True)) as r:
            form = await r.text()
        body = "SAMLResponse=" + _form_value(_field(form, "SAMLResponse"))
        if 'name="RelayState"' in form:
            body += "&RelayState=" + _form_value(_field(form, "RelayState"))
        async with browser.post(
            origin + "/demo/acs",
            data=body.encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            page = await r.text()
            if r.status != 200 or "MUSTERMANN" not in page:
                raise RuntimeError(f"login did not verify at the demo service: HTTP {r.status}")
    return time.perf_counter() - t0


async def run_logins(origin: str, total: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(total))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ausweisapp:

        async def worker() -> None:
            for _ in queue:
                latencies.append(await one_login(origin, ausweisapp))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def run_open_loop(origin: str, total: int, rate: float, cap: int) -> tuple[list[float], float, int]:
    """``total`` sign-ins arriving at ``rate``/s, at most ``cap`` in flight; (latencies from the planned
    arrival, wall time, most in flight at once)."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(cap)
    in_flight = peak = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ausweisapp:

        async def citizen(arrival: float) -> None:
            nonlocal in_flight, peak
            async with gate:
                in_flight += 1
                peak = max(peak, in_flight)
                try:
                    await one_login(origin, ausweisapp)
                finally:
                    in_flight -= 1
            latencies.append(time.perf_counter() - arrival)

        t0 = time.perf_counter()
        tasks = []
        for i in range(total):
            arrival = t0 + i / rate
            delay = arrival - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(citizen(arrival)))
        await asyncio.gather(*tasks)
        return latencies, time.perf_counter() - t0, peak


async def run_floor(origin: str, total: int, concurrency: int) -> float:
    queue = iter(range(total))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def worker() -> None:
            for _ in queue:
                async with http.get(origin + "/healthz") as r:
                    await r.read()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def run_pending(origin: str, count: int, concurrency: int) -> None:
    queue = iter(range(count))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
    ) as http:

        async def worker() -> None:
            for _ in queue:
                await start_flow(http, origin)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gateway worker processes (default: one per core)"
    )
    parser.add_argument("--logins", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="open-loop arrivals per second; repeat for several runs (default: 100 and 120)",
    )
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--pending", type=int, default=10_000)
    args = parser.parse_args()
    if args.rate is None:
        args.rate = [100.0, 120.0]
    args.rate = [r for r in args.rate if r > 0]

    with tempfile.TemporaryDirectory() as tmp:
        gw = await start_gateway(Path(tmp), args.workers)
        try:
            pid = gw.process.pid
            await run_logins(gw.origin, args.warmup, min(args.concurrency, args.warmup))
            print(
                f"full logins against the embedded default ({os.cpu_count()} cores; gateway: "
                f"{args.workers} worker process(es); load generator: this process, same cores)"
            )

            cpu0, own0, t0 = server_cpu(pid), time.process_time(), time.perf_counter()
            latencies = await run_logins(gw.origin, args.logins, args.concurrency)
            wall, cpu = time.perf_counter() - t0, server_cpu(pid) - cpu0
            own = time.process_time() - own0
            print(f"capacity, closed loop: {args.logins} logins, {args.concurrency} citizens without pause")
            print(f"  logins/s            {args.logins / wall:8.1f}   (target >= 100)")
            print(
                f"  latency p50         {statistics.median(latencies) * 1000:8.1f} ms   "
                f"(= queueing: {args.concurrency} / throughput)"
            )
            print(f"  latency p99         {pct(latencies, 0.99) * 1000:8.1f} ms")
            print(f"  server CPU / login  {cpu / args.logins * 1000:8.2f} ms   (all server processes)")
            print(f"  server RSS          {server_rss(pid) / 2**20:8.1f} MiB   (all server processes)")
            print(f"  load generator CPU  {own / args.logins * 1000:8.2f} ms / login")

            for rate in args.rate:
                cpu0, own0 = server_cpu(pid), time.process_time()
                open_lat, open_wall, peak = await run_open_loop(gw.origin, args.logins, rate, args.concurrency)
                cpu, own = server_cpu(pid) - cpu0, time.process_time() - own0
                print(f"open loop: {args.logins} logins arriving at {rate:g}/s, at most {args.concurrency} in flight")
                print(
                    f"  served logins/s     {args.logins / open_wall:8.1f}   (all {len(open_lat)} completed; "
                    f"last arrival at {(args.logins - 1) / rate:.2f} s, last answer at {open_wall:.2f} s)"
                )
                print(f"  latency p50         {statistics.median(open_lat) * 1000:8.1f} ms")
                print(f"  latency p99         {pct(open_lat, 0.99) * 1000:8.1f} ms   (target < 250 at >= 100/s)")
                print(f"  most in flight      {peak:8d}")
                print(f"  server CPU / login  {cpu / args.logins * 1000:8.2f} ms")
                print(f"  load generator CPU  {own / args.logins * 1000:8.2f} ms / login")

            floor_wall = await run_floor(gw.origin, args.logins * HOPS_PER_LOGIN, args.concurrency)
            print(
                f"peer, same run: {args.logins * HOPS_PER_LOGIN} trivial requests (/healthz), "
                f"{HOPS_PER_LOGIN} per login, {args.concurrency} concurrent"
            )
            print(
                f"  equivalent logins/s {args.logins / floor_wall:8.1f}   "
                f"(a full login costs {wall / floor_wall:.1f}x its bare HTTP round trips)"
            )

            if args.pending:
                rss0 = server_rss(pid)
                await run_pending(gw.origin, args.pending, args.concurrency)
                growth = server_rss(pid) - rss0
                print(f"pending flows: {args.pending} started, not finished")
                print(
                    f"  RSS growth          {growth / 2**20:8.2f} MiB = {growth / args.pending / 1024:.2f} KiB "
                    f"per pending flow   (target < 5 KB)"
                )
        finally:
            gw.process.send_signal(2 if os.environ.get("BENCH_PROFILE") else 15)
            gw.process.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
