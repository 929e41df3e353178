"""Kiosk agent end to end: real pcscd + vpcd + virtual ID card -> agent -> HTTPS gateway on loopback."""

import asyncio
import logging
import signal
import ssl

import pytest

from cardreader.agent import AgentConfig, KioskAgent, tls_context
from cardreader.model import ReaderState
from eid_gateway.kiosks.registry import DOWN_WORDS
from helpers.kiosk_agent import start_agent_subprocess
from helpers.ports import free_port

from .conftest import TOKENS, RunningGateway, eventually, make_settings

SLOT0 = "Virtual PCD 00 00"


def slot0(gw: RunningGateway, kiosk="mitte-1"):
    rec = gw.registry.records[kiosk]
    if rec.snapshot is None:
        return None
    return next((r for r in rec.snapshot.readers if r.name == SLOT0), None)


def has_state(gw, state, kiosk="mitte-1"):
    r = slot0(gw, kiosk)
    return r is not None and r.state is state and r


def agent_config(gw, pki, kiosk="mitte-1", token=None, client_cert=False, **kw):
    return AgentConfig(
        gateway=gw.base,
        kiosk_id=kiosk,
        credential=token or TOKENS[kiosk],
        heartbeat_seconds=kw.pop("heartbeat_seconds", 0.5),
        backoff_initial=0.05,
        backoff_max=0.3,
        request_timeout=2.0,
        ssl=tls_context(pki.ca_file, pki.client_cert if client_cert else None, pki.client_key if client_cert else None),
        **kw,
    )


class AgentTask:
    def __init__(self, config):
        self.agent = KioskAgent(config)
        self.task = asyncio.ensure_future(self.agent.run())

    async def stop(self):
        self.agent.stop()
        await asyncio.wait_for(self.task, 10)


async def agent_seen_then_gateway_gone(pki):
    """A gateway on a fresh port and an agent reporting to it, returned once the gateway has seen the
    agent's empty reader and has stopped: the agent, the stopped gateway (its store kept) and the port."""
    port = free_port()
    gw1 = RunningGateway(make_settings(heartbeat=0.5), port, pki.server_ctx)
    await gw1.start()
    a = AgentTask(agent_config(gw1, pki))
    try:
        await eventually(lambda: has_state(gw1, ReaderState.EMPTY))
        await gw1.stop()
    except BaseException:
        await a.stop()
        raise
    return a, gw1, port


@pytest.fixture
async def gateway(pki):
    gw = RunningGateway(make_settings(heartbeat=0.5), free_port(), pki.server_ctx)
    await gw.start()
    yield gw
    await gw.stop()


async def test_card_insert_and_removal_reach_the_gateway(gateway, pki, vcard):
    a = AgentTask(agent_config(gateway, pki))
    try:
        await eventually(lambda: has_state(gateway, ReaderState.EMPTY))
        await asyncio.to_thread(vcard.insert)
        reader = await eventually(lambda: has_state(gateway, ReaderState.ID_CARD))
        (pace,) = reader.card.pace
        assert (pace.name, pace.parameter_id) == ("id-PACE-ECDH-GM-AES-CBC-CMAC-128", 13)
        await asyncio.to_thread(vcard.remove)
        # how fast the removal arrives is measured in bench/kiosks.py and tests/cluster; this bound is for a slow,
        # loaded machine
        await eventually(lambda: has_state(gateway, ReaderState.EMPTY), timeout=6)
        # heartbeats keep coming while nothing changes, and the kiosk is not stale
        n = len([m for m in gateway.received if m.kind == "heartbeat"])
        await eventually(lambda: len([m for m in gateway.received if m.kind == "heartbeat"]) >= n + 2, timeout=3)
        assert gateway.registry.row("mitte-1")["stale"] is False
    finally:
        await a.stop()


async def test_pcscd_restart_is_reported_then_recovers(gateway, pki, pcscd, vcard):
    if not pcscd.owned:
        pytest.skip("a system pcscd is running; this test needs to stop and start its own")
    a = AgentTask(agent_config(gateway, pki))
    try:
        await eventually(lambda: has_state(gateway, ReaderState.EMPTY))
        await asyncio.to_thread(pcscd.stop)
        await eventually(lambda: gateway.registry.row("mitte-1")["status"] == "pcsc_unavailable")
        row = gateway.registry.row("mitte-1")
        assert row["detail"] in ("SCARD_E_NO_SERVICE", "SCARD_F_COMM_ERROR", "SCARD_E_SERVICE_STOPPED")
        await asyncio.to_thread(pcscd.start)
        await eventually(lambda: has_state(gateway, ReaderState.EMPTY), timeout=5)
        await asyncio.to_thread(vcard.insert)
        await eventually(lambda: has_state(gateway, ReaderState.ID_CARD))
    finally:
        await a.stop()


async def test_gateway_outage_loses_nothing_and_keeps_order(pki, vcard):
    a, gw1, port = await agent_seen_then_gateway_gone(pki)
    try:
        # three changes while the gateway is away
        for step in (vcard.insert, vcard.remove, vcard.insert):
            before = len(a.agent.outbox)
            await asyncio.to_thread(step)
            await eventually(lambda: len(a.agent.outbox) > before, timeout=3)  # noqa: B023 - awaited at once
        assert a.agent.gateway_reachable is False
        waiting = [m.seq for m in list(a.agent.outbox._queue)]
        assert len(waiting) >= 3
        gw2 = RunningGateway(make_settings(heartbeat=0.5), port, pki.server_ctx, received=[], store=gw1.store)
        await gw2.start()
        try:
            await eventually(lambda: len(a.agent.outbox) == 0, timeout=5)
            states = [m for m in gw2.received if m.kind == "state"]
            assert [m.seq for m in states][: len(waiting)] == waiting  # every one, in order
            assert [m.summary for m in states][-3:] == ["id_card", "empty", "id_card"]
            assert has_state(gw2, ReaderState.ID_CARD)
            seqs = [m.seq for m in gw2.received]
            assert seqs == sorted(seqs)
        finally:
            await a.stop()
            await gw2.stop()
    finally:
        if not a.task.done():
            await a.stop()


async def test_forged_kiosk_credential_is_refused_and_nothing_recorded(gateway, pki, caplog):
    a = AgentTask(agent_config(gateway, pki, token="forged-" + "x" * 40))
    try:
        await eventually(lambda: gateway.registry.counters["auth_failure"] >= 2)
        assert gateway.received == []
        assert gateway.registry.row("mitte-1")["status"] == "credential_refused"
        assert len(a.agent.outbox) >= 1  # kept for when the credential is fixed, not dropped
        assert "refused this kiosk's credential" in caplog.text
        assert "forged-" not in caplog.text  # the token never reaches a log
    finally:
        await a.stop()


async def test_the_agent_presents_its_client_certificate_to_a_proxy_that_requires_one(pki, caplog):
    """Client certificates are checked where TLS ends, at the reverse proxy (docs/kiosks.md): a listener
    that requires one (as nginx `ssl_verify_client on`) refuses the agent without it and serves it with it."""
    proxy_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_file))
    proxy_ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    proxy_ctx.verify_mode = ssl.CERT_REQUIRED
    gw = RunningGateway(make_settings(heartbeat=0.5), free_port(), proxy_ctx)
    await gw.start()
    caplog.set_level(logging.WARNING, logger="cardreader")
    without = AgentTask(agent_config(gw, pki))
    try:
        await eventually(lambda: "gateway unreachable" in caplog.text, timeout=20)
        assert gw.received == []  # the handshake failed: nothing reached the gateway
        await without.stop()
        with_cert = AgentTask(agent_config(gw, pki, client_cert=True))
        try:
            await eventually(lambda: gw.registry.row("mitte-1")["status"] not in DOWN_WORDS, timeout=20)
        finally:
            await with_cert.stop()
    finally:
        if not without.task.done():
            await without.stop()
        await gw.stop()


async def test_agent_process_exits_cleanly_on_sigterm(gateway, pki, tmp_path, pcscd):
    proc = await start_agent_subprocess(
        gateway.base, "mitte-1", TOKENS["mitte-1"], tmp_path, heartbeat=0.5, ca_file=pki.ca_file
    )
    try:
        await eventually(lambda: has_state(gateway, ReaderState.EMPTY), timeout=10)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 5)
        err = (await proc.stderr.read()).decode()
        assert rc == 0, err
        assert "kiosk agent stopped" in err and "Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_agent_refuses_plain_http_to_a_remote_gateway(capsys):
    from cardreader.agent import main

    assert main(["--gateway", "http://gateway.example/kiosks/", "--kiosk-id", "mitte-1"]) == 2
    assert "must use https" in capsys.readouterr().err


async def test_agent_resends_its_state_when_a_restarted_gateway_asks(pki, pcscd):
    a, _, port = await agent_seen_then_gateway_gone(pki)
    try:
        gw2 = RunningGateway(make_settings(heartbeat=0.5), port, pki.server_ctx)  # knows nothing
        await gw2.start()
        try:
            await eventually(lambda: has_state(gw2, ReaderState.EMPTY), timeout=5)
            kinds = [m.kind for m in gw2.received]
            assert kinds[0] == "heartbeat" and "state" in kinds  # asked, then answered
        finally:
            await gw2.stop()
    finally:
        await a.stop()
