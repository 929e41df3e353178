"""Kiosk credentials on two gateway nodes (processes) sharing one redis-server, each node with its own
copy of the config file as configuration management gives it: a credential added to both copies works
on both nodes without a restart (the kiosk reports to node A, node B's board shows it), and an admin's
"remove from the board" on node A voids the credential on node B too (the removal is in the store)."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest

from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from eid_gateway.kiosks.credentials import hash_staff_password, new_kiosk_credential
from eid_gateway.store.redis_server import RedisServer

from .conftest import Cluster, Node, close_cluster, make_cluster

ADMIN, ADMIN_PW = "it-admin", "admin-password-4567"
STAFF = f'''
[kiosk_monitor]
heartbeat_seconds = 5

[[kiosk_monitor.staff]]
name = "{ADMIN}"
role = "admin"
password_hash = "{hash_staff_password(ADMIN_PW, n=2**14)}"
'''
WITHIN = 30.0  # generous: each node looks at its file once a second and at the store once per tick
EMPTY = snapshot_to_json(KioskSnapshot(ServiceState.OK, (ReaderStatus("r0", ReaderState.EMPTY),)))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STAFF_BASIC = {"Authorization": "Basic " + base64.b64encode(f"{ADMIN}:{ADMIN_PW}".encode()).decode()}


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Cluster]:
    """Nodes a and b, each reading its own copy of the config (a.toml, b.toml)."""
    directory = tmp_path_factory.mktemp("kiosk-credentials")
    c = make_cluster(directory, redis_server, extra=STAFF, nodes=(), prefix=f"kc{secrets.token_hex(4)}:")
    try:
        for name in ("a", "b"):
            shutil.copy(c.config_path, directory / f"{name}.toml")
            c.start(name, config_path=directory / f"{name}.toml")
        c.wait(*c.nodes.values())
    except BaseException:
        close_cluster(c)
        raise
    yield c
    close_cluster(c)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    deadline = time.monotonic() + WITHIN
    while not await check():
        assert time.monotonic() < deadline, f"not within {WITHIN} s"
        await asyncio.sleep(0.1)


async def report(http: aiohttp.ClientSession, node: Node, kiosk_id: str, token: str, seq: int) -> int:
    resp = await http.post(
        f"{node.origin}/kiosks/api/v1/kiosks/{kiosk_id}/state",
        json={"instance": "two-node-agent", "seq": seq, "status": EMPTY},
        headers={"Authorization": f"Bearer {token}"},
    )
    resp.release()
    return resp.status


async def board(http: aiohttp.ClientSession, node: Node) -> dict[str, str]:
    resp = await http.get(f"{node.origin}/kiosks/status.json", headers=STAFF_BASIC)
    assert resp.status == 200
    return {k["id"]: k["status"] for k in (await resp.json())["kiosks"]}


async def test_a_credential_added_to_each_nodes_file_works_and_a_removal_on_a_holds_on_b(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes["a"], two_nodes.nodes["b"]
    token, digest = new_kiosk_credential()
    table = f'\n[[kiosks]]\nid = "platz-7"\nname = "Bürgerbüro Süd, Platz 7"\ncredential_hash = "{digest}"\n'
    seq = 0
    async with aiohttp.ClientSession() as http:
        assert await report(http, a, "platz-7", token, 1) == 401  # not configured yet
        for name in ("a", "b"):  # configuration management writes every node's copy
            path = two_nodes.directory / f"{name}.toml"
            path.write_text(path.read_text(encoding="utf-8") + table, encoding="utf-8")

        async def accepted_on_a() -> bool:
            nonlocal seq
            seq += 1
            return await report(http, a, "platz-7", token, seq) == 200

        await until(accepted_on_a)

        async def shown_on_b() -> bool:  # reported to A only; B's board has it from the shared state
            return (await board(http, b)).get("platz-7") == "empty"

        await until(shown_on_b)

        # an admin on node A takes the kiosk off the board: node B refuses its token too
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:  # cookies of an IP
            page = await staff.get(f"{a.origin}/kiosks/login")
            login_token = CSRF.search(await page.text())
            assert login_token is not None
            signed_in = await staff.post(
                f"{a.origin}/kiosks/login",
                data={"csrf_token": login_token.group(1), "name": ADMIN, "password": ADMIN_PW},
                allow_redirects=False,
            )
            assert signed_in.status == 303
            history = await staff.get(f"{a.origin}/kiosks/history/platz-7")
            action_token = CSRF.search(await history.text())
            assert history.status == 200 and action_token is not None
            removed = await staff.post(
                f"{a.origin}/kiosks/admin/kiosks/platz-7/remove",
                data={"csrf_token": action_token.group(1)},
                allow_redirects=False,
            )
            assert removed.status == 303

        async def refused_on_b() -> bool:
            nonlocal seq
            seq += 1
            return await report(http, b, "platz-7", token, seq) == 401

        await until(refused_on_b)
        assert "platz-7" not in await board(http, b)
