"""Kiosk credentials and staff accounts re-read from the config file without a restart (reload.py):
a kiosk added with `eid-gateway kiosk-credential new` works, a rotated or removed credential is refused
within the documented bound and the kiosk shows "credential refused", an account added with
`eid-gateway kiosk-staff add --config` signs in, a removed one's session ends; a broken file keeps the
last good credentials. In the composed gateway, and with `serve --workers 2` (every worker reloads)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from eid_gateway.cli import main as cli_main
from eid_gateway.kiosks.credentials import credential_main

from .test_gateway_wiring import KIOSK_TOKEN, kiosk_gateway
from .test_staff_login import ADMIN, ADMIN_PW, SCRAPE_TOKEN, VIEWER, VIEWER_PW, sign_in, staff_toml

#: generous: reload.CHECK_SECONDS is 1 s; CI machines are slow
WITHIN = 20.0
FAST_STALE = "heartbeat_seconds = 1\nstale_after_missed = 1\n"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.05)


def new_credential(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """`eid-gateway kiosk-credential new`: the token (for the kiosk) and the credential_hash (for the file)."""
    assert credential_main(["new"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return lines[0].rsplit(" ", 1)[1], lines[1].split('"')[1]


def kiosk_table(kiosk_id: str, digest: str) -> str:
    return f'\n[[kiosks]]\nid = "{kiosk_id}"\nname = "Kiosk {kiosk_id}"\ncredential_hash = "{digest}"\n'


class Kiosk:
    def __init__(self, client: TestClient) -> None:
        self.client, self.seq = client, 0

    async def heartbeat(self, kiosk_id: str, token: str) -> int:
        self.seq += 1
        resp = await self.client.post(
            f"/kiosks/api/v1/kiosks/{kiosk_id}/heartbeat",
            json={"instance": "reload-test", "seq": self.seq},
            headers={"Authorization": f"Bearer {token}"},
        )
        return resp.status


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


async def status(client: TestClient) -> dict[str, str]:
    resp = await client.get("/kiosks/status.json", headers=basic(ADMIN, ADMIN_PW))
    assert resp.status == 200
    return {row["id"]: row["status"] for row in (await resp.json())["kiosks"]}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Path]]:
    async with kiosk_gateway(tmp_path, staff_toml(FAST_STALE)) as served:
        yield served


async def test_a_kiosk_credential_added_rotated_and_removed_without_restart(
    gateway: tuple[TestClient, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    client, path = gateway
    kiosk = Kiosk(client)
    token, digest = new_credential(capsys)
    assert await kiosk.heartbeat("nord-2", token) == 401  # not configured yet
    path.write_text(path.read_text(encoding="utf-8") + kiosk_table("nord-2", digest), encoding="utf-8")

    async def added() -> bool:
        return await kiosk.heartbeat("nord-2", token) == 200

    await until(added)
    assert "nord-2" in await status(client)  # on the board

    # rotate mitte-1: the old token is refused, the new one works, the kiosk shows "credential refused"
    # while only the old token comes (the agent was not given the new one yet)
    assert await kiosk.heartbeat("mitte-1", KIOSK_TOKEN) == 200
    new_token, new_digest = new_credential(capsys)
    text = path.read_text(encoding="utf-8")
    old_table = text[text.index('id = "mitte-1"') :].split("\n\n", 1)[0]
    path.write_text(
        text.replace(old_table, old_table.split("credential_hash")[0] + f'credential_hash = "{new_digest}"')
    )

    async def refused() -> bool:
        return await kiosk.heartbeat("mitte-1", KIOSK_TOKEN) == 401 and (await status(client))["mitte-1"] == (
            "credential_refused"
        )

    await until(refused)
    assert await kiosk.heartbeat("mitte-1", new_token) == 200

    # remove nord-2's table: its token stops working and it leaves the board
    path.write_text(path.read_text(encoding="utf-8").replace(kiosk_table("nord-2", digest), ""), encoding="utf-8")

    async def removed() -> bool:
        return await kiosk.heartbeat("nord-2", token) == 401

    await until(removed)
    assert "nord-2" not in await status(client)


async def test_a_broken_file_keeps_the_last_good_credentials(
    gateway: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = gateway
    kiosk = Kiosk(client)
    caplog.set_level(logging.INFO, logger="eid_gateway.kiosks")
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace('credential_hash = "sha256$', 'credential_hash = "md5$', 1), encoding="utf-8")

    async def logged() -> bool:
        await kiosk.heartbeat("mitte-1", KIOSK_TOKEN)
        return "kiosk credentials not reloaded" in caplog.text

    await until(logged)
    assert "kiosks[0].credential_hash" in caplog.text
    assert await kiosk.heartbeat("mitte-1", KIOSK_TOKEN) == 200  # the last good credential still counts
    assert KIOSK_TOKEN not in caplog.text


async def test_a_staff_account_added_with_the_cli_signs_in_and_a_removed_ones_session_ends(
    gateway: tuple[TestClient, Path], caplog: pytest.LogCaptureFixture
) -> None:
    client, path = gateway
    caplog.set_level(logging.INFO, logger="eid_gateway.kiosks")
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(
        ["kiosk-staff", "add", "carla.neu", "--role", "view", "--config", str(path)], stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    password = out.getvalue().rsplit(": ", 1)[1].strip()

    async def reloaded() -> bool:  # polled without a password: wrong ones would count towards the lockout
        await client.get("/kiosks/dashboard", allow_redirects=False)
        return "kiosk credentials reloaded" in caplog.text

    await until(reloaded)
    assert (await client.get("/kiosks/status.json", headers=basic("carla.neu", password))).status == 200

    assert (await sign_in(client, VIEWER, VIEWER_PW)).status == 303
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f'name = "{VIEWER}"', 'name = "someone.else"'), encoding="utf-8")

    async def session_ended() -> bool:
        resp = await client.get("/kiosks/dashboard", allow_redirects=False)
        return resp.status == 303 and resp.headers["Location"].startswith("/kiosks/login")

    await until(session_ended)


@pytest.mark.slow
def test_with_two_workers_every_worker_takes_an_added_and_a_removed_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --workers 2`: each worker watches the file itself; a heartbeat through a connection pinned to
    each worker shows that both took the new credential, and both refuse it once it is removed."""
    from gateway.test_workers import NO_LIMITS, init_instance, start_gateway

    config, port = init_instance(tmp_path, NO_LIMITS + staff_toml(FAST_STALE))
    gw = start_gateway(config, port)
    try:
        token, digest = new_credential(capsys)
        config.write_text(config.read_text(encoding="utf-8") + kiosk_table("nord-2", digest), encoding="utf-8")
        seq = 0

        def heartbeats() -> list[int]:
            nonlocal seq
            out = []
            for conn in gw.pinned().values():
                seq += 1
                body = json.dumps({"instance": "reload-workers", "seq": seq})
                conn.request(
                    "POST",
                    "/kiosks/api/v1/kiosks/nord-2/heartbeat",
                    body=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                resp.read()
                out.append(resp.status)
                conn.close()
            return out

        def wait_for(wanted: list[int]) -> None:
            deadline = time.monotonic() + WITHIN
            while (got := heartbeats()) != wanted:
                assert time.monotonic() < deadline, f"workers answered {got}, not {wanted}"
                time.sleep(0.1)

        wait_for([200, 200])
        config.write_text(config.read_text(encoding="utf-8").replace(kiosk_table("nord-2", digest), ""))
        wait_for([401, 401])
    finally:
        gw.stop()


async def test_a_rotated_scrape_token_counts_without_restart(
    gateway: tuple[TestClient, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`eid-gateway kiosk-credential metrics-token`, its hash replacing metrics_token_hash: Prometheus
    scrapes with the new token, the old one is refused (401), without a restart."""
    client, path = gateway
    assert credential_main(["metrics-token"]) == 0
    lines = capsys.readouterr().out.splitlines()
    new_token, new_hash = lines[0].rsplit(" ", 1)[1], lines[1].split('"')[1]
    text = path.read_text(encoding="utf-8")
    old_hash = text.split('metrics_token_hash = "', 1)[1].split('"', 1)[0]
    path.write_text(text.replace(old_hash, new_hash), encoding="utf-8")

    async def scrape(token: str) -> int:
        return (await client.get("/kiosks/metrics", headers={"Authorization": f"Bearer {token}"})).status

    async def rotated() -> bool:
        return await scrape(new_token) == 200

    await until(rotated)
    assert await scrape(SCRAPE_TOKEN) == 401
