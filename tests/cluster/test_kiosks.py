"""Kiosks on two gateway nodes (processes) sharing one real redis-server: the real kiosk agent (real
pcscd + vpcd and the virtual ID card) reports to node A only, a staff dashboard stream is open on node
B only, and B sees every change live: card in, card out, the agent killed (offline within two
heartbeat intervals, decided on B from the shared state and its clock). Two reports racing on the two
nodes end with the newer one. Prints the report -> dashboard latency across nodes (median of N).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from cardreader.testing.fixtures import pcscd, pcscd_session, vcard  # noqa: F401  (pytest fixtures)
from eid_gateway.config import RedisSettings
from eid_gateway.kiosks.history import KioskEvent
from eid_gateway.kiosks.state_store import SharedKioskStateStore
from eid_gateway.store.redis import create_redis_store
from eid_gateway.store.redis_server import RedisServer
from helpers.kiosk_agent import STAFF_BASIC, kiosk_monitor_toml, kiosk_post, kiosk_row, start_agent_process
from helpers.sse import EventStream

from .conftest import Cluster, Node, close_cluster, make_cluster

HEARTBEAT = 4.0  # offline after 1.5 heartbeats of silence, noticed within the 1 s tick: <= 7 s of 8
TOKEN = "kiosk-token-mitte-1-" + "m" * 32
EMPTY = snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),)))
CARD = snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.ID_CARD),)))

KIOSKS = kiosk_monitor_toml(TOKEN, heartbeat=HEARTBEAT)


@pytest.fixture(scope="module")
def kiosk_cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Cluster]:
    prefix = f"kiosk{secrets.token_hex(4)}:"
    c = make_cluster(tmp_path_factory.mktemp("kiosk-cluster"), redis_server, extra=KIOSKS, prefix=prefix)
    yield c
    close_cluster(c)


def dashboard(node: Node) -> EventStream:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    stream = EventStream(conn, "/kiosks/dashboard/events?lang=de", {"Authorization": STAFF_BASIC}).start()
    stream.wait_for(lambda e: e.name == "snapshot")
    return stream


def post(node: Node, kind: str, body: dict[str, object], conn: http.client.HTTPConnection | None = None) -> dict:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        return kiosk_post(conn, TOKEN, kind, body)
    finally:
        if own:
            conn.close()


def status_json(node: Node) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.request("GET", "/kiosks/status.json", headers={"Authorization": STAFF_BASIC})
        resp = conn.getresponse()
        assert resp.status == 200
        doc: dict = json.loads(resp.read())
        return next(k for k in doc["kiosks"] if k["id"] == "mitte-1")
    finally:
        conn.close()


def history(cluster: Cluster) -> list[KioskEvent]:
    async def read() -> list[KioskEvent]:
        redis = cluster.config.store.redis
        assert redis is not None
        store = create_redis_store(RedisSettings(url=redis.url, key_prefix=redis.key_prefix))
        try:
            return await SharedKioskStateStore(store).kiosk_history("mitte-1", since=0)
        finally:
            await store.close()

    return asyncio.run(read())


def test_agent_reports_to_node_a_and_a_dashboard_on_node_b_sees_every_change(
    kiosk_cluster: Cluster,
    pcscd,  # noqa: F811
    vcard,  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = kiosk_cluster.nodes["a"], kiosk_cluster.nodes["b"]
    stream = dashboard(b)
    agent = start_agent_process(f"{a.origin}/kiosks/", "mitte-1", TOKEN, tmp_path, heartbeat=HEARTBEAT)
    try:
        stream.wait_for(kiosk_row("empty"), timeout=60)  # the agent is up and its vpcd slots are seen
        n = len(stream)
        inserted = time.monotonic()
        vcard.insert()
        _, event = stream.wait_for(kiosk_row("id_card"), after=n)
        card_in = event.at - inserted
        assert "Ausweis erkannt" in event.data["row"]
        n = len(stream)
        removed = time.monotonic()
        vcard.remove()
        _, event = stream.wait_for(kiosk_row("empty"), after=n)
        card_out = event.at - removed
        # heartbeats go to node A; node B's dashboard hears them and keeps the kiosk live
        n = len(stream)
        stream.wait_for(lambda e: e.name == "seen" and e.data["id"] == "mitte-1", after=n, timeout=4 * HEARTBEAT)
        assert status_json(b)["status"] == "empty"
        n = len(stream)
        agent.send_signal(signal.SIGKILL)  # nothing announced
        killed = time.monotonic()
        agent.wait(10)
        _, event = stream.wait_for(kiosk_row("offline"), after=n, timeout=6 * HEARTBEAT)
        took = event.at - killed
        print(
            f"\nnode A -> dashboard on node B (Redis): card in {card_in:.2f} s, card out {card_out:.2f} s "
            f"(pcscd + agent included); SIGKILL -> offline {took:.2f} s (heartbeat {HEARTBEAT} s)"
        )
        assert took <= 2 * HEARTBEAT, f"offline after {took:.2f} s, more than two heartbeats"
        assert "Agent offline seit" in event.data["row"] and "bereit (leer)" not in event.data["row"]
        assert status_json(a)["status"] == "offline" and status_json(b)["offline_reason"] == "silent"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
        stream.close()
    kinds = [(e.kind, e.state) for e in history(kiosk_cluster)]
    assert ("reader_state", "id_card") in kinds and ("agent_offline", None) in kinds
    assert kinds.count(("agent_offline", None)) == 1  # two nodes noticed the silence, one wrote it


def test_report_to_dashboard_latency_across_nodes(kiosk_cluster: Cluster) -> None:
    """Reports posted to node A (as the agent sends them), each timed until node B's stream has it."""
    a, b = kiosk_cluster.nodes["a"], kiosk_cluster.nodes["b"]
    stream = dashboard(b)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    instance = f"latency-{secrets.token_hex(4)}"
    latencies = []
    try:
        for seq in range(1, 41):
            n = len(stream)
            sent = time.monotonic()
            post(a, "state", {"instance": instance, "seq": seq, "status": CARD if seq % 2 else EMPTY}, conn)
            _, event = stream.wait_for(kiosk_row("id_card" if seq % 2 else "empty"), after=n)
            latencies.append(event.at - sent)
    finally:
        conn.close()
        stream.close()
    latencies.sort()
    print(
        f"\nRedis, 2 nodes: report to A -> dashboard event on B: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p90 {latencies[int(len(latencies) * 0.9)] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms (n={len(latencies)})"
    )


def _send(
    go: threading.Barrier, answers: dict[str, dict], name: str, node: Node, instance: str, seq: int, status: dict
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    conn.connect()
    go.wait()  # both requests leave together
    answers[name] = post(node, "state", {"instance": instance, "seq": seq, "status": status}, conn)
    conn.close()


def test_two_reports_racing_on_two_nodes_end_with_the_newer(kiosk_cluster: Cluster) -> None:
    a, b = kiosk_cluster.nodes["a"], kiosk_cluster.nodes["b"]
    instance = f"race-{secrets.token_hex(4)}"
    post(a, "state", {"instance": instance, "seq": 0, "status": EMPTY})
    for n in range(1, 21):
        newer, older = (CARD, EMPTY) if n % 2 else (EMPTY, CARD)
        to_newer, to_older = (a, b) if n % 4 < 2 else (b, a)
        go = threading.Barrier(2)
        answers: dict[str, dict] = {}
        threads = [
            threading.Thread(target=_send, args=(go, answers, "newer", to_newer, instance, 2 * n + 1, newer)),
            threading.Thread(target=_send, args=(go, answers, "older", to_older, instance, 2 * n, older)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert answers["newer"]["applied"] is True
        word = "id_card" if newer is CARD else "empty"
        for node in (a, b):
            deadline = time.monotonic() + 10
            while status_json(node)["status"] != word:  # node B may hear of A's write a moment later
                assert time.monotonic() < deadline, f"round {n}: {node.name} shows {status_json(node)['status']}"
                time.sleep(0.02)
