"""Two gateways from one `eid-gateway init` config on one port (SO_REUSEPORT), as the workers of
`eid-gateway serve --workers N` run: every request opens a new connection, so the steps of one sign-in
land on either of them. The simulator's sessions, the demo service's request and assertion IDs and the
demo OIDC client's pending sign-ins live in files both share, so every sign-in completes and a replayed
Response is refused by both."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.instance import write_example_config
from eid_gateway.simulator import run_simulated_client
from helpers.ports import free_port

from .test_embedded_default import _form

SIGN_INS = 4


def _tc_token_url(page: str) -> str:
    link = re.search(r'href="http://127\.0\.0\.1:24727/eID-Client\?tcTokenURL=([^"]+)"', page)
    assert link, page[:500]
    return unquote(link.group(1))


class TwoWorkers:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.origin = config.public_origin
        self.served = [0, 0]
        self.browser = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )

    async def card_step(self, page: str) -> str:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as ausweisapp:
            refresh = await run_simulated_client(ausweisapp, _tc_token_url(page), identity="erika")
        assert "ResultMajor=ok" in refresh
        return refresh


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[TwoWorkers]:
    port = free_port()
    config = load_config(write_example_config(tmp_path, f"http://127.0.0.1:{port}", port))
    assert config.simulator is not None and config.simulator.sessions is not None and config.demo.state is not None
    w = TwoWorkers(config)
    runners = []
    for index in range(2):
        app = create_app(config)  # its own connections, the same files

        async def count(request: web.Request, response: web.StreamResponse, index: int = index) -> None:
            w.served[index] += 1

        app.on_response_prepare.append(count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        runners.append(runner)
    try:
        yield w
    finally:
        await w.browser.close()
        for runner in runners:
            await runner.cleanup()


async def test_saml_sign_ins_cross_the_workers(workers: TwoWorkers) -> None:
    w, origin = workers, workers.origin
    for _ in range(SIGN_INS):
        login = await w.browser.get(f"{origin}/demo/login", allow_redirects=False)
        assert login.status == 302
        start = await w.browser.get(URL(login.headers["Location"], encoded=True))  # the signed query as sent
        assert start.status == 200, await start.text()
        refresh = await w.card_step(await start.text())
        answer = await w.browser.get(refresh)
        assert answer.status == 200
        action, fields = _form(await answer.text())
        assert action == f"{origin}/demo/acs"
        result = await w.browser.post(action, data=fields)
        assert result.status == 200 and "MUSTERMANN" in await result.text()
        for _ in range(2):  # the same Response again, at whichever worker: its IDs were used up
            again = await w.browser.post(action, data=fields)
            assert again.status == 400 and "MUSTERMANN" not in await again.text()
    assert min(w.served) > 0, w.served  # both workers answered parts of the sign-ins


async def test_oidc_sign_ins_cross_the_workers(workers: TwoWorkers) -> None:
    w, origin = workers, workers.origin
    for _ in range(SIGN_INS):
        start = await w.browser.get(f"{origin}/demo/oidc/login")  # -> authorize -> the gateway's start page
        assert start.status == 200 and "/signin/" in str(start.url), await start.text()
        refresh = await w.card_step(await start.text())
        done = await w.browser.get(refresh)  # -> the demo's callback: token, ID token, userinfo
        text = await done.text()
        assert done.status == 200 and "Angemeldet" in text and "MUSTERMANN" in text, text[:500]
        assert str(done.url).startswith(f"{origin}/demo/oidc/callback?")
        replay = await w.browser.get(done.url)  # the same state again: taken once, at either worker
        assert replay.status == 400
    assert min(w.served) > 0, w.served


def test_the_files_are_configured_relative_to_the_config_file(tmp_path: Path) -> None:
    path = write_example_config(tmp_path, "http://127.0.0.1:8080", 8080)
    config = load_config(path)
    assert config.simulator is not None and config.simulator.sessions == tmp_path / "data/simulator-sessions.sqlite3"
    assert config.demo.state == tmp_path / "data/demo-service.sqlite3"
    text = path.read_text(encoding="utf-8")
    for line in ('sessions = "data/simulator-sessions.sqlite3"\n', 'state = "data/demo-service.sqlite3"\n'):
        assert line in text
        text = text.replace(line, "")
    (tmp_path / "memory.toml").write_text(text, encoding="utf-8")
    memory = load_config(tmp_path / "memory.toml")  # without the keys: one process's memory
    assert memory.simulator is not None and memory.simulator.sessions is None and memory.demo.state is None
