"""The kiosk API and staff dashboard inside the composed gateway, configured from the TOML file."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import create_app
from eid_gateway.config import ConfigError, load_config
from eid_gateway.instance import write_example_config
from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password
from eid_gateway.store.sqlite import SqliteStore

KIOSK_TOKEN = "kiosk-token-" + "k" * 40


def kiosk_config(directory: Path, extra: str) -> Path:
    path = write_example_config(directory, "http://127.0.0.1:8080", 8080)
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


@asynccontextmanager
async def kiosk_gateway(directory: Path, extra: str) -> AsyncIterator[tuple[TestClient, Path]]:
    """The whole gateway app from :func:`kiosk_config` (its file kept, for tests that change it while the
    app runs) on a SQLite store in ``directory``: the test client and the config file."""
    path = kiosk_config(directory, extra)
    client = TestClient(TestServer(create_app(load_config(path), store=SqliteStore(directory / "store.sqlite3"))))
    await client.start_server()
    try:
        yield client, path
    finally:
        await client.close()


async def test_kiosks_are_served_by_the_gateway_when_configured(tmp_path: Path) -> None:
    staff = hash_staff_password("staff-secret")
    config = load_config(
        kiosk_config(
            tmp_path,
            f'''
[kiosk_monitor]
staff_user = "buergerbuero"
staff_password_hash = "{staff}"
heartbeat_seconds = 10
stale_after_missed = 3

[[kiosks]]
id = "mitte-1"
name = "Bürgerbüro Mitte, Platz 1"
credential_hash = "{hash_kiosk_credential(KIOSK_TOKEN)}"
''',
        )
    )
    assert config.kiosks is not None
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    try:
        spec = await client.get("/kiosks/api/v1/openapi.json")
        assert spec.status == 200 and "openapi" in await spec.json()
        # a browser without a sign-in is sent to the login page
        to_login = await client.get("/kiosks/dashboard", allow_redirects=False)
        assert to_login.status == 303 and to_login.headers["Location"] == "/kiosks/login?lang=de"
        forged = await client.post(
            "/kiosks/api/v1/kiosks/mitte-1/heartbeat", json={}, headers={"Authorization": "Bearer " + "x" * 52}
        )
        assert forged.status == 401
        basic = base64.b64encode(b"buergerbuero:staff-secret").decode()
        board = await client.get("/kiosks/dashboard", headers={"Authorization": "Basic " + basic})
        assert board.status == 200 and "Bürgerbüro Mitte, Platz 1" in await board.text()
    finally:
        await client.close()


def test_a_plain_kiosk_credential_in_the_config_is_refused(tmp_path: Path) -> None:
    path = kiosk_config(
        tmp_path,
        f'''
[kiosk_monitor]
staff_user = "buergerbuero"
staff_password_hash = "{hash_staff_password("staff-secret")}"

[[kiosks]]
id = "mitte-1"
name = "Platz 1"
credential = "plain-text-token"
''',
    )
    try:
        load_config(path)
    except ConfigError as exc:
        assert any(e.startswith("kiosks[0]") and "credential_hash" in e for e in exc.errors), exc.errors
    else:
        raise AssertionError("a plain credential in the config must be refused")
