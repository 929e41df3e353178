"""Issue 15: Node's openid-client 6 (npm, pinned in package-lock.json) as a real relying party of the
gateway, with a client secret and the library's default client authentication (client_secret_post).

tests/rp_node/rp.mjs is the relying party (the snippet of docs/integrations/openid-client.md); the test
starts a gateway with the client registered, asks rp.mjs for the authorization URL, plays the browser and
the card step, and hands the URL the browser lands on at the redirect URI back to rp.mjs, which prints
the checked ID token claims and userinfo (or the error the library raised) as JSON. ``./dev test``
installs Node's packages (``npm ci --prefix tests/rp_node``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from eid_gateway.frontends.oidc.client_secret import hash_client_secret, new_client_secret
from eid_gateway.identity import LevelOfAssurance
from eid_gateway.pseudonym import derive_pseudonym
from eid_gateway.simulator.identities import stable_restricted_id
from helpers.gateway import Browser, Gateway, Servers, StartGateway, ausweisapp, tc_token_url_of

RP_DIR = Path(__file__).resolve().parent
RP_SCRIPT = RP_DIR / "rp.mjs"
DOC = RP_DIR.parents[1] / "docs" / "integrations" / "openid-client.md"
CLIENT_ID = "node-rp"
#: One run of rp.mjs (Node start, discovery, one or two requests): well under a second here; generous
#: for a slow machine.
NODE_TIMEOUT = 20.0


def registration(redirect_uri: str, secret_hash: str) -> str:
    """The gateway's ``[[services]]`` table for the Node RP (docs/integrations/openid-client.md)."""
    return f"""
[[services]]
id = "{CLIENT_ID}"
name_de = "Bürgerportal (Node)"
name_en = "Citizen portal (Node)"
attributes = ["given_names", "family_names", "date_of_birth", "pseudonym"]
required = ["given_names", "family_names", "pseudonym"]

[services.oidc]
client_id = "{CLIENT_ID}"
redirect_uris = ["{redirect_uri}"]
token_endpoint_auth_method = "client_secret_post"
client_secret_hash = "{secret_hash}"
"""


def node() -> str:
    """The node binary and the installed packages, or a failure that says how to get them."""
    found = shutil.which("node")
    if found is None:
        pytest.fail(
            "node is not installed: `./dev test` installs it (Debian's nodejs; openid-client 6 needs Node >= 20)"
        )
    if not (RP_DIR / "node_modules" / "openid-client" / "package.json").is_file():
        pytest.fail("tests/rp_node/node_modules is missing: `./dev test` installs it (npm ci --prefix tests/rp_node)")
    return found


@dataclass
class NodeRp:
    """rp.mjs with one client's settings; each call is one Node process printing one JSON line."""

    gateway: Gateway
    secret: str
    redirect_uri: str

    async def run(self, *args: str) -> tuple[int, dict[str, Any]]:
        env = {
            **os.environ,
            "EIDGW_ISSUER": self.gateway.origin,
            "EIDGW_CLIENT_ID": CLIENT_ID,
            "EIDGW_CLIENT_SECRET": self.secret,
            "EIDGW_REDIRECT_URI": self.redirect_uri,
            "EIDGW_ALLOW_HTTP": "1",
        }
        proc = await asyncio.create_subprocess_exec(
            node(),
            str(RP_SCRIPT),
            *args,
            cwd=RP_DIR,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"node rp.mjs {args[0]} did not finish within {NODE_TIMEOUT} s") from None
        assert proc.returncode in (0, 2) and out, f"rp.mjs {args[0]} exited {proc.returncode}: {err.decode()}"
        answer: dict[str, Any] = json.loads(out)
        return proc.returncode, answer

    async def authorize(self) -> tuple[str, dict[str, str]]:
        code, answer = await self.run("authorize")
        assert code == 0, answer
        return answer["url"], answer["session"]

    async def callback(self, current_url: str, session: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return await self.run("callback", current_url, json.dumps(session))


async def start_rp(start_gateway: StartGateway, servers: Servers, extra_registration: str = "") -> NodeRp:
    """The gateway with the client registered (``extra_registration``: more lines for its
    ``[services.oidc]`` table), and the RP's redirect URI: an endpoint that only answers 200, so that the
    browser's journey ends there and its URL is what the RP application receives."""
    node()  # fail first, and clearly, without Node or its packages

    async def landed(request: web.Request) -> web.Response:
        return web.Response(text="back at the relying party")

    app = web.Application()
    app.router.add_get("/callback", landed)
    redirect_uri = await servers.serve(app) + "/callback"
    secret = new_client_secret()
    block = registration(redirect_uri, hash_client_secret(secret)) + extra_registration + "\n"
    gateway = await start_gateway(edit_config=lambda text: text + block)
    return NodeRp(gateway, secret, redirect_uri)


async def start_page(browser: Browser, rp: NodeRp) -> tuple[Any, dict[str, str], dict[str, list[str]]]:
    url, session = await rp.authorize()
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path == "/oidc/authorize", url
    assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == [rp.redirect_uri]
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [session["state"]]
    assert query["nonce"] == [session["nonce"]] and query["scope"] == ["openid profile"]
    page = await browser.get(url)
    assert page.status == 200 and page.url.startswith(rp.gateway.origin + "/signin/"), page.text
    assert "Bürgerportal (Node)" in page.text
    return page, session, query


def landed_at_rp(browser: Browser, rp: NodeRp) -> str:
    [url] = [u for u in browser.history if u.startswith(rp.redirect_uri + "?")]
    return url


async def test_sign_in_with_openid_client(start_gateway: StartGateway, browser: Browser, servers: Servers) -> None:
    rp = await start_rp(start_gateway, servers)
    start, session, _ = await start_page(browser, rp)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    assert "ResultMajor=ok" in step.next_url
    browser.history.clear()
    page = await browser.get(step.next_url)
    assert page.status == 200 and page.text == "back at the relying party"
    current = landed_at_rp(browser, rp)
    assert set(parse_qs(urlsplit(current).query)) == {"code", "state", "iss"}

    code, answer = await rp.callback(current, session)
    assert code == 0, answer  # the code exchange with client_secret_post, the ID token's checks, userinfo
    claims, userinfo = answer["claims"], answer["userinfo"]
    pseudonym = derive_pseudonym(rp.gateway.config.keys.pseudonym_secret, CLIENT_ID, stable_restricted_id("erika").id)
    assert claims["sub"] == pseudonym and claims["iss"] == rp.gateway.origin and claims["aud"] == CLIENT_ID
    assert claims["nonce"] == session["nonce"] and claims["acr"] == LevelOfAssurance.HIGH.value
    assert userinfo["sub"] == pseudonym
    assert userinfo["family_name"] == "MUSTERMANN" and userinfo["given_name"] == "ERIKA"
    assert userinfo["birthdate"] == "1964-08-12"
    assert "address" not in userinfo  # scope "profile": nothing beyond it is released
    # openid-client does not check the signature of an ID token it got from the token endpoint itself
    # (OIDC Core 3.1.3.7): check it here against the published JWKS, with the default ES256
    async with browser.session.get(rp.gateway.url("/oidc/jwks")) as resp:
        keys = KeySet.import_key_set(await resp.json())
    decoded = jwt.decode(answer["id_token"], keys, registry=JWSRegistry(algorithms=["ES256"]))
    assert decoded.claims["sub"] == pseudonym and decoded.claims["at_hash"]


#: The library's refusal of a redirect whose ``iss`` is wrong or missing (oauth4webapi's message, which
#: openid-client wraps in a ClientError).
WRONG_ISS = 'unexpected "iss" (issuer) response parameter value'
MISSING_ISS = 'response parameter "iss" (issuer) missing'


@pytest.mark.parametrize(
    "variant", ["as sent", "forged iss", "error_response_iss = false"], ids=["as-sent", "forged-iss", "no-iss-switch"]
)
async def test_cancel_raises_access_denied(
    start_gateway: StartGateway, browser: Browser, servers: Servers, variant: str
) -> None:
    """Cancelling on the start page: the library raises the error response's access_denied, after it
    checked ``iss`` (RFC 9207). An error response naming another issuer is refused as such, and so is
    one without ``iss``: mod_auth_openidc's compatibility switch must stay off for openid-client."""
    rp = await start_rp(start_gateway, servers, extra_registration=variant if "=" in variant else "")
    start, session, _ = await start_page(browser, rp)
    browser.history.clear()
    page = await browser.submit(start)  # the start page's only form: "Abbrechen und zurück zum Dienst"
    assert page.status == 200 and page.text == "back at the relying party"
    current = landed_at_rp(browser, rp)
    params = parse_qs(urlsplit(current).query)
    assert params["error"] == ["access_denied"] and params["state"] == [session["state"]]
    assert "code" not in params
    assert params.get("iss") == (None if variant == "error_response_iss = false" else [rp.gateway.origin])
    if variant == "forged iss":
        params["iss"] = ["http://attacker.example"]
        current = rp.redirect_uri + "?" + urlencode(params, doseq=True)

    code, answer = await rp.callback(current, session)
    assert code == 2, answer
    if variant == "as sent":
        assert answer["name"] == "AuthorizationResponseError", answer
        assert answer["error"] == "access_denied", answer
        assert answer["error_description"] == "the citizen cancelled the sign-in", answer
    else:
        assert answer["name"] == "ClientError" and "error" not in answer, answer
        assert answer["cause"]["code"] == "OAUTH_INVALID_RESPONSE", answer
        assert answer["cause"]["message"] == (WRONG_ISS if variant == "forged iss" else MISSING_ISS), answer


def test_the_docs_show_the_code_the_test_runs() -> None:
    """docs/integrations/openid-client.md shows rp.mjs's snippet unchanged."""
    source = RP_SCRIPT.read_text(encoding="utf-8")
    begin, end = "// --- the snippet of docs/integrations/openid-client.md", "// --- end of the snippet"
    snippet = source[source.index("\n", source.index(begin)) + 1 : source.index(end)]
    assert snippet.count("\n") > 30 and "client.discovery(" in snippet
    assert snippet in DOC.read_text(encoding="utf-8")
