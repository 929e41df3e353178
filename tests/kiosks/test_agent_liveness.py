"""A dead kiosk is raised at once: the real agent process (real pcscd + vpcd) against a real HTTPS gateway
with the gateway's default liveness settings and a short heartbeat.

- killed (SIGKILL, nothing announced): red "Agent offline seit …" within two heartbeat intervals,
  instead of the last reader lines ("bereit (leer)");
- stopped cleanly (SIGTERM): offline at once, announced by the agent;
- refused credential: its own state, kept while the agent keeps trying, not "unknown".

Deadlines are computed from the moment of the kill in the test; every wait is bounded.
"""

import asyncio
import base64
import re
import signal
import time

import aiohttp
import pytest

from eid_gateway.kiosks.credentials import hash_kiosk_credential
from eid_gateway.kiosks.settings import parse_kiosk_settings
from helpers.kiosk_agent import start_agent_subprocess
from helpers.ports import free_port

from .conftest import _STAFF_HASH, STAFF_PASSWORD, STAFF_USER, TOKENS, RunningGateway, eventually

HEARTBEAT = 2.0  # seconds; the agent and the gateway agree on it, as in production (default 10)


def default_settings():
    """What an operator gets from a [kiosk_monitor] table naming only the heartbeat (every other
    liveness setting at its default)."""
    return parse_kiosk_settings(
        {
            "kiosk_monitor": {
                "staff_user": STAFF_USER,
                "staff_password_hash": _STAFF_HASH,
                "heartbeat_seconds": HEARTBEAT,
            },
            "kiosks": [
                {
                    "id": "mitte-1",
                    "name": "Bürgerbüro Mitte, Platz 1",
                    "credential_hash": hash_kiosk_credential(TOKENS["mitte-1"]),
                }
            ],
        }
    )


@pytest.fixture
async def gateway(pki):
    gw = RunningGateway(default_settings(), free_port(), pki.server_ctx)
    await gw.start()
    yield gw
    await gw.stop()


async def start_agent(gw, pki, tmp_path, token):
    return await start_agent_subprocess(gw.base, "mitte-1", token, tmp_path, heartbeat=HEARTBEAT, ca_file=pki.ca_file)


async def stop(proc):
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def status(gw):
    return gw.registry.row("mitte-1")["status"]


async def first_time(predicate, limit: float) -> float:
    """time.monotonic() when *predicate* first held, polled every 20 ms; fails after *limit* seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit} s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def dashboard_row(gw) -> str:
    """The kiosk's row on the staff dashboard page, as a German-speaking browser gets it."""
    auth = base64.b64encode(f"{STAFF_USER}:{STAFF_PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession() as s:
        async with s.get(
            gw.base + "dashboard", ssl=False, headers={"Authorization": f"Basic {auth}", "Accept-Language": "de-DE"}
        ) as r:
            assert r.status == 200
            html = await r.text()
    return re.search(r'<tr id="kiosk-mitte-1".*?</tr>', html, re.S).group(0)


async def test_killed_agent_is_offline_within_two_heartbeats(gateway, pki, tmp_path, pcscd):
    proc = await start_agent(gateway, pki, tmp_path, TOKENS["mitte-1"])
    try:
        await eventually(lambda: status(gateway) == "empty", timeout=30)  # agent up, vpcd slots seen
        assert "bereit (leer)" in await dashboard_row(gateway)
        proc.kill()  # SIGKILL: the agent cannot announce anything
        killed = time.monotonic()
        await proc.wait()
        offline = await first_time(lambda: status(gateway) == "offline", limit=4 * HEARTBEAT + 10)
        took = offline - killed
        print(f"\nSIGKILL -> offline after {took:.2f} s (heartbeat {HEARTBEAT} s)")
        assert took <= 2 * HEARTBEAT, f"offline after {took:.2f} s, more than two heartbeats"
        assert gateway.registry.row("mitte-1")["offline_reason"] == "silent"
        row = await dashboard_row(gateway)
        assert 'class="badge status-offline"' in row and "Agent offline seit" in row
        assert "bereit (leer)" not in row  # the dead kiosk's reader lines are not shown as current
    finally:
        await stop(proc)


async def test_clean_shutdown_is_offline_at_once(gateway, pki, tmp_path, pcscd):
    proc = await start_agent(gateway, pki, tmp_path, TOKENS["mitte-1"])
    try:
        await eventually(lambda: status(gateway) == "empty", timeout=30)
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        offline = await first_time(lambda: status(gateway) == "offline", limit=4 * HEARTBEAT + 10)
        took = offline - stopped
        print(f"\nSIGTERM -> offline after {took:.2f} s (heartbeat {HEARTBEAT} s)")
        # announced by the agent: well before a heartbeat could even be missed
        assert gateway.registry.row("mitte-1")["offline_reason"] == "stopped"
        assert took < HEARTBEAT, f"offline after {took:.2f} s"
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        row = await dashboard_row(gateway)
        assert "Agent offline seit" in row and "Kiosk-Agent wurde beendet" in row and "bereit (leer)" not in row
    finally:
        await stop(proc)


async def test_refused_credential_is_its_own_state(gateway, pki, tmp_path, pcscd):
    proc = await start_agent(gateway, pki, tmp_path, "replaced-" + "x" * 40)
    try:
        await first_time(lambda: status(gateway) == "credential_refused", limit=30)
        # the agent keeps trying at least once per heartbeat, so the state holds (and does not turn
        # into "offline" or "unknown") for as long as the refused agent runs
        window = gateway.registry.settings.stale_after_seconds
        end = time.monotonic() + 2 * window
        while time.monotonic() < end:
            assert status(gateway) == "credential_refused"
            await asyncio.sleep(0.1)
        row = await dashboard_row(gateway)
        assert 'class="badge status-credential_refused"' in row and "Zugang abgelehnt" in row
        assert "kiosk-credential" in row  # what IT has to do
    finally:
        await stop(proc)
