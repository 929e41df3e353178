"""The embedded default exactly as `eid-gateway init` + `serve` run it: demo service → SAML IdP → start
page → simulated AusweisApp → refresh → signed, encrypted SAML Response → demo result page."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from urllib.parse import unquote

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from eid_gateway.app import create_app
from eid_gateway.config import load_config
from eid_gateway.instance import write_example_config
from eid_gateway.simulator import run_simulated_client
from helpers.ports import free_port


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert action, page[:500]
    fields = {
        html_lib.unescape(m.group(1)): html_lib.unescape(m.group(2))
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }
    return html_lib.unescape(action.group(1)), fields


async def test_demo_sign_in_through_the_whole_gateway(tmp_path: Path) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = load_config(write_example_config(tmp_path, origin, port))
    app = create_app(config)
    client = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await client.start_server()
    try:
        # 1. the demo service sends the citizen to the gateway (AuthnRequest), which shows the start page
        login = await client.get("/demo/login", allow_redirects=False)
        assert login.status in (302, 303), await login.text()
        # Request the Location exactly as sent (yarl would re-encode the query and break the
        # HTTP-Redirect signature, which is computed over the raw query string; browsers do not).
        sso = await client.session.get(URL(login.headers["Location"], encoded=True))
        start = sso
        assert start.status == 200, await start.text()
        assert str(start.url).startswith(f"{origin}/signin/")
        page = await start.text()
        assert "Meldebescheinigung beantragen" in page
        link = re.search(r'href="http://127\.0\.0\.1:24727/eID-Client\?tcTokenURL=([^"]+)"', page)
        assert link
        tc_token_url = unquote(link.group(1))

        # 2. AusweisApp (a separate client without the browser's cookies) does the card step
        async with aiohttp.ClientSession() as ausweisapp:
            refresh = await run_simulated_client(ausweisapp, tc_token_url, identity="erika")
        assert "ResultMajor=ok" in refresh

        # 3. the browser comes back; the gateway answers the demo service with a SAML Response (POST form)
        answer = await client.get(refresh[len(origin) :])
        assert answer.status == 200
        action, fields = _form(await answer.text())
        assert action == f"{origin}/demo/acs" and "SAMLResponse" in fields
        csp = answer.headers["Content-Security-Policy"]
        assert f"form-action 'self' {origin}/demo/acs" in csp

        # 4. the demo service verifies and decrypts it and shows the released data
        result = await client.post("/demo/acs", data=fields)
        text = await result.text()
        assert result.status == 200, text
        assert "ERIKA" in text and "MUSTERMANN" in text
    finally:
        await client.close()
