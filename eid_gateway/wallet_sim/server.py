"""The wallet-sim's HTTP side: the same-device wallet page, cross-device ``POST /present``, the PID
provider's status list and CA certificate, and test controls (TEST FACILITY: bind it to loopback).

- ``GET /authorize?client_id=..&request_uri=..``: the wallet page (German / English, ``?lang=en``): who
  asks, for which claims, one button per test person and "Ablehnen"; a POST (with a CSRF token bound to
  a cookie) presents and sends the browser on to the verifier's ``redirect_uri`` (same-device).
- ``POST /present`` (JSON ``{invocation_url, person, tamper}``): present without a browser (cross-device).
- ``GET /status/1``: the Token Status List (``application/statuslist+jwt``); ``GET /ca.pem``: the CA.
- ``POST /admin/revoke?idx=N[&value=0]``, ``POST /admin/status?mode=ok|unavailable|garbage``,
  ``GET /persons``: controls and facts for tests.
"""

from __future__ import annotations

import hmac
import html
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from eid_gateway.wallet_sim.pid_provider import StatusList
from eid_gateway.wallet_sim.wallet import HTTP_TIMEOUT, Tamper, TestWallet, VerifierRequest, WalletRequestError

STATUS_PATH: Final = "/status/1"
CSRF_COOKIE: Final = "wallet_sim_csrf"
STATUS_MODES: Final = ("ok", "unavailable", "garbage")

_TEXT: Final[dict[str, dict[str, str]]] = {
    "de": {
        "title": "Test-Wallet (EUDI) – Daten freigeben",
        "h1": "Test-Wallet: Daten freigeben",
        "test_only": "Nur für Tests und die Vorführung: alle Personen sind erfunden.",
        "asker": "Anfragender Dienst (Client-ID)",
        "asked": "Erbetene Angaben aus Ihrer PID",
        "nothing": "Keine Angaben: nur der Nachweis, dass Sie diese Wallet besitzen.",
        "share": "Als {name} freigeben",
        "decline": "Ablehnen",
        "tamper": "Testfall: Fehlverhalten der Wallet",
        "tamper_none": "keiner (korrekte Antwort)",
        "other_lang": "English",
        "bad_request": "Diese Anfrage kann die Test-Wallet nicht beantworten",
        "sent": "Antwort gesendet",
        "sent_text": "Die Wallet hat geantwortet. Sie können zum Dienst zurückkehren (anderes Gerät).",
        "refused": "Der Dienst hat die Antwort abgelehnt (HTTP {status}).",
        "csrf": "Das Formular ist abgelaufen oder ungültig. Bitte öffnen Sie die Anfrage erneut.",
    },
    "en": {
        "title": "Test wallet (EUDI) – share data",
        "h1": "Test wallet: share data",
        "test_only": "For tests and the demo only: all people are fictitious.",
        "asker": "Requesting service (client ID)",
        "asked": "Data requested from your PID",
        "nothing": "No data: only proof that you hold this wallet.",
        "share": "Share as {name}",
        "decline": "Decline",
        "tamper": "Test case: wallet misbehaviour",
        "tamper_none": "none (correct answer)",
        "other_lang": "Deutsch",
        "bad_request": "The test wallet cannot answer this request",
        "sent": "Answer sent",
        "sent_text": "The wallet has answered. You can return to the service (other device).",
        "refused": "The service refused the answer (HTTP {status}).",
        "csrf": "The form has expired or is invalid. Please open the request again.",
    },
}

#: Readable names of the PID claims on the page (the claim path is shown too).
_CLAIM_NAMES: Final[dict[str, tuple[str, str]]] = {
    "given_name": ("Vorname(n)", "Given name(s)"),
    "family_name": ("Familienname", "Family name"),
    "birthdate": ("Geburtsdatum", "Date of birth"),
    "place_of_birth": ("Geburtsort", "Place of birth"),
    "nationalities": ("Staatsangehörigkeit(en)", "Nationalities"),
    "birth_family_name": ("Geburtsname", "Birth name"),
    "address": ("Anschrift", "Address"),
    "age_equal_or_over": ("Mindestalter erreicht", "Age at least"),
    "issuing_country": ("Ausstellungsstaat", "Issuing country"),
    "date_of_expiry": ("Ablaufdatum der PID", "PID expiry date"),
}


@dataclass
class SimState:
    """The process's state: the wallet, its provider's status list and the status endpoint's mode."""

    wallet: TestWallet
    status: StatusList
    status_mode: str = "ok"


STATE: Final = web.AppKey("wallet_sim_state", SimState)


def _lang(request: web.Request) -> str:
    chosen = request.query.get("lang")
    if chosen in _TEXT:
        return chosen
    return "en" if request.headers.get("Accept-Language", "").lower().startswith("en") else "de"


def _page(lang: str, title: str, body: str, status: int = 200) -> web.Response:
    text = (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;color:#111;"
        "background:#fff;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem;margin:.25rem 0;display:block}"
        ".note{color:#333}code{word-break:break-all}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _claim_label(path: list[Any], lang: str) -> str:
    names = _CLAIM_NAMES.get(str(path[0]))
    shown = "/".join("*" if p is None else str(p) for p in path)
    if names is None:
        return shown
    name = names[0 if lang == "de" else 1]
    if path[0] == "age_equal_or_over" and len(path) > 1:
        name = f"{name}: {path[1]}"
    return f"{name} ({shown})"


async def _fetch(state: SimState, invocation_url: str) -> VerifierRequest:
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return await state.wallet.fetch_request(session, invocation_url)


def _cannot_answer(lang: str, exc: Exception) -> web.Response:
    """400: the heading in the page's language, the wallet's technical reason (English) marked as such."""
    title = _TEXT[lang]["bad_request"]
    reason = html.escape(str(exc) or type(exc).__name__)
    return _page(lang, title, f'<h1>{html.escape(title)}</h1><p lang="en">{reason}</p>', status=400)


def _invocation(client_id: str, request_uri: str) -> str:
    return "openid4vp://?" + urlencode({"client_id": client_id, "request_uri": request_uri})


async def authorize_page(request: web.Request) -> web.Response:
    """The wallet page of a same-device request: who asks, for what; the holder's choice."""
    state = request.app[STATE]
    lang = _lang(request)
    t = _TEXT[lang]
    client_id, request_uri = request.query.get("client_id", ""), request.query.get("request_uri", "")
    try:
        verifier = await _fetch(state, _invocation(client_id, request_uri))
        paths = verifier.requested_paths()
    except (WalletRequestError, aiohttp.ClientError, TimeoutError) as exc:
        return _cannot_answer(lang, exc)
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    other = "en" if lang == "de" else "de"
    asked = (
        "<ul>" + "".join(f"<li>{html.escape(_claim_label(p, lang))}</li>" for p in paths) + "</ul>"
        if paths
        else f"<p>{html.escape(t['nothing'])}</p>"
    )
    buttons = ""
    for person in state.wallet.persons.values():
        note = person.note_de if lang == "de" else person.note_en
        label = t["share"].format(name=person.name) + (f" ({note})" if note else "")
        buttons += (
            f'<button type="submit" name="person" value="{html.escape(person.key)}">{html.escape(label)}</button>'
        )
    options = f'<option value="">{html.escape(t["tamper_none"])}</option>' + "".join(
        f'<option value="{m.value}">{m.value}</option>' for m in Tamper if m not in (Tamper.CANCEL,)
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">'
        for k, v in (("client_id", client_id), ("request_uri", request_uri), ("csrf", token), ("lang", lang))
    )
    switch_query = {"client_id": client_id, "request_uri": request_uri, "lang": other}
    body = (
        f'<p><a href="/authorize?{html.escape(urlencode(switch_query))}" lang="{other}" hreflang="{other}">'
        f"{t['other_lang']}</a></p>"
        f"<h1>{html.escape(t['h1'])}</h1><p class=note>{html.escape(t['test_only'])}</p>"
        f"<h2>{html.escape(t['asker'])}</h2><p><code>{html.escape(client_id)}</code></p>"
        f"<h2>{html.escape(t['asked'])}</h2>{asked}"
        f'<form method="post" action="/authorize">{hidden}'
        f'<p><label for="tamper">{html.escape(t["tamper"])}</label> '
        f'<select id="tamper" name="tamper">{options}</select></p>'
        f'{buttons}<button type="submit" name="decline" value="1">{html.escape(t["decline"])}</button></form>'
    )
    response = _page(lang, t["title"], body)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


async def authorize_submit(request: web.Request) -> web.StreamResponse:
    """The holder's choice: present (or decline), then follow the verifier's redirect_uri if it gives one."""
    state = request.app[STATE]
    form = await request.post()
    lang = str(form.get("lang", "de"))
    lang = lang if lang in _TEXT else "de"
    t = _TEXT[lang]
    cookie, sent = request.cookies.get(CSRF_COOKIE, ""), str(form.get("csrf", ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return _page(lang, t["csrf"], f"<h1>{html.escape(t['csrf'])}</h1>", status=403)
    tamper_value = str(form.get("tamper", ""))
    try:
        tamper = Tamper(tamper_value) if tamper_value else None
    except ValueError:
        return _page(lang, t["bad_request"], f"<h1>{html.escape(t['bad_request'])}</h1>", status=400)
    if form.get("decline"):
        tamper = Tamper.CANCEL
    person = str(form.get("person", "")) or next(iter(state.wallet.persons))
    invocation = _invocation(str(form.get("client_id", "")), str(form.get("request_uri", "")))
    try:
        result = await state.wallet.present(invocation, person=person, tamper=tamper)
    except (WalletRequestError, aiohttp.ClientError, TimeoutError) as exc:
        return _cannot_answer(lang, exc)
    if result.redirect_uri:  # also after a refusal: the citizen lands on the verifier's failure page
        raise web.HTTPSeeOther(result.redirect_uri)
    text = t["sent_text"] if result.status == 200 else t["refused"].format(status=result.status)
    return _page(lang, t["sent"], f"<h1>{html.escape(t['sent'])}</h1><p>{html.escape(text)}</p>")


async def present(request: web.Request) -> web.Response:
    """``POST /present`` ``{invocation_url, person, tamper}``: the wallet answers without a browser."""
    state = request.app[STATE]
    try:
        data = await request.json()
    except ValueError:
        return web.json_response({"error": "body must be JSON"}, status=400)
    if not isinstance(data, dict) or not isinstance(data.get("invocation_url"), str):
        return web.json_response({"error": "invocation_url (string) required"}, status=400)
    try:
        tamper = Tamper(data["tamper"]) if data.get("tamper") else None
    except ValueError:
        return web.json_response({"error": f"unknown tamper {data.get('tamper')!r}"}, status=400)
    person = data.get("person", "erika")
    if not isinstance(person, str):
        return web.json_response({"error": "person must be a string"}, status=400)
    try:
        result = await state.wallet.present(data["invocation_url"], person=person, tamper=tamper)
    except (WalletRequestError, aiohttp.ClientError, TimeoutError) as exc:
        return web.json_response({"error": str(exc) or type(exc).__name__}, status=400)
    return web.json_response(
        {
            "status": result.status,
            "redirect_uri": result.redirect_uri,
            "body": result.body,
            "response_uri": result.response_uri,
            "form": result.form,
            "presentation": result.presentation,
            "requested_paths": [list(path) for path in result.requested_paths],
        }
    )


async def status_list(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.status_mode == "unavailable":
        return web.Response(status=503, text="status list unavailable (test mode)")
    if state.status_mode == "garbage":
        return web.Response(body=b"not-a-status-list", content_type="application/statuslist+jwt")
    token = state.status.token(state.wallet.keys, now=int(time.time()))
    return web.Response(body=token.encode("ascii"), content_type="application/statuslist+jwt")


async def ca_pem(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE].wallet.keys.ca_pem, content_type="application/x-pem-file")


async def persons(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        [
            {
                "key": p.key,
                "name": p.name,
                "status_idx": p.status_idx,
                "expired": p.expired,
                "revoked": state.status.get(p.status_idx) == 1,
                "holder_thumbprint": state.wallet.holder_thumbprint(p.key),
            }
            for p in state.wallet.persons.values()
        ]
    )


async def revoke(request: web.Request) -> web.Response:
    """``POST /admin/revoke?idx=N`` (``&value=0`` reinstates)."""
    state = request.app[STATE]
    try:
        idx = int(request.query["idx"])
        value = int(request.query.get("value", "1"))
        state.status.set(idx, value)
    except (KeyError, ValueError, IndexError) as exc:
        return web.json_response({"error": f"idx (0..{state.status.size - 1}) and value 0/1: {exc}"}, status=400)
    return web.json_response({"idx": idx, "value": value})


async def status_mode(request: web.Request) -> web.Response:
    """``POST /admin/status?mode=ok|unavailable|garbage``: make the status endpoint fail on purpose."""
    state = request.app[STATE]
    mode = request.query.get("mode", "")
    if mode not in STATUS_MODES:
        return web.json_response({"error": f"mode must be one of {', '.join(STATUS_MODES)}"}, status=400)
    state.status_mode = mode
    return web.json_response({"mode": mode})


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(wallet: TestWallet, status: StatusList) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[STATE] = SimState(wallet, status)
    app.router.add_get("/authorize", authorize_page)
    app.router.add_post("/authorize", authorize_submit)
    app.router.add_post("/present", present)
    app.router.add_get(STATUS_PATH, status_list)
    app.router.add_get("/ca.pem", ca_pem)
    app.router.add_get("/persons", persons)
    app.router.add_post("/admin/revoke", revoke)
    app.router.add_post("/admin/status", status_mode)
    app.router.add_get("/health", health)
    return app
