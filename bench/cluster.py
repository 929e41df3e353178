"""Sign-ins per second on one node with SQLite, one node with Redis and two nodes with Redis.

Everything is a real process: redis-server (AOF on, appendfsync everysec), the eID-Server simulator
(`eid-gateway simulator`), the gateway node(s) (`eid-gateway serve`); this process is the load
generator playing the city service (pre-signed AuthnRequests), the browsers (each with its own client
address in X-Forwarded-For, so the abuse limits are counted as in production) and AusweisApp. With two
nodes every request goes to a node picked at random, as a reverse proxy without sticky sessions would.

One sign-in: AuthnRequest -> start page -> TC Token (useID) -> card step at the simulator -> refresh
(getResult) -> signed, encrypted SAML Response (its status is checked). Limits, metrics and the audit
trail are on, as in production.

Printed per setup: logins/s, p50/p99, gateway CPU per login; for Redis: requests to Redis per sign-in
(the nodes' own counter), commands Redis executed per sign-in (INFO commandstats, commands inside Lua
scripts included), Redis CPU per sign-in; and the ceiling for a cluster on one Redis: Redis's measured
throughput (redis-benchmark, SET/GET, 50 clients) / requests per sign-in, and 1 core / Redis CPU per
sign-in.

    .venv/bin/python bench/cluster.py [--logins 600] [--concurrency 40]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from eid_gateway.config import load_config
from eid_gateway.eid.results import MAJOR_OK, REFRESH_ERROR, REFRESH_OK
from eid_gateway.eid.tctoken import TcToken, parse_tc_token, refresh_url
from eid_gateway.instance import write_example_config
from eid_gateway.ports import free_port
from eid_gateway.store.redis_server import RedisServer
from saml import AuthnRequest, build_authn_request, redirect_url

EXE = str(Path(sys.executable).with_name("eid-gateway"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SUCCESS = b"urn:oasis:names:tc:SAML:2.0:status:Success"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EXE, "--log-level", "WARNING", *args],
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def wait_up(origin: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            if process.poll() is not None:
                raise RuntimeError(f"{origin} exited with {process.returncode}")
            try:
                async with http.get(origin + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{origin} did not start")


def configs(directory: Path, redis_url: str, sim_port: int) -> tuple[str, Path, Path, Path]:
    public_origin = f"http://127.0.0.1:{free_port()}"
    write_example_config(directory, public_origin, 8080)
    example = (directory / "gateway.toml").read_text(encoding="utf-8")
    sim = directory / "simulator.toml"
    sim.write_text(example.replace(public_origin, f"http://127.0.0.1:{sim_port}"), encoding="utf-8")
    base, n = re.subn(
        r'(?m)^kind = "simulator"$',
        f'kind = "tr03130"\nurl = "http://127.0.0.1:{sim_port}/eid-sim/eID"\nserver_cert = "certs/simulator.crt"',
        example,
    )
    assert n == 1
    sqlite = directory / "sqlite.toml"
    sqlite.write_text(base, encoding="utf-8")
    redis_text, n = re.subn(r'(?m)^kind = "sqlite"\npath = "[^"]*"$', f'kind = "redis"\nurl = "{redis_url}"', base)
    assert n == 1
    redis = directory / "redis.toml"
    redis.write_text(redis_text, encoding="utf-8")
    return public_origin, sim, sqlite, redis


@dataclass
class Setup:
    name: str
    config: Path
    nodes: int
    redis: bool


def authn_requests(config_path: Path, count: int) -> list[str]:
    """Signed HTTP-Redirect AuthnRequests of the demo service, made before the clock starts."""
    config = load_config(config_path)
    assert config.demo.request_signing_key is not None
    sso = config.public_origin + "/saml/sso"
    out = []
    for _ in range(count):
        request = AuthnRequest(
            issuer=config.demo.entity_id, destination=sso, acs_url=config.public_origin + "/demo/acs"
        )
        url = redirect_url(sso, build_authn_request(request), relay_state="rs", key=config.demo.request_signing_key)
        out.append(url.split("?", 1)[1])
    return out


async def one_login(origins: list[str], query: str, app: aiohttp.ClientSession) -> float:
    def pick() -> str:
        return random.choice(origins)

    address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    headers = {"X-Forwarded-For": address}
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers) as browser:
        async with browser.get(URL(f"{pick()}/saml/sso?{query}", encoded=True), allow_redirects=False) as r:
            if r.status != 303:
                raise RuntimeError(f"sso answered {r.status}")
            start = r.headers["Location"]
        async with browser.get(pick() + start) as r:
            await r.read()
        ref = start.rsplit("/", 1)[1]
        async with app.get(f"{pick()}/eid/tctoken/{ref}", headers=headers) as r:
            token = parse_tc_token(await r.read())
        if not isinstance(token, TcToken):
            raise RuntimeError("error TC Token")
        form = {
            "SessionIdentifier": token.session_identifier,
            "identity": "erika",
            "pin": "123456",
            "action": "confirm",
        }
        async with app.post(token.server_address, data=form) as r:
            answer = await r.json()
        ok = answer.get("result_major") == MAJOR_OK
        target = refresh_url(token.refresh_address, REFRESH_OK if ok else REFRESH_ERROR)
        path = target.split("/", 3)[3]
        async with browser.get(URL(f"{pick()}/{path}", encoded=True), allow_redirects=False) as r:
            page = await r.text()
        m = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
        if r.status != 200 or not m or SUCCESS not in base64.b64decode(m.group(1)):
            raise RuntimeError(f"no successful SAML Response (HTTP {r.status})")
    return time.perf_counter() - t0


async def run_logins(origins: list[str], queries: list[str], concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    work = iter(queries)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as app:

        async def worker() -> None:
            nonlocal errors
            for query in work:
                try:
                    latencies.append(await one_login(origins, query, app))
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    errors += 1
                    if errors <= 3:
                        print(f"    error: {exc}", file=sys.stderr)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def redis_counts(redis: RedisServer) -> tuple[int, float]:
    """(commands executed, incl. inside scripts; CPU seconds) so far."""
    stats = redis.info("commandstats")
    calls = 0
    for name, value in stats.items():
        if name.startswith("cmdstat_") and name not in ("cmdstat_info", "cmdstat_config"):
            calls += int(re.search(r"calls=(\d+)", value).group(1))  # type: ignore[union-attr]
    cpu = redis.info("cpu")
    return calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def store_round_trips(origins: list[str]) -> float:
    total = 0.0
    async with aiohttp.ClientSession() as http:
        for origin in origins:
            async with http.get(origin + "/metrics") as r:
                m = re.search(r"^eidgw_store_round_trips_total (\S+)$", await r.text(), re.M)
                total += float(m.group(1)) if m else 0.0
    return total


def redis_benchmark(port: int) -> float:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return float("nan")
    out = subprocess.run(
        [exe, "-p", str(port), "-n", "200000", "-c", "50", "-q", "-t", "set,get"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rates = [float(x) for x in re.findall(r"([\d.]+) requests per second", out)]
    return min(rates) if rates else float("nan")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=40)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory / "redis")
        redis.start()
        sim_port = free_port()
        _, sim_config, sqlite_config, redis_config = configs(directory / "inst", redis.url, sim_port)
        sim = spawn(
            ["simulator", "--config", str(sim_config), "--host", "127.0.0.1", "--port", str(sim_port)],
            directory / "sim.log",
        )
        results: dict[str, tuple[float, float, float, float, int]] = {}
        redis_rows: dict[str, tuple[float, float, float]] = {}
        try:
            await wait_up(f"http://127.0.0.1:{sim_port}", sim)
            print(
                f"{args.logins} sign-ins per setup at concurrency {args.concurrency}; {os.cpu_count()} cores "
                "shared by redis-server, the simulator, the node(s) and this load generator"
            )
            setups = [
                Setup("1 node, SQLite", sqlite_config, 1, False),
                Setup("1 node, Redis", redis_config, 1, True),
                Setup("2 nodes, Redis", redis_config, 2, True),
            ]
            for setup in setups:
                queries = authn_requests(setup.config, args.logins + args.warmup)
                ports = [free_port() for _ in range(setup.nodes)]
                nodes = [
                    spawn(
                        ["serve", "--config", str(setup.config), "--host", "127.0.0.1", "--port", str(p)],
                        directory / f"node-{p}.log",
                    )
                    for p in ports
                ]
                origins = [f"http://127.0.0.1:{p}" for p in ports]
                try:
                    for origin, node in zip(origins, nodes, strict=True):
                        await wait_up(origin, node)
                    await run_logins(origins, queries[: args.warmup], min(args.concurrency, args.warmup))
                    rt0, (calls0, rcpu0) = await store_round_trips(origins), redis_counts(redis)
                    cpu0 = sum(cpu_seconds(n.pid) for n in nodes)
                    t0 = time.perf_counter()
                    latencies, errors = await run_logins(origins, queries[args.warmup :], args.concurrency)
                    wall = time.perf_counter() - t0
                    cpu = sum(cpu_seconds(n.pid) for n in nodes) - cpu0
                    rt1, (calls1, rcpu1) = await store_round_trips(origins), redis_counts(redis)
                    done = len(latencies)
                    results[setup.name] = (
                        done / wall,
                        statistics.median(latencies),
                        pct(latencies, 0.99),
                        cpu / max(done, 1),
                        errors,
                    )
                    if setup.redis:
                        redis_rows[setup.name] = (
                            (rt1 - rt0) / max(done, 1),
                            (calls1 - calls0) / max(done, 1),
                            (rcpu1 - rcpu0) / max(done, 1),
                        )
                    rate, p50, p99, cpu_per, errs = results[setup.name]
                    print(
                        f"  {setup.name:16s} {rate:7.1f} logins/s   p50 {p50 * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms"
                        f"   gateway CPU {cpu_per * 1000:5.1f} ms/login   errors {errs}"
                    )
                finally:
                    for n in nodes:
                        n.terminate()
                    for n in nodes:
                        n.wait(30)
            throughput = redis_benchmark(redis.port)
        finally:
            sim.terminate()
            sim.wait(30)
            redis.stop()

    print("Redis per sign-in (measured window, warm-up excluded):")
    for name, (trips, calls, rcpu) in redis_rows.items():
        print(
            f"  {name:16s} {trips:5.2f} requests (target <= 10)   {calls:5.1f} commands executed "
            f"(incl. inside scripts)   {rcpu * 1000:5.2f} ms Redis CPU"
        )
    sqlite_rate = results["1 node, SQLite"][0]
    redis_rate = results["1 node, Redis"][0]
    print(f"Redis-backed node / SQLite node: {redis_rate / sqlite_rate * 100:5.1f} %   (target >= 80 %)")
    trips, _, rcpu = redis_rows["2 nodes, Redis"]
    print(f"redis-benchmark SET/GET (50 clients, no pipelining): {throughput:,.0f} requests/s")
    print(
        f"cluster ceiling on one Redis: {throughput / trips:,.0f} sign-ins/s by requests "
        f"({throughput:,.0f} / {trips:.2f});  {1 / rcpu if rcpu > 0 else float('nan'):,.0f} sign-ins/s by "
        f"Redis CPU (1 core / {rcpu * 1000:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
