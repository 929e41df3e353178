"""`eid-gateway serve --workers N` as real processes: gunicorn's arbiter and N workers sharing one port.

Which worker served a request is read from the kernel, not from the gateway: the test finds the
server-side socket of its own connection in /proc/net/tcp and the worker process holding that socket, so
"both workers serve" cannot pass because of something the gateway says about itself.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from cardreader.testing.fixtures import pcscd, pcscd_session, vcard  # noqa: F401  (pytest fixtures)
from eid_gateway.config import ConfigError, load_config
from eid_gateway.kiosks.history import KioskEvent
from eid_gateway.kiosks.state_store import SharedKioskStateStore
from eid_gateway.simulator import run_simulated_client
from eid_gateway.store.sqlite import SqliteStore
from eid_gateway.workers import EXIT_WORKERS_FAILED
from helpers.kiosk_agent import STAFF_BASIC, kiosk_monitor_toml, kiosk_post, kiosk_row, start_agent_process
from helpers.ports import free_port
from helpers.sse import EventStream

EID_GATEWAY = str(Path(sys.executable).with_name("eid-gateway"))
START_TIMEOUT = 60.0


def init_instance(directory: Path, extra: str = "") -> tuple[Path, int]:
    """`eid-gateway init` on a free port, plus ``extra`` TOML appended."""
    port = free_port()
    subprocess.run(
        [EID_GATEWAY, "init", "--dir", str(directory), "--origin", f"http://127.0.0.1:{port}", "--port", str(port)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    config = directory / "gateway.toml"
    if extra:
        config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return config, port


# --- processes and sockets, as the kernel sees them -----------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _inodes(match: Callable[[int, int, str], bool]) -> set[str]:
    """Socket inodes from /proc/net/tcp{,6} whose (local port, remote port, state) ``match``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            local, remote = parts[1], parts[2]
            if match(int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), parts[3]):
                found.add(parts[9])
    return found


def _holders(inodes: set[str], pids: list[int]) -> list[int]:
    """The processes among ``pids`` holding one of the sockets ``inodes``."""
    holders = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


def socket_owner(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process among ``pids`` holding the server side of the connection from ``client_port``."""
    inodes = _inodes(lambda local, remote, _: local == server_port and remote == client_port)
    holders = _holders(inodes, pids) if inodes else []
    return holders[0] if holders else None


def listening(server_port: int, pids: list[int]) -> list[int]:
    """The processes among ``pids`` with a listening socket (state 0A) on ``server_port``."""
    return _holders(_inodes(lambda local, _, state: local == server_port and state == "0A"), pids)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent); labels in any order."""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if found == labels:
            return float(m.group(3))
    return 0.0


# --- the gateway under test ---------------------------------------------------------------------------------------


@dataclass
class ServeProcess:
    """An `eid-gateway serve` process listening on ``port`` of loopback, its output in ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Gateway(ServeProcess):
    """`eid-gateway serve --workers N`: the arbiter is ``process``."""

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def get(self, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[int, str]:
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8")
        finally:
            if own:
                conn.close()

    def pinned(self, max_connections: int = 64) -> dict[int, http.client.HTTPConnection]:
        """One open (keep-alive) connection per worker, each known to be served by that worker."""
        workers = self.workers()
        pinned: dict[int, http.client.HTTPConnection] = {}
        for _ in range(max_connections):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            status, _ = self.get("/healthz", conn)
            assert status == 200
            assert conn.sock is not None
            owner = socket_owner(self.port, conn.sock.getsockname()[1], workers)
            assert owner in workers, f"connection served by {owner}, not by a worker of {workers}"
            if owner in pinned:
                conn.close()
            else:
                pinned[owner] = conn
            if len(pinned) == len(workers):
                return pinned
        raise AssertionError(f"{max_connections} connections did not reach every worker: {sorted(pinned)}")

    def wait_ready(self, workers: int, started_lines: int | None = None) -> None:
        """Until every worker has logged its start, ``workers`` worker processes exist and each listens."""
        wanted = workers if started_lines is None else started_lines
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"arbiter exited {self.process.returncode}:\n{self.log_text()[-4000:]}")
            # every worker listens (its log line comes before its socket: a worker can be "started" and not
            # yet serve, and the test that kills the other one would then find nobody on the port)
            pids = self.workers()
            if (
                self.log_text().count("gateway started") >= wanted
                and len(pids) == workers
                and len(listening(self.port, pids)) == workers
            ):
                try:
                    if self.get("/healthz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"gateway did not come up:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()


def start_gateway(config: Path, port: int, workers: int = 2) -> Gateway:
    log = config.parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [EID_GATEWAY, "serve", "--config", str(config), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(process, port, log)
    try:
        gateway.wait_ready(workers)
    except BaseException:
        gateway.stop()
        raise
    return gateway


# every citizen of these tests comes from 127.0.0.1: the per-address abuse limits would refuse them
NO_LIMITS = "\n[limits]\nenabled = false\n"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config, port = init_instance(tmp_path_factory.mktemp("workers"), NO_LIMITS)
    gw = start_gateway(config, port)
    yield gw
    gw.stop()


@pytest.fixture
def fresh_gateway(tmp_path: Path) -> Iterator[Gateway]:
    config, port = init_instance(tmp_path, NO_LIMITS)
    gw = start_gateway(config, port)
    yield gw
    gw.stop()


# --- serving -----------------------------------------------------------------------------------------------------


def test_two_worker_processes_both_serve_the_port(gateway: Gateway) -> None:
    workers = gateway.workers()
    assert len(workers) == 2 and gateway.process.pid not in workers
    pinned = gateway.pinned()  # fails unless the kernel handed connections to both processes
    assert sorted(pinned) == workers
    for conn in pinned.values():
        for _ in range(5):  # and each keeps answering on its connection
            status, body = gateway.get("/healthz", conn)
            assert status == 200 and '"ok"' in body
        conn.close()
    log = gateway.log_text()
    assert re.search(r"eid_gateway\.app worker=0 gateway started", log)
    assert re.search(r"eid_gateway\.app worker=1 gateway started", log)
    for pid in workers:
        assert re.search(rf"worker=\d pid={pid} started", log)


def test_metrics_add_up_over_the_workers(gateway: Gateway) -> None:
    """/readyz calls getServerInfo once; 3 calls on one worker and 5 on the other must show as 8 more
    wherever /metrics is scraped (a worker reporting only itself would show 3 or 5 more)."""
    labels = {"operation": "getServerInfo", "outcome": "ok"}
    name = "eidgw_eid_server_call_seconds_count"
    pinned = gateway.pinned()
    (a, conn_a), (b, conn_b) = sorted(pinned.items())
    before = metric(gateway.get("/metrics", conn_a)[1], name, **labels)
    round_trips_before = metric(gateway.get("/metrics", conn_b)[1], "eidgw_store_round_trips_total")
    for conn, times in ((conn_a, 3), (conn_b, 5)):
        for _ in range(times):
            status, body = gateway.get("/readyz", conn)
            assert status == 200, body
    for conn in (conn_a, conn_b):
        status, text = gateway.get("/metrics", conn)
        assert status == 200
        assert metric(text, name, **labels) == before + 8
        assert metric(text, "eidgw_eid_server_up") == 1.0
        # each /readyz pings the store once, on whichever worker it landed
        assert metric(text, "eidgw_store_round_trips_total") >= round_trips_before + 8
        assert text.count("# TYPE eidgw_eid_server_call_seconds histogram") == 1  # merged, not per process
    conn_a.close()
    conn_b.close()


async def _one_sign_in(origin: str) -> None:
    """Demo service → SAML IdP → start page → simulated AusweisApp → refresh → demo ACS verifies.
    Every request on a new connection, so the hops of one sign-in land on random workers."""
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as browser,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as ausweisapp,
    ):
        async with browser.get(origin + "/demo/login", allow_redirects=False) as r:
            assert r.status in (302, 303), await r.text()
            sso = r.headers["Location"]
        async with browser.get(URL(sso, encoded=True), allow_redirects=False) as r:  # the signed query as sent
            assert r.status in (302, 303), await r.text()
            start = r.headers["Location"]
        async with browser.get(URL(origin).join(URL(start))) as r:
            assert r.status == 200, await r.text()
        ref = start.rsplit("/", 1)[1]
        refresh = await run_simulated_client(ausweisapp, f"{origin}/eid/tctoken/{ref}")
        assert "ResultMajor=ok" in refresh, refresh
        async with browser.get(URL(refresh, encoded=True)) as r:
            form = await r.text()
            assert r.status == 200, form
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        assert "SAMLResponse" in fields, form[:500]
        async with browser.post(origin + "/demo/acs", data=fields) as r:
            page = await r.text()
            assert r.status == 200 and "MUSTERMANN" in page, page[:500]


async def test_thirty_sign_ins_across_two_workers(gateway: Gateway) -> None:
    """Each of the nine hops of a sign-in may land on either worker: everything a sign-in keeps between
    requests (flow, simulator session, demo request store) must be shared between the processes."""
    name, labels = "eidgw_signins_completed_total", {"service": "demo", "frontend": "saml", "backend": "simulator"}
    before = metric(gateway.get("/metrics")[1], name, **labels)
    cpu_before = {pid: _cpu_ticks(pid) for pid in gateway.workers()}
    gate = asyncio.Semaphore(6)

    async def citizen() -> None:
        async with gate:
            await _one_sign_in(gateway.origin)

    results = await asyncio.gather(*(citizen() for _ in range(30)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of 30 sign-ins failed, first: {failures[0]!r}"
    assert metric(gateway.get("/metrics")[1], name, **labels) == before + 30
    busy = [pid for pid, ticks in cpu_before.items() if _cpu_ticks(pid) - ticks >= 5]  # >= 50 ms each
    assert len(busy) == 2, "the sign-ins did not run on both workers"


def _cpu_ticks(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None
    return int(fields[11]) + int(fields[12])


# --- supervision ----------------------------------------------------------------------------------------------


def test_a_killed_worker_is_replaced_and_service_continues(fresh_gateway: Gateway) -> None:
    gw = fresh_gateway
    before = gw.workers()
    victim, survivor = before
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(victim) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(victim)
    for _ in range(20):  # the survivor serves the port meanwhile
        assert gw.get("/healthz")[0] == 200
    gw.wait_ready(2, started_lines=3)  # the replacement has started its gateway
    after = gw.workers()
    assert survivor in after and victim not in after, (before, after, gw.log_text()[-3000:])
    (replacement,) = set(after) - {survivor}
    log = gw.log_text()
    assert f"Worker (pid:{victim}) was sent SIGKILL!" in log, log[-3000:]
    assert re.search(rf"worker=\d pid={replacement} started", log), log[-3000:]
    pinned = gw.pinned()  # the replacement takes connections and answers them
    assert gw.get("/readyz", pinned[replacement])[0] == 200
    for conn in pinned.values():
        conn.close()
    assert gw.process.poll() is None


@pytest.mark.parametrize("everyone", [False, True], ids=["arbiter", "every-process"])
def test_sigterm_stops_every_worker_and_exits_0(fresh_gateway: Gateway, everyone: bool) -> None:
    """SIGTERM to the arbiter; or to every process at once, as systemd's default KillMode does (each
    worker then gets a second SIGTERM from the arbiter while it shuts down)."""
    gw = fresh_gateway
    workers = gw.workers()
    metrics_dir = re.search(r"starting workers=2 metrics_dir=(\S+)", gw.log_text())
    assert metrics_dir and Path(metrics_dir.group(1)).is_dir()
    assert gw.get("/readyz")[0] == 200  # uses the store: its files exist from here on
    written = list(Path(metrics_dir.group(1)).glob("*.db"))  # the workers' values live there
    written += list((gw.log.parent / "data").iterdir())  # store, simulator sessions, demo state
    assert any(f.parent.name.startswith("eid-gateway-metrics-") for f in written)
    assert len(written) > 2, written
    for file in written:  # umask 077 in every worker: nothing it writes is readable by others
        assert file.stat().st_mode & 0o077 == 0, (file, oct(file.stat().st_mode))
    if everyone:
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
    gw.process.send_signal(signal.SIGTERM)
    assert gw.process.wait(timeout=30) == 0, gw.log_text()[-3000:]
    assert not any(alive(pid) for pid in workers)
    assert not Path(metrics_dir.group(1)).exists()
    log = gw.log_text()
    assert "Handling signal: term" in log
    assert "stopped; all workers ended" in log
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
    with pytest.raises(OSError):
        gw.get("/healthz")


def test_workers_stop_when_the_arbiter_is_killed(fresh_gateway: Gateway) -> None:
    gw = fresh_gateway
    workers = gw.workers()
    gw.process.kill()
    gw.process.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), gw.log_text()[-3000:]
    assert "is gone; stopping" in gw.log_text()
    # a killed arbiter cannot remove its metrics directory
    left = re.search(r"metrics_dir=(\S+)", gw.log_text())
    assert left is not None
    shutil.rmtree(left.group(1), ignore_errors=True)


# Runs serve() of eid_gateway.workers with a worker start that fails in the way named by argv[2]; every
# attempt appends a line to the file argv[3].
_FAILING_WORKER = """
import logging
import sys
from aiohttp import web
from eid_gateway.config import ListenConfig
from eid_gateway.web.connections import ConnectionGuard
from eid_gateway.workers import Served, serve

port, how, attempts = int(sys.argv[1]), sys.argv[2], sys.argv[3]
logging.basicConfig(level=logging.INFO)

def start(index):
    with open(attempts, "a") as out:
        out.write(f"{index}\\n")
    if how == "config":  # as the CLI's start when the config no longer loads: the reason is written
        sys.stderr.write("gateway.toml: configuration is not valid\\n")
        return None
    if how == "raises":
        raise RuntimeError("key file unreadable")
    app = web.Application()

    async def startup(app):  # a startup hook (store, eID-Server client) that fails
        raise RuntimeError("store unreachable")

    app.on_startup.append(startup)
    return Served(app, ConnectionGuard(ListenConfig(), (), hsts=False))

sys.exit(serve(start, "127.0.0.1", port, 2))
"""


@pytest.mark.parametrize("how", ["config", "raises", "startup"])
def test_a_worker_that_cannot_start_stops_the_gateway_instead_of_a_restart_loop(how: str, tmp_path: Path) -> None:
    """A broken config, an unreadable key or a failing startup hook would fail every replacement the same
    way: gunicorn's arbiter stops (exit 1) at the first worker that fails to start, cleans up, and says why."""
    attempts = tmp_path / "attempts"
    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _FAILING_WORKER, str(free_port()), how, str(attempts)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == EXIT_WORKERS_FAILED, result.stderr[-3000:]
    assert time.monotonic() - t0 < 100
    assert 1 <= len(attempts.read_text().split()) <= 2, result.stderr[-3000:]  # no replacement started
    assert "Worker failed to boot." in result.stderr
    assert "stopped: a worker could not start" in result.stderr
    if how == "config":
        assert "configuration is not valid" in result.stderr
    metrics_dir = re.search(r"starting workers=2 metrics_dir=(\S+)", result.stderr)
    assert metrics_dir is not None and not Path(metrics_dir.group(1)).exists()


def test_a_taken_port_is_refused_before_any_worker_starts(gateway: Gateway) -> None:
    # a second gateway on the port of a running one would silently share its traffic (SO_REUSEPORT)
    config = gateway.log.parent / "gateway.toml"
    result = subprocess.run(
        [EID_GATEWAY, "serve", "--config", str(config), "--workers", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == EXIT_WORKERS_FAILED
    assert f"error: cannot listen on 127.0.0.1 port {gateway.port}: in use" in result.stderr
    assert "worker=" not in result.stderr


# --- refusals ---------------------------------------------------------------------------------------------------


KIOSK_TOKEN = "kiosk-token-" + "k" * 40


def _kiosk_post(conn: http.client.HTTPConnection, kind: str, body: dict[str, object]) -> dict[str, object]:
    return kiosk_post(conn, KIOSK_TOKEN, kind, body)


def test_kiosks_on_two_workers_one_takes_the_reports_the_other_streams_them(tmp_path: Path) -> None:
    """`serve --workers 2` on the SQLite store: the kiosk reports go to one worker process, a staff
    dashboard stream is open on the other (both told apart by the kernel); every change is streamed
    live, heartbeats to the first keep the kiosk live on the second, a silence shows it offline there
    within two heartbeat intervals. Prints the report -> event latency."""
    heartbeat = 4.0
    config, port = init_instance(tmp_path, NO_LIMITS + kiosk_monitor_toml(KIOSK_TOKEN, heartbeat=heartbeat))
    gw = start_gateway(config, port)
    stream: EventStream | None = None
    try:
        (worker_a, conn_a), (worker_b, conn_b) = sorted(gw.pinned().items())
        stream = EventStream(conn_b, "/kiosks/dashboard/events?lang=de", {"Authorization": STAFF_BASIC}).start()
        assert conn_b.sock is not None
        assert socket_owner(port, conn_b.sock.getsockname()[1], gw.workers()) == worker_b != worker_a
        stream.wait_for(lambda e: e.name == "snapshot")
        empty = snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),)))
        card = snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),)))
        latencies = []
        for seq in range(1, 21):  # card out, card in, ...
            n = len(stream)
            sent = time.monotonic()
            status = card if seq % 2 else empty
            assert _kiosk_post(conn_a, "state", {"instance": "agent-run-1", "seq": seq, "status": status}) == {
                "applied": True,
                "want_state": False,
            }
            _, event = stream.wait_for(kiosk_row("id_card" if seq % 2 else "empty"), after=n)
            latencies.append(event.at - sent)
        latencies.sort()
        print(
            f"\nSQLite, 2 workers: report -> dashboard event on the other worker: median "
            f"{statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms (n={len(latencies)})"
        )
        # an older message, or one retried, changes nothing on either worker
        assert _kiosk_post(conn_a, "state", {"instance": "agent-run-1", "seq": 19, "status": card})["applied"] is False
        # heartbeats to worker A reach worker B's dashboard and keep the kiosk live there
        for seq in range(21, 24):
            n = len(stream)
            assert _kiosk_post(conn_a, "heartbeat", {"instance": "agent-run-1", "seq": seq})["applied"] is True
            stream.wait_for(lambda e: e.name == "seen" and e.data["id"] == "mitte-1", after=n)
        last = time.monotonic()
        n = len(stream)
        _, event = stream.wait_for(kiosk_row("offline"), after=n, timeout=heartbeat * 6)
        took = event.at - last
        print(f"silent after the last heartbeat -> offline on the other worker: {took:.2f} s (heartbeat {heartbeat} s)")
        assert took <= 2 * heartbeat
        assert "Agent offline seit" in event.data["row"]
        # the agent comes back, then stops cleanly: offline at once
        _kiosk_post(conn_a, "heartbeat", {"instance": "agent-run-1", "seq": 24})
        stream.wait_for(kiosk_row("empty"), after=n)
        n = len(stream)
        stopped = time.monotonic()
        _kiosk_post(conn_a, "offline", {"instance": "agent-run-1", "seq": 25})
        _, event = stream.wait_for(kiosk_row("offline"), after=n)
        assert event.at - stopped < heartbeat
    finally:
        if stream is not None:
            stream.close()
        gw.stop()
    # the history is in the gateway's SQLite file, written once by whichever worker took the report
    events = asyncio.run(_history(config))
    kinds = [e.kind for e in events]
    assert kinds.count("reader_state") == 19 and kinds.count("agent_offline") == 2
    assert [e.detail for e in events if e.kind == "agent_offline"] == ["silent", "stopped"]


def test_the_real_agent_with_two_workers_every_workers_dashboard_sees_every_change(
    tmp_path: Path,
    pcscd,  # noqa: F811
    vcard,  # noqa: F811
) -> None:
    """The real agent (pcscd + vpcd + virtual ID card) against `serve --workers 2`: whichever worker its
    connections reach, a dashboard stream open on each worker sees card in, card out and the agent
    killed, so at least one of them is fed from the other process."""
    heartbeat = 4.0
    config, port = init_instance(tmp_path, NO_LIMITS + kiosk_monitor_toml(KIOSK_TOKEN, heartbeat=heartbeat))
    gw = start_gateway(config, port)
    streams: list[EventStream] = []
    agent = None
    try:
        for _, conn in sorted(gw.pinned().items()):
            streams.append(
                EventStream(conn, "/kiosks/dashboard/events?lang=de", {"Authorization": STAFF_BASIC}).start()
            )
        for stream in streams:
            stream.wait_for(lambda e: e.name == "snapshot")
        agent = start_agent_process(
            f"http://127.0.0.1:{port}/kiosks/", "mitte-1", KIOSK_TOKEN, tmp_path, heartbeat=heartbeat
        )
        for stream in streams:
            stream.wait_for(kiosk_row("empty"), timeout=60)
        for action, word in ((vcard.insert, "id_card"), (vcard.remove, "empty")):
            marks = [len(stream) for stream in streams]
            action()
            for stream, n in zip(streams, marks, strict=True):
                stream.wait_for(kiosk_row(word), after=n)
        marks = [len(stream) for stream in streams]
        agent.kill()
        killed = time.monotonic()
        agent.wait(10)
        took = [
            stream.wait_for(kiosk_row("offline"), after=n, timeout=6 * heartbeat)[1].at - killed
            for stream, n in zip(streams, marks, strict=True)
        ]
        print(f"\nreal agent, 2 workers: SIGKILL -> offline on each worker's dashboard {[f'{t:.2f} s' for t in took]}")
        assert max(took) <= 2 * heartbeat
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait(10)
        for stream in streams:
            stream.close()
        gw.stop()


async def _history(config: Path) -> list[KioskEvent]:
    store = SqliteStore(load_config(config).store.path)
    try:
        return await SharedKioskStateStore(store).kiosk_history("mitte-1", since=0)
    finally:
        await store.close()


def _embedded_paos(directory: Path) -> str:
    from eid_gateway.eidserver.testpki import generate_test_pki

    generate_test_pki(directory / "eid-test-pki", "http://127.0.0.1:8080")
    return '\n[embedded_paos]\npki_dir = "eid-test-pki"\nlisten_port = 9443\n'


@pytest.mark.parametrize("kind", ["embedded-paos", "simulator-in-memory", "demo-in-memory"])
def test_state_kept_in_one_process_refuses_several_workers(kind: str, tmp_path: Path) -> None:
    config, _ = init_instance(tmp_path)
    text = config.read_text(encoding="utf-8")
    if kind == "embedded-paos":
        text = text.replace('kind = "simulator"', 'kind = "embedded-paos"', 1) + _embedded_paos(tmp_path)
        reason = 'eid_server.kind = "embedded-paos": its PAOS sessions are kept in one process'
    elif kind == "simulator-in-memory":
        text, removed = re.subn(r"(?m)^sessions = .*\n", "", text)
        assert removed == 1
        reason = "simulator.sessions is not set: the simulator's open sessions would be kept in one process"
    else:
        text, removed = re.subn(r"(?m)^state = .*\n", "", text)
        assert removed == 1
        reason = "demo.state is not set: the demo service's sent requests and seen assertions would be kept"
    config.write_text(text, encoding="utf-8")
    assert load_config(config).listen.workers == 1  # fine with one worker

    # on the command line: refused before any worker starts
    result = subprocess.run(
        [EID_GATEWAY, "serve", "--config", str(config), "--workers", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "error: --workers / listen.workers = 2: must be 1 because" in result.stderr
    assert reason in result.stderr

    # in the config file: a config error naming the key
    config.write_text(text.replace("[listen]\n", "[listen]\nworkers = 2\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(config)
    assert [e for e in exc.value.errors if e.startswith(f"listen.workers: must be 1 because {reason}")]


def test_workers_key_and_option_are_checked(tmp_path: Path) -> None:
    config, _ = init_instance(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[listen]\n", "[listen]\nworkers = 3\n", 1), encoding="utf-8")
    assert load_config(config).listen.workers == 3
    config.write_text(text.replace("[listen]\n", "[listen]\nworkers = 0\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(config)
    assert "listen.workers: must be between 1 and 64" in exc.value.errors
    config.write_text(text.replace("[listen]\n", '[listen]\nworkers = "2"\n', 1), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(config)
    assert "listen.workers: must be an integer" in " ".join(exc.value.errors)

    result = subprocess.run([EID_GATEWAY, "serve", "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--workers: must be between 1 and 64" in result.stderr


# Loads a token key as the arbiter's config check does, lets go of it as serve() does before forking, and
# forks; the child opens the token afresh and signs, as a worker's own config load does.
_FORKED_TOKEN = """
import os, sys
from certs.pkcs11 import SOFTHSM2_MODULE, Pkcs11Token, close_tokens, open_token
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from certs.pkcs11 import token_private_key

token = open_token(SOFTHSM2_MODULE, "workers", "1234")
token.generate("k")
token_private_key(token, "k").sign(b"arbiter", ec.ECDSA(hashes.SHA256()))
close_tokens()
pid = os.fork()
if pid == 0:
    try:
        own = Pkcs11Token(SOFTHSM2_MODULE, "workers", "1234")
        sys.stdout.write(f"signed {len(token_private_key(own, 'k').sign(b'worker', ec.ECDSA(hashes.SHA256())))}\\n")
        sys.stdout.flush()
        os._exit(0)
    except Exception as exc:
        sys.stdout.write(f"failed {type(exc).__name__}: {exc}\\n")
        sys.stdout.flush()
        os._exit(1)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(
    shutil.which("softhsm2-util") is None or not Path("/usr/lib/softhsm/libsofthsm2.so").exists(),
    reason="Debian package softhsm2 not installed",
)
def test_hsm_sessions_are_let_go_before_the_fork(tmp_path: Path) -> None:
    """The arbiter loads the config (HSM keys included) before it forks the workers; a PKCS#11 module
    initialized before a fork refuses the child's own login (SoftHSM2: UserAlreadyLoggedIn), and a network
    HSM's connection would be shared by both. certs.pkcs11.close_tokens (called by workers.serve) finalizes
    the modules first, so each worker opens its token afresh."""
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "workers", "--pin", "1234", "--so-pin", "5678"],
        check=True,
        capture_output=True,
        env=env,
    )
    result = subprocess.run([sys.executable, "-c", _FORKED_TOKEN], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("signed "), (result.stdout, result.stderr[-2000:])
