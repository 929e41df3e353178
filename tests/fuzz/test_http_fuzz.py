"""A bounded, seeded mutation fuzz of every public endpoint of the gateway (issue 13, item 6).

The whole gateway (``init`` config with the simulator, the demo service, OIDC and kiosks) runs on a
real loopback port; every route the application has is fuzzed from a real message of its own (a signed
AuthnRequest, a token request, the simulator's client form, a signed useID, a kiosk state, ...; see
:func:`seeds`) with the mutations of :mod:`fuzz.http_mutate`. Asserted: no 5xx and no log record at
ERROR or above. A route without a seed fails the test, so a new endpoint cannot escape the fuzz.

Abuse limits are off (they would answer 429 before the handlers are reached) and the refresh does not
wait for a result (a waiting refresh would only make the run slow).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import zlib
from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from lxml import etree
from yarl import URL

from eid_gateway.app import create_app
from eid_gateway.config import GatewayConfig
from eid_gateway.eid.messages import Selection, UseIDRequest, build_use_id_request, soap_envelope
from eid_gateway.eid.wssec import sign_envelope
from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password
from helpers.gateway import Browser, Gateway, StartGateway, tc_token_url_of
from saml import AuthnRequest, build_authn_request, sign_message

from .http_mutate import Request, Seed, mutants

#: Requests per endpoint, the seed included: bodies get the most, a path or query of a page fewer.
BODY_COUNT = 150
QUERY_COUNT = 60
PLAIN_COUNT = 15
KIOSK_TOKEN = "kiosk-token-" + "k" * 40
STAFF = ("buergerbuero", "staff-secret")
#: Routes not fuzzed here, and why.
NOT_FUZZED = {
    "GET /kiosks/dashboard/events": "an event stream that stays open; its input is the staff credential only",
}


def _edit_config(text: str) -> str:
    assert "result_wait_seconds = 3.0" in text
    text = text.replace("result_wait_seconds = 3.0", "result_wait_seconds = 0")
    # the EUDI wallet's routes too: the demo service offers it (any certificate will do as trust list)
    text = text.replace(
        '\nid = "demo"\n', '\nid = "demo"\nmethods = ["card", "wallet"]\nlevel_of_assurance = "substantial"\n'
    )
    text = text.replace("late_result_grace_seconds = 2.0", "late_result_grace_seconds = 0")  # where it exists
    return (
        text
        + f'''
[wallet]
trust_list = "certs/wallet-request.crt"
signing_key = "certs/wallet-request.key"
signing_cert = "certs/wallet-request.crt"

[limits]
enabled = false

[kiosk_monitor]
staff_user = "{STAFF[0]}"
staff_password_hash = "{hash_staff_password(STAFF[1], n=2**14)}"

[[kiosks]]
id = "mitte-1"
name = "Bürgerbüro Mitte, Platz 1"
credential_hash = "{hash_kiosk_credential(KIOSK_TOKEN)}"
'''
    )


def public_routes(app: web.Application) -> Iterator[str]:
    """ "METHOD /pattern" of every route, sub-applications included (HEAD is fuzzed through GET)."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from public_routes(resource.get_info()["app"])  # its routes carry the prefix already
            continue
        for route in resource:
            if route.method != "HEAD":
                yield f"{route.method} {resource.canonical}"


def _cookie_header(browser: Browser, origin: str) -> str:
    cookies = browser.session.cookie_jar.filter_cookies(URL(origin))
    return "; ".join(f"{k}={m.value}" for k, m in cookies.items())


def _form_fields(page_text: str, action_part: str) -> list[tuple[str, str]]:
    import lxml.html

    doc = lxml.html.fromstring(page_text)
    for form in doc.forms:
        if action_part in str(form.action):
            return [(str(i.name), str(i.value)) for i in form.inputs if i.get("type") == "hidden" and i.name]
    raise AssertionError(f"no form posting to {action_part}")


async def seeds(gw: Gateway, browser: Browser) -> list[tuple[Seed, int]]:
    """One real request per route, made by the real parties (demo service, OIDC client, browser, kiosk)."""
    config: GatewayConfig = gw.config
    origin = gw.origin
    form_type = "application/x-www-form-urlencoded"

    # SAML: a signed HTTP-Redirect AuthnRequest from the demo service; the start page it leads to; its
    # replay, which the gateway answers with a signed error Response to the demo's ACS (a real SAMLResponse)
    login = await browser.get_no_follow(gw.url("/demo/login"))
    sso_url = login.headers["Location"]
    login.release()
    start = await browser.get(sso_url)
    assert start.status == 200 and "/signin/" in start.url, start.text[:300]
    replay = await browser.get(sso_url)
    acs_fields = _form_fields(replay.text, "/demo/acs")
    ref = urlsplit(start.url).path.rsplit("/", 1)[1]
    cancel_fields = _form_fields(start.text, "/cancel")
    tc_token_url = tc_token_url_of(start)
    browser_cookie = _cookie_header(browser, origin)
    # a second flow whose TC Token the simulator's client page fetches
    login2 = await browser.get_no_follow(gw.url("/demo/login"))
    second = await browser.get(login2.headers["Location"])
    login2.release()
    tc_token_url_2 = tc_token_url_of(second)
    # the EUDI wallet: a flow that chose it (its transaction id from the wallet page) and one about to
    wallet_flows = []
    for _ in range(2):
        login_w = await browser.get_no_follow(gw.url("/demo/login"))
        wallet_flows.append(await browser.get(login_w.headers["Location"]))
        login_w.release()
    chosen, choosing = wallet_flows
    chosen_ref = urlsplit(chosen.url).path.rsplit("/", 1)[1]
    wallet_page = await browser.submit(chosen, [i for i, f in enumerate(chosen.forms()) if "/wallet" in f.action][0])
    [tx] = set(re.findall(r"wallet%2Frequest%2F([A-Za-z0-9_-]{43})", wallet_page.text))
    choosing_ref = urlsplit(choosing.url).path.rsplit("/", 1)[1]

    assert config.demo.request_signing_key is not None
    authn = AuthnRequest(issuer=config.demo.entity_id, destination=gw.url("/saml/sso"), acs_url=gw.url("/demo/acs"))
    element = build_authn_request(authn)
    sign_message(element, config.demo.request_signing_key)
    saml_post = (("SAMLRequest", base64.b64encode(etree.tostring(element)).decode("ascii")), ("RelayState", "de"))

    # OIDC: the demo client's authorization request, a token request as a public client sends it
    oidc_login = await browser.get_no_follow(gw.url("/demo/oidc/login"))
    authorize_query = urlsplit(oidc_login.headers["Location"]).query
    oidc_login.release()
    token_fields = (
        ("grant_type", "authorization_code"),
        ("code", secrets.token_urlsafe(32)),
        ("redirect_uri", gw.url("/demo/oidc/callback")),
        ("client_id", "demo-oidc"),
        ("code_verifier", secrets.token_urlsafe(48)),
    )
    callback_query = urlencode({"code": secrets.token_urlsafe(32), "state": secrets.token_urlsafe(16), "iss": origin})

    # the eID-Interface: a useID signed with the gateway's client key, as the TR-03130 client sends it
    use_id = sign_envelope(
        soap_envelope(
            build_use_id_request(
                UseIDRequest(operations={"GivenNames": Selection.REQUIRED, "FamilyNames": Selection.ALLOWED})
            )
        ),
        config.keys.eid_client,
    )
    soap_headers = (("SOAPAction", '"http://bsi.bund.de/eID/useID"'),)

    sim_csrf = secrets.token_urlsafe(32)
    staff_csrf = secrets.token_urlsafe(32)
    kiosk_auth = (("Authorization", f"Bearer {KIOSK_TOKEN}"),)
    staff_auth = (("Authorization", "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()),)
    state = {"instance": "agent-run-1", "seq": 1, "queue": 0, "dropped": 0, "status": {"service": "ok", "readers": []}}
    with_cookie = (("Cookie", browser_cookie),)
    refresh_query = "ResultMajor=http://www.bsi.bund.de/ecard/api/1.1/resultmajor%23ok"

    def form(
        endpoint: str,
        path: str,
        fields: tuple[tuple[str, str], ...] | list[tuple[str, str]],
        headers: tuple[tuple[str, str], ...] = (),
    ) -> tuple[Seed, int]:
        return Seed(endpoint, "POST", path, fields=tuple(fields), content_type=form_type, headers=headers), BODY_COUNT

    def query(
        endpoint: str, path: str, q: str, headers: tuple[tuple[str, str], ...] = (), count: int = QUERY_COUNT
    ) -> tuple[Seed, int]:
        return Seed(endpoint, "GET", path, query=q, headers=headers, target="query"), count

    def in_path(endpoint: str, path: str, q: str = "", headers: tuple[tuple[str, str], ...] = ()) -> tuple[Seed, int]:
        return Seed(endpoint, "GET", path, query=q, headers=headers, target="path"), QUERY_COUNT

    def plain(endpoint: str, path: str, headers: tuple[tuple[str, str], ...] = ()) -> tuple[Seed, int]:
        return Seed(endpoint, "GET", path, query="lang=en", headers=headers, target="query"), PLAIN_COUNT

    def raw(
        endpoint: str,
        path: str,
        body: bytes,
        ctype: str,
        headers: tuple[tuple[str, str], ...],
        *,
        is_json: bool = False,
    ) -> tuple[Seed, int]:
        return Seed(
            endpoint, "POST", path, body=body, content_type=ctype, headers=headers, json_body=is_json
        ), BODY_COUNT

    sso_query = urlsplit(sso_url).query
    return [
        query("GET /saml/sso", "/saml/sso", sso_query),
        form("POST /saml/sso", "/saml/sso", saml_post),
        plain("GET /saml/metadata", "/saml/metadata"),
        query("GET /oidc/authorize", "/oidc/authorize", authorize_query),
        form("POST /oidc/authorize", "/oidc/authorize", parse_qsl(authorize_query, keep_blank_values=True)),
        form("POST /oidc/token", "/oidc/token", token_fields),
        query("GET /oidc/userinfo", "/oidc/userinfo", "", (("Authorization", "Bearer " + secrets.token_urlsafe(32)),)),
        form("POST /oidc/userinfo", "/oidc/userinfo", (("access_token", secrets.token_urlsafe(32)),)),
        plain("GET /.well-known/openid-configuration", "/.well-known/openid-configuration"),
        plain("GET /oidc/jwks", "/oidc/jwks"),
        in_path("GET /signin/{ref}", f"/signin/{ref}", "lang=en", with_cookie),
        form("POST /signin/{ref}/cancel", f"/signin/{ref}/cancel", cancel_fields, with_cookie),
        form("POST /eid/return/{ref}", f"/eid/return/{ref}", cancel_fields, with_cookie),
        in_path("GET /eid/tctoken/{ref}", urlsplit(tc_token_url).path),
        in_path("GET /eid/refresh/{ref}", f"/eid/refresh/{ref}", refresh_query, with_cookie),
        in_path("GET /eid/error/{ref}", f"/eid/error/{ref}", "", with_cookie),
        raw("POST /eid-sim/eID", "/eid-sim/eID", use_id, "text/xml; charset=utf-8", soap_headers),
        form(
            "POST /eid-sim/paos",
            "/eid-sim/paos",
            (
                ("SessionIdentifier", secrets.token_hex(16)),
                ("identity", "erika"),
                ("pin", "123456"),
                ("action", "confirm"),
            ),
        ),
        query("GET /eid-sim/client", "/eid-sim/client", urlencode({"tcTokenURL": tc_token_url_2})),
        form(
            "POST /eid-sim/client",
            "/eid-sim/client",
            (
                ("tcTokenURL", tc_token_url_2),
                ("csrf", sim_csrf),
                ("identity", "erika"),
                ("pin", "123456"),
                ("action", "confirm"),
            ),
            (("Cookie", f"eid_sim_csrf={sim_csrf}"),),
        ),
        form("POST /demo/acs", "/demo/acs", acs_fields),
        query("GET /demo/login", "/demo/login", "lang=en", count=PLAIN_COUNT),
        plain("GET /demo/", "/demo/"),
        in_path("GET /demo/legal/{page}", "/demo/legal/impressum"),
        plain("GET /demo/oidc/", "/demo/oidc/"),
        query("GET /demo/oidc/login", "/demo/oidc/login", "lang=en", count=PLAIN_COUNT),
        query("GET /demo/oidc/callback", "/demo/oidc/callback", callback_query),
        plain("GET /", "/"),
        in_path("GET /oidc/error/{reason}", "/oidc/error/unregistered_redirect_uri", "lang=en"),
        plain("GET /healthz", "/healthz"),
        plain("GET /readyz", "/readyz"),
        plain("GET /metrics", "/metrics"),
        plain("GET /favicon.ico", "/favicon.ico"),
        in_path("GET /static/{name}", "/static/style.css"),
        raw(
            "POST /kiosks/api/v1/kiosks/{kiosk_id}/state",
            "/kiosks/api/v1/kiosks/mitte-1/state",
            json.dumps(state).encode(),
            "application/json",
            kiosk_auth,
            is_json=True,
        ),
        raw(
            "POST /kiosks/api/v1/kiosks/{kiosk_id}/heartbeat",
            "/kiosks/api/v1/kiosks/mitte-1/heartbeat",
            json.dumps({k: state[k] for k in ("instance", "seq", "queue", "dropped")}).encode(),
            "application/json",
            kiosk_auth,
            is_json=True,
        ),
        raw(
            "POST /kiosks/api/v1/kiosks/{kiosk_id}/offline",
            "/kiosks/api/v1/kiosks/mitte-1/offline",
            json.dumps({k: state[k] for k in ("instance", "seq")}).encode(),
            "application/json",
            kiosk_auth,
            is_json=True,
        ),
        plain("GET /kiosks/api/v1/openapi.json", "/kiosks/api/v1/openapi.json"),
        plain("GET /kiosks/dashboard", "/kiosks/dashboard", staff_auth),
        plain("GET /kiosks/login", "/kiosks/login"),
        form(
            "POST /kiosks/login",
            "/kiosks/login",
            (("csrf_token", staff_csrf), ("name", STAFF[0]), ("password", STAFF[1])),
            (("Cookie", f"eid_kiosk_login={staff_csrf}"),),
        ),
        form("POST /kiosks/logout", "/kiosks/logout", (("csrf_token", staff_csrf),)),
        plain("GET /kiosks/status.json", "/kiosks/status.json", staff_auth),
        plain("GET /kiosks/metrics", "/kiosks/metrics", staff_auth),
        in_path("GET /kiosks/static/{name}", "/kiosks/static/dashboard.css"),
        in_path("GET /kiosks/history/{kiosk_id}", "/kiosks/history/mitte-1", "lang=en", staff_auth),
        form(
            "POST /kiosks/history/{kiosk_id}/export",
            "/kiosks/history/mitte-1/export",
            (("csrf_token", staff_csrf), ("format", "csv")),
            staff_auth,
        ),
        form(
            "POST /kiosks/admin/kiosks/{kiosk_id}/remove",
            "/kiosks/admin/kiosks/mitte-1/remove",
            (("csrf_token", staff_csrf),),
            staff_auth,
        ),
        # the wallet's endpoints in the order of a sign-in: its one answer ends the flow (no long waits after)
        form(
            "POST /signin/{ref}/wallet",
            f"/signin/{choosing_ref}/wallet",
            _form_fields(choosing.text, "/wallet"),
            with_cookie,
        ),
        in_path("GET /wallet/request/{tx}", f"/wallet/request/{tx}", "device=same"),
        form("POST /wallet/response/{tx}", f"/wallet/response/{tx}", (("response", "e30.e30.e30.e30.e30"),)),
        in_path("GET /signin/{ref}/wallet", f"/signin/{chosen_ref}/wallet", "lang=en", with_cookie),
        in_path("GET /signin/{ref}/wallet/status", f"/signin/{chosen_ref}/wallet/status", "", with_cookie),
        in_path("GET /wallet/done/{tx}", f"/wallet/done/{tx}", "", with_cookie),
    ]


async def _send(http: aiohttp.ClientSession, origin: str, req: Request) -> int:
    headers = dict(req.headers)
    skip: tuple[str, ...] = ()
    if req.content_type is None:
        skip = ("Content-Type",)
    else:
        headers["Content-Type"] = req.content_type
    async with http.request(
        req.method,
        URL(origin + req.target, encoded=True),
        data=req.body,
        headers=headers,
        skip_auto_headers=skip,
        allow_redirects=False,
    ) as resp:
        await resp.read()
        return resp.status


async def test_no_5xx_and_no_error_log_on_any_public_endpoint(
    start_gateway: StartGateway, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    apps: list[web.Application] = []

    def app_factory(config: GatewayConfig) -> web.Application:
        apps.append(create_app(config))
        return apps[0]

    gw = await start_gateway(app_factory=app_factory, edit_config=_edit_config)
    plan = await seeds(gw, browser)
    seeded = {seed.endpoint for seed, _ in plan}
    routes = set(public_routes(apps[0]))
    assert routes - seeded - set(NOT_FUZZED) == set(), "routes without a fuzz seed"
    assert seeded - routes == set(), "seeds of routes the gateway does not have"

    caplog.set_level(logging.INFO)
    statuses: dict[str, Counter[int]] = {}
    failures: list[str] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http:
        for seed, count in plan:
            counter = statuses.setdefault(seed.endpoint, Counter())
            for i, req in enumerate(mutants(seed, count, zlib.crc32(seed.endpoint.encode()))):
                status = await _send(http, gw.origin, req)
                counter[status] += 1
                if status >= 500:
                    failures.append(
                        f"{seed.endpoint} #{i} ({req.note}) -> {status}: {req.method} {req.target[:120]} "
                        f"{req.content_type!r} {(req.body or b'')[:120]!r}"
                    )
    errors = [f"{r.name}: {r.getMessage()[:200]}" for r in caplog.records if r.levelno >= logging.ERROR]

    total = sum(sum(c.values()) for c in statuses.values())
    print(f"\nHTTP fuzz: {total} requests over {len(statuses)} endpoints")
    for endpoint, counter in statuses.items():
        print(f"  {endpoint:52} {sum(counter.values()):4}  " + " ".join(f"{s}:{n}" for s, n in sorted(counter.items())))
    assert failures == [], f"{len(failures)} responses with 5xx:\n" + "\n".join(failures[:40])
    assert errors == [], f"{len(errors)} ERROR log records:\n" + "\n".join(errors[:40])
