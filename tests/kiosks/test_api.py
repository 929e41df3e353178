"""The kiosk API and staff endpoints over real HTTP (aiohttp test server on loopback)."""

import base64
import json

import pytest
from aiohttp import web

from cardreader.identify import card_info
from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
from cardreader.testing.vcard import NPA_ATR, npa_card_access
from eid_gateway.kiosks import create_kiosk_app
from eid_gateway.kiosks.keys import REGISTRY
from eid_gateway.web.middlewares import security_headers
from tr03110.security_infos import parse_security_infos

from .conftest import STAFF_PASSWORD, STAFF_USER, TOKENS, make_settings

_, CARD_INFO = card_info(NPA_ATR, parse_security_infos(npa_card_access()))
CARD = KioskSnapshot(ServiceState.OK, (ReaderStatus("Virtual PCD 00 00", ReaderState.ID_CARD, CARD_INFO),))
STAFF = {"Authorization": "Basic " + base64.b64encode(f"{STAFF_USER}:{STAFF_PASSWORD}".encode()).decode()}


def kiosk_auth(kiosk="mitte-1", token=None):
    return {"Authorization": f"Bearer {token or TOKENS[kiosk]}"}


def state_body(seq=1, snap=CARD, instance="agent-run-1"):
    return {"instance": instance, "seq": seq, "queue": 0, "dropped": 0, "status": snapshot_to_json(snap)}


@pytest.fixture
async def client(aiohttp_client):
    app = web.Application()
    kapp = create_kiosk_app(make_settings())
    app.add_subapp("/kiosks/", kapp)
    app.on_response_prepare.append(security_headers([], hsts=False))  # the gateway's own header hook
    c = await aiohttp_client(app)
    c.kapp = kapp
    return c


async def test_state_is_accepted_and_shown_in_status(client):
    r = await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(), headers=kiosk_auth())
    assert r.status == 200 and await r.json() == {"applied": True, "want_state": False}
    r = await client.get("/kiosks/status.json", headers=STAFF)
    doc = await r.json()
    row = next(k for k in doc["kiosks"] if k["id"] == "mitte-1")
    assert row["status"] == "id_card"
    assert row["readers"][0]["card_pace"] == "ECDH-GM-AES-CBC-CMAC-128 / brainpoolP256r1"
    assert doc["counts"] == {"id_card": 1, "unknown": 1}


async def test_retry_of_same_message_is_acknowledged_but_not_applied(client):
    h = kiosk_auth()
    await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(seq=5), headers=h)
    r = await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(seq=5), headers=h)
    assert r.status == 200 and (await r.json())["applied"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer forged-token-forged-token-forged-token-000"},
        {"Authorization": "Bearer " + TOKENS["nord-2"]},  # another kiosk's valid token
        {"Authorization": "Basic " + base64.b64encode(f"mitte-1:{TOKENS['mitte-1']}".encode()).decode()},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "forged", "other-kiosk", "wrong-scheme", "empty"],
)
async def test_forged_or_misplaced_credentials_are_refused(client, headers):
    r = await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(), headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await r.json())["error"] == "kiosk credential refused"
    reg = client.kapp[REGISTRY]
    row = reg.row("mitte-1")
    assert row["status"] == "credential_refused"  # shown as such, and nothing of the message recorded
    assert row["summary"] == "unknown" and row["last_seen"] is None
    assert reg.counters["auth_failure"] == 1


async def test_unknown_kiosk_is_refused_like_a_wrong_token(client):
    r = await client.post(
        "/kiosks/api/v1/kiosks/sued-9/heartbeat", json={"instance": "agent-run-1", "seq": 1}, headers=kiosk_auth()
    )
    assert r.status == 401


@pytest.mark.parametrize(
    "body, ctype, message",
    [
        (b"{not json", "application/json", "body is not JSON"),
        (b"[]", "application/json", "body must be a JSON object"),
        (json.dumps({"seq": 1}).encode(), "application/json", "instance must be"),
        (json.dumps({"instance": "agent-run-1"}).encode(), "application/json", "seq is required"),
        (json.dumps({"instance": "agent-run-1", "seq": -1}).encode(), "application/json", "seq must be"),
        (
            json.dumps(
                {
                    "instance": "agent-run-1",
                    "seq": 1,
                    "status": {"service": "ok", "readers": [{"name": "r", "state": "exploded"}]},
                }
            ).encode(),
            "application/json",
            r"readers[0].state has an unknown value",
        ),
        (json.dumps(state_body()).encode(), "text/plain", "content type must be application/json"),
    ],
)
async def test_bad_bodies_get_a_precise_error(client, body, ctype, message):
    r = await client.post(
        "/kiosks/api/v1/kiosks/mitte-1/state", data=body, headers={**kiosk_auth(), "Content-Type": ctype}
    )
    assert r.status == 400
    assert message in (await r.json())["error"]


async def test_oversize_body_is_refused(client):
    r = await client.post(
        "/kiosks/api/v1/kiosks/mitte-1/state",
        data=b"{" + b" " * 70_000 + b"}",
        headers={**kiosk_auth(), "Content-Type": "application/json"},
    )
    assert r.status == 413


async def test_heartbeat_asks_for_state_until_it_has_one(client):
    h = kiosk_auth("nord-2")
    r = await client.post(
        "/kiosks/api/v1/kiosks/nord-2/heartbeat", json={"instance": "agent-run-2", "seq": 1}, headers=h
    )
    assert await r.json() == {"applied": True, "want_state": True}
    await client.post("/kiosks/api/v1/kiosks/nord-2/state", json=state_body(2, instance="agent-run-2"), headers=h)
    r = await client.post(
        "/kiosks/api/v1/kiosks/nord-2/heartbeat", json={"instance": "agent-run-2", "seq": 3}, headers=h
    )
    assert await r.json() == {"applied": True, "want_state": False}


async def test_openapi_document(client):
    r = await client.get("/kiosks/api/v1/openapi.json")
    doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "/kiosks"}]
    assert set(doc["paths"]) == {
        "/api/v1/kiosks/{kiosk_id}/state",
        "/api/v1/kiosks/{kiosk_id}/heartbeat",
        "/api/v1/kiosks/{kiosk_id}/offline",
    }
    assert doc["components"]["securitySchemes"]["kioskToken"]["scheme"] == "bearer"
    # the schema's enum lists exactly the states the model knows
    states = doc["components"]["schemas"]["Reader"]["properties"]["state"]["enum"]
    assert set(states) == {s.value for s in ReaderState}


@pytest.mark.parametrize(
    "path", ["/kiosks/dashboard", "/kiosks/dashboard/events", "/kiosks/status.json", "/kiosks/metrics"]
)
async def test_staff_pages_need_the_staff_credential(client, path):
    r = await client.get(path, allow_redirects=False)
    if path == "/kiosks/dashboard":  # a browser without a session goes to the login page
        assert r.status == 303 and r.headers["Location"].startswith("/kiosks/login?lang=")
    else:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic realm=")
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{STAFF_USER}:guess".encode()).decode()}
    assert (await client.get(path, headers=wrong)).status == 401
    kiosk_token = {"Authorization": f"Bearer {TOKENS['mitte-1']}"}
    assert (await client.get(path, headers=kiosk_token)).status == 401


async def test_metrics_describe_kiosk_states(client):
    await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(), headers=kiosk_auth())
    await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(), headers={"Authorization": "Bearer x"})
    r = await client.get("/kiosks/metrics", headers=STAFF)
    text = await r.text()
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = [
        'eid_kiosk_up{kiosk="mitte-1"} 1.0',
        'eid_kiosk_up{kiosk="nord-2"} 0.0',
        'eid_kiosk_status{kiosk="mitte-1",status="id_card"} 1.0',
        'eid_kiosk_status{kiosk="nord-2",status="unknown"} 1.0',
        'eid_kiosks{status="id_card"} 1.0',
        'eid_kiosk_messages_total{kind="auth_failure"} 1.0',
        'eid_kiosk_messages_total{kind="state"} 1.0',
    ]
    assert [s for s in samples if s not in text] == [], text


async def test_dashboard_page_escapes_and_has_no_inline_script(client):
    evil = KioskSnapshot(ServiceState.OK, (ReaderStatus('<img src=x onerror="alert(1)">', ReaderState.EMPTY),))
    await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(snap=evil), headers=kiosk_auth())
    r = await client.get("/kiosks/dashboard", headers=STAFF)
    html = await r.text()
    assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "Bürgerbüro Nord &lt;Platz 2&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert '<script src="/kiosks/static/dashboard.js" defer></script>' in html
    assert html.count("<script") == 1  # the external file only
    assert '<noscript><meta http-equiv="refresh"' in html
    js = await client.get("/kiosks/static/dashboard.js")
    assert js.status == 200 and "innerHTML" not in (await js.text()).replace("never innerHTML", "")
    assert (await client.get("/kiosks/static/other.js")).status == 404


async def test_event_stream_sends_snapshot_then_changes(client):
    resp = await client.get("/kiosks/dashboard/events", headers=STAFF)
    assert resp.headers["Content-Type"].startswith("text/event-stream")

    async def next_event():
        name, data = None, None
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and name:
                return name, data

    name, data = await next_event()
    # rows come as HTML from the page's own row template (kiosk_parts.html)
    assert name == "snapshot" and [r.split('"')[1] for r in data["rows"]] == ["kiosk-mitte-1", "kiosk-nord-2"]
    assert 'id="counts"' in data["counts"] and "noch keine Meldung" in data["counts"]
    await client.post("/kiosks/api/v1/kiosks/mitte-1/state", json=state_body(), headers=kiosk_auth())
    name, data = await next_event()
    assert name == "kiosk" and data["id"] == "mitte-1" and ">Ausweis erkannt</span>" in data["row"]
    await client.post(
        "/kiosks/api/v1/kiosks/mitte-1/heartbeat", json={"instance": "agent-run-1", "seq": 9}, headers=kiosk_auth()
    )
    name, data = await next_event()
    assert name == "seen" and data["id"] == "mitte-1"
    resp.close()
