"""Named staff accounts with roles, the login page (CSRF, lockout, server-side session with a TTL),
logout, the scrape token for /kiosks/metrics and `eid-gateway kiosk-staff add`, in the composed gateway
configured from its TOML file."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import create_app
from eid_gateway.cli import main as cli_main
from eid_gateway.config import ConfigError, load_config
from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password, verify_staff_password
from eid_gateway.store.sqlite import SqliteStore
from helpers.clocks import FakeClock

from .test_gateway_wiring import KIOSK_TOKEN, kiosk_config

VIEWER, VIEWER_PW = "anna.schmidt", "view-password-0123"
ADMIN, ADMIN_PW = "it-admin", "admin-password-4567"
SCRAPE_TOKEN = "scrape-" + "s" * 40
SESSION_MINUTES = 30
PER_ADDRESS = 5  # the documented default of eid_gateway/kiosks/lockout.py
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def staff_toml(extra: str = "") -> str:
    cheap = 2**14  # the cheapest accepted scrypt keeps the tests fast
    return f'''
[kiosk_monitor]
metrics_token_hash = "{hash_kiosk_credential(SCRAPE_TOKEN)}"
session_minutes = {SESSION_MINUTES}
{extra}
[[kiosk_monitor.staff]]
name = "{VIEWER}"
password_hash = "{hash_staff_password(VIEWER_PW, n=cheap)}"

[[kiosk_monitor.staff]]
name = "{ADMIN}"
role = "admin"
password_hash = "{hash_staff_password(ADMIN_PW, n=cheap)}"

[[kiosks]]
id = "mitte-1"
name = "Bürgerbüro Mitte, Platz 1"
credential_hash = "{hash_kiosk_credential(KIOSK_TOKEN)}"
'''


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TestClient]:
    config = load_config(kiosk_config(tmp_path, staff_toml()))
    c = TestClient(TestServer(create_app(config, store=SqliteStore(tmp_path / "store.sqlite3", clock=clock))))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def login_form(client: TestClient, lang: str = "de") -> str:
    """Open the login page (its CSRF cookie lands in the client's jar); the form's token."""
    page = await client.get(f"/kiosks/login?lang={lang}")
    assert page.status == 200
    found = CSRF.search(await page.text())
    assert found is not None
    return found.group(1)


async def sign_in(client: TestClient, name: str, password: str, *, address: str = "203.0.113.20"):
    token = await login_form(client)
    return await client.post(
        "/kiosks/login?lang=de",
        data={"csrf_token": token, "name": name, "password": password},
        headers={"X-Forwarded-For": address},
        allow_redirects=False,
    )


def set_cookie(resp, name: str) -> str:
    headers = [h for h in resp.headers.getall("Set-Cookie", []) if h.startswith(name + "=")]
    assert len(headers) == 1, resp.headers.getall("Set-Cookie", [])
    return headers[0]


async def test_the_login_page_is_german_and_english_in_the_gateways_layout(client: TestClient) -> None:
    for lang, title, field in (("de", "Anmeldung für Mitarbeitende", "Passwort"), ("en", "Staff sign-in", "Password")):
        page = await client.get(f"/kiosks/login?lang={lang}")
        html = await page.text()
        assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
        assert f'<html lang="{lang}">' in html and f"<h1>{title}</h1>" in html and field in html
        assert 'class="site-header"' in html and "/static/style.css" in html  # the gateway's base layout
        assert 'autocomplete="current-password"' in html
        cookie = set_cookie(page, "eid_kiosk_login")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kiosks/" in cookie
        token = CSRF.search(html)
        assert token is not None and f"eid_kiosk_login={token.group(1)};" in cookie


async def test_sign_in_opens_the_dashboard_with_a_server_side_session(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="eid_gateway")
    resp = await sign_in(client, VIEWER, VIEWER_PW)
    assert resp.status == 303 and resp.headers["Location"] == "/kiosks/dashboard?lang=de"
    cookie = set_cookie(resp, "eid_kiosk_staff")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kiosks/" in cookie
    assert f"Max-Age={SESSION_MINUTES * 60}" in cookie
    assert "Secure" not in cookie  # http origin (development); see the https test below
    session_id = resp.cookies["eid_kiosk_staff"].value
    board = await client.get("/kiosks/dashboard?lang=de", allow_redirects=False)
    text = await board.text()
    assert board.status == 200 and "Bürgerbüro Mitte, Platz 1" in text
    assert f"Angemeldet als {VIEWER} (Ansicht)" in text and "Abmelden" in text
    # the event stream and status.json take the session too
    assert (await client.get("/kiosks/status.json")).status == 200
    # the store keeps a hash of the session id, never the id itself
    with sqlite3.connect(tmp_path / "store.sqlite3") as db:
        rows = db.execute("SELECT key, value FROM kv WHERE ns = 'kiosk_staff_session'").fetchall()
    assert [key for key, _ in rows] == [hashlib.sha256(session_id.encode()).hexdigest()]
    assert session_id not in rows[0][1] and '"role": "view"' in rows[0][1]
    # the log says a sign-in happened and the role, never the name
    assert "staff signed in to the kiosk dashboard role=view" in caplog.text and VIEWER not in caplog.text


async def test_roles_view_and_admin_both_see_the_dashboard_named_by_role(client: TestClient) -> None:
    """Both roles sign in and the page names the role; the board itself only shows (its one form is the
    logout): the admin actions are on a kiosk's history page (tests/kiosks/test_history_admin.py)."""
    for name, password, role in ((VIEWER, VIEWER_PW, "Ansicht"), (ADMIN, ADMIN_PW, "Verwaltung")):
        client.session.cookie_jar.clear()
        assert (await sign_in(client, name, password)).status == 303
        text = await (await client.get("/kiosks/dashboard?lang=de")).text()
        assert f"Angemeldet als {name} ({role})" in text
        assert re.findall(r'<form[^>]*action="([^"]+)"', text) == ["/kiosks/logout?lang=de"]


async def test_logout_ends_the_session_on_the_server(client: TestClient) -> None:
    assert (await sign_in(client, ADMIN, ADMIN_PW)).status == 303
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/kiosks/"))["eid_kiosk_staff"].value
    board = await (await client.get("/kiosks/dashboard")).text()
    found = CSRF.search(board)
    assert found is not None
    # without the session's token, logout is refused (a cross-site form cannot sign staff out)
    forged = await client.post("/kiosks/logout", data={"csrf_token": "x" * 43}, allow_redirects=False)
    assert forged.status == 403
    assert (await client.get("/kiosks/dashboard", allow_redirects=False)).status == 200
    out = await client.post("/kiosks/logout?lang=en", data={"csrf_token": found.group(1)}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/kiosks/login?lang=en&signed_out=1"
    assert "eid_kiosk_staff=" in set_cookie(out, "eid_kiosk_staff") and "Max-Age=0" in set_cookie(
        out, "eid_kiosk_staff"
    )
    page = await client.get(out.headers["Location"])
    assert "You are signed out." in await page.text()
    # the old cookie, replayed, no longer signs anyone in
    replay = await client.get("/kiosks/dashboard", cookies={"eid_kiosk_staff": stolen}, allow_redirects=False)
    assert replay.status == 303 and replay.headers["Location"].startswith("/kiosks/login")


async def test_the_session_ends_after_its_ttl(client: TestClient, clock: FakeClock) -> None:
    assert (await sign_in(client, VIEWER, VIEWER_PW)).status == 303
    clock.advance(SESSION_MINUTES * 60 - 5)
    assert (await client.get("/kiosks/dashboard", allow_redirects=False)).status == 200
    clock.advance(10)
    assert (await client.get("/kiosks/dashboard", allow_redirects=False)).status == 303


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cookie"])
async def test_a_login_without_the_matching_csrf_token_is_refused(client: TestClient, case: str) -> None:
    token = await login_form(client)
    data = {"name": VIEWER, "password": VIEWER_PW}
    if case == "wrong token":
        data["csrf_token"] = token[::-1]
    elif case == "no cookie":
        data["csrf_token"] = token
        client.session.cookie_jar.clear()
    resp = await client.post("/kiosks/login", data=data, allow_redirects=False)
    text = await resp.text()
    assert resp.status == 403 and "Das Formular war veraltet" in text
    assert "eid_kiosk_staff" not in resp.cookies
    assert (await client.get("/kiosks/dashboard", allow_redirects=False)).status == 303


async def test_malformed_login_bodies_get_4xx_pages(client: TestClient) -> None:
    await login_form(client)
    for body, ctype in ((b"\xff\xfe", "application/x-www-form-urlencoded"), (b"{}", "application/json")):
        resp = await client.post("/kiosks/login", data=body, headers={"Content-Type": ctype})
        assert 400 <= resp.status < 500 and "<h1>" in await resp.text()


async def test_wrong_passwords_are_locked_out_by_the_existing_rules(client: TestClient) -> None:
    attacker, desk = "198.51.100.7", "203.0.113.20"
    statuses = []
    for i in range(PER_ADDRESS + 1):
        resp = await sign_in(client, VIEWER, f"guess-{i}", address=attacker)
        statuses.append(resp.status)
        if resp.status == 401:
            assert "Benutzername oder Passwort ist falsch" in await resp.text()
    assert statuses == [401] * (PER_ADDRESS - 1) + [429, 429], statuses
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "Zu viele fehlgeschlagene Anmeldungen" in await resp.text()
    # the right password from the locked address waits too; an unknown name counts like a known one
    assert (await sign_in(client, VIEWER, VIEWER_PW, address=attacker)).status == 429
    # the same lock holds for HTTP basic (machines) from that address
    basic = "Basic " + base64.b64encode(f"{VIEWER}:{VIEWER_PW}".encode()).decode()
    locked = await client.get("/kiosks/status.json", headers={"Authorization": basic, "X-Forwarded-For": attacker})
    assert locked.status == 429
    # staff at their own desk still get in
    assert (await sign_in(client, VIEWER, VIEWER_PW, address=desk)).status == 303


async def test_an_unknown_name_is_refused_like_a_wrong_password(client: TestClient) -> None:
    resp = await sign_in(client, "nobody", VIEWER_PW)
    assert resp.status == 401 and "Benutzername oder Passwort ist falsch" in await resp.text()


async def test_the_scrape_token_reads_metrics_only(client: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    metrics = await client.get("/kiosks/metrics", headers=bearer)
    assert metrics.status == 200 and 'eid_kiosk_up{kiosk="mitte-1"} 0.0' in await metrics.text()
    wrong = await client.get("/kiosks/metrics", headers={"Authorization": "Bearer " + "w" * 47})
    assert wrong.status == 401
    kiosk = await client.get("/kiosks/metrics", headers={"Authorization": f"Bearer {KIOSK_TOKEN}"})
    assert kiosk.status == 401
    for path in ("/kiosks/status.json", "/kiosks/dashboard/events"):
        assert (await client.get(path, headers=bearer)).status == 401, path
    board = await client.get("/kiosks/dashboard", headers=bearer, allow_redirects=False)
    assert board.status == 401
    # a staff sign-in still reads metrics (no scraper needed to look)
    basic = "Basic " + base64.b64encode(f"{ADMIN}:{ADMIN_PW}".encode()).decode()
    assert (await client.get("/kiosks/metrics", headers={"Authorization": basic})).status == 200


async def test_cookies_are_secure_on_an_https_origin(tmp_path: Path) -> None:
    path = kiosk_config(tmp_path, staff_toml())
    path.write_text(
        path.read_text(encoding="utf-8").replace("http://127.0.0.1:8080", "https://gateway.example"),
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.secure_origin
    c = TestClient(TestServer(create_app(config, store=SqliteStore(tmp_path / "s.sqlite3"))))
    await c.start_server()
    try:
        page = await c.get("/kiosks/login")
        assert "Secure" in set_cookie(page, "eid_kiosk_login")
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("extra", "accounts", "expected"),
    [
        ("", f'[[kiosk_monitor.staff]]\nname = "a"\nrole = "root"\npassword_hash = "{"x"}"\n', "kiosk_monitor.staff"),
        ("", "", "no staff account"),
        ('staff_user = "a"\n', "", "staff_user and staff_password_hash go together"),
    ],
)
def test_staff_account_config_problems_are_named(tmp_path: Path, extra: str, accounts: str, expected: str) -> None:
    path = kiosk_config(tmp_path, f"\n[kiosk_monitor]\n{extra}\n{accounts}")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert any(expected in e for e in exc.value.errors), exc.value.errors


def test_duplicate_staff_names_are_refused(tmp_path: Path) -> None:
    h = hash_staff_password("x" * 12, n=2**14)
    one = f'[[kiosk_monitor.staff]]\nname = "a"\npassword_hash = "{h}"\n'
    path = kiosk_config(tmp_path, f"\n[kiosk_monitor]\n{one}{one}")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "kiosk_monitor.staff[1].name: duplicate staff account 'a'" in exc.value.errors


def test_kiosk_staff_add_writes_the_hash_and_prints_the_password_once(tmp_path: Path) -> None:
    path = kiosk_config(tmp_path, staff_toml())
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(
        ["kiosk-staff", "add", "bernd.meier", "--role", "view", "--config", str(path)], stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    password = out.getvalue().rsplit(": ", 1)[1].strip()
    assert len(password) == 20
    text = path.read_text(encoding="utf-8")
    assert password not in text
    accounts = {a.name: a for a in load_config(path).kiosks.staff_accounts()}  # type: ignore[union-attr]
    assert accounts["bernd.meier"].role == "view"
    assert verify_staff_password(password, accounts["bernd.meier"].password_hash)
    assert accounts["bernd.meier"].password_hash.startswith("scrypt$16384$8$1$")  # client_secret.py's hash
    # the same name again would make the config invalid: refused, nothing written
    again = cli_main(["kiosk-staff", "add", "bernd.meier", "--config", str(path)], stdout=io.StringIO(), stderr=err)
    assert again == 2 and "duplicate staff account" in err.getvalue()
    assert path.read_text(encoding="utf-8") == text


def test_kiosk_staff_add_without_config_prints_the_block() -> None:
    out = io.StringIO()
    assert cli_main(["kiosk-staff", "add", "c.d", "--role", "admin"], stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue().startswith('[[kiosk_monitor.staff]]\nname = "c.d"\nrole = "admin"\npassword_hash = "scrypt$')


async def test_a_removed_accounts_session_ends_with_the_restart_that_removes_it(tmp_path: Path) -> None:
    """Two gateways on one store file: the second is the first restarted without the viewer's account."""
    store_file = tmp_path / "store.sqlite3"
    before = load_config(kiosk_config(tmp_path / "before", staff_toml()))
    c = TestClient(TestServer(create_app(before, store=SqliteStore(store_file))))
    await c.start_server()
    try:
        assert (await sign_in(c, VIEWER, VIEWER_PW)).status == 303
        session = c.session.cookie_jar.filter_cookies(c.make_url("/kiosks/"))["eid_kiosk_staff"].value
    finally:
        await c.close()
    text = staff_toml().replace(f'name = "{VIEWER}"', 'name = "someone.else"')
    after = load_config(kiosk_config(tmp_path / "after", text))
    c = TestClient(TestServer(create_app(after, store=SqliteStore(store_file))))
    await c.start_server()
    try:
        gone = await c.get("/kiosks/dashboard", cookies={"eid_kiosk_staff": session}, allow_redirects=False)
        assert gone.status == 303 and gone.headers["Location"].startswith("/kiosks/login")
        assert (await c.get("/kiosks/status.json", cookies={"eid_kiosk_staff": session})).status == 401
    finally:
        await c.close()


async def test_the_documented_alert_rules_use_exported_metrics_and_states(client: TestClient) -> None:
    """docs/kiosks.md's Prometheus rules name only metrics the gateway exports and status words it uses."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kiosks.md").read_text(encoding="utf-8")
    rules = doc.split("groups:\n", 1)[1].split("```", 1)[0]
    exported = await (await client.get("/kiosks/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})).text()
    names = set(re.findall(r"^# TYPE (\w+) ", exported, re.M))
    words = set(re.findall(r'status="(\w+)"', exported))
    used_names = set(re.findall(r"expr: .*?\b(eid_\w+)", rules)) | set(re.findall(r"\((eid_\w+)\)", rules))
    used_words = {w for group in re.findall(r'status=~?"([\w|]+)"', rules) for w in group.split("|")}
    assert used_names and used_names <= names, used_names - names
    assert {"offline", "credential_refused", "unknown"} <= used_words <= words, used_words - words
    assert "expr: eid_kiosk_up == 0\n        for: 1m" in rules


async def test_an_unknown_name_costs_the_same_scrypt_run(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unknown name is checked against a hash with the accounts' scrypt cost, so the answer's time does
    not tell which names exist."""
    from eid_gateway.kiosks import auth

    seen: list[str] = []
    real = auth.verify_staff_password

    def recording(password: str, stored: str) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_staff_password", recording)
    assert (await sign_in(client, VIEWER, "wrong")).status == 401
    assert (await sign_in(client, "nobody", "wrong")).status == 401
    known, unknown = (h.split("$") for h in seen)
    assert unknown[1:4] == known[1:4] and len(unknown[5]) == len(known[5]) and unknown[5] != known[5]
