"""``eid-gateway smoke-test --ausweisapp``: one complete sign-in with the REAL AusweisApp, headless.

It starts AusweisApp 1.26.x (Debian's ``ausweisapp2``) with private settings and its built-in simulator
card, drives it over the websocket SDK (``/eID-Kernel``) through RUN_AUTH against a gateway whose
eID-Server is the embedded PAOS server, and plays the citizen's browser (demo service -> gateway start
page -> TC Token URL handed to AusweisApp -> refresh URL -> SAML POST -> demo service). Every step is
printed; the exit code is 0 only when the demo service shows an identity.

The driver classes are also what the end-to-end tests use (tests/eidserver/test_ausweisapp.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp
import lxml.html
from yarl import URL

from eid_gateway.ports import free_port

BINARY: Final = "AusweisApp2"
SETTINGS_DIR: Final = "Unknown Organization"
SETTINGS_FILE: Final = "AusweisApp2.conf"
DESKTOP_CLIENT: Final = "http://127.0.0.1:24727/eID-Client"
START_TIMEOUT: Final = 20.0


class SmokeTestError(Exception):
    """A step of the sign-in failed; the message says which."""


def ausweisapp_binary() -> str | None:
    """Path of the AusweisApp binary, or ``None`` when it is not installed."""
    return shutil.which(BINARY)


# --- the AusweisApp process ---------------------------------------------------------------------------------


@dataclass
class AusweisApp:
    """A running headless AusweisApp with private HOME / settings; ``port`` is its websocket port."""

    process: asyncio.subprocess.Process
    port: int
    home: Path
    log_path: Path

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def card_race_since(self, offset: int) -> bool:
        """Did AusweisApp 1.26.2's SET_CARD race ("Card is already connected") hit after ``offset``?"""
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return b"Card is already connected" in f.read()
        except OSError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


def _settings(preverification: bool) -> str:
    # [General] is what the app writes on first start; preverification off: our DV's signature cannot
    # verify against the real BSI test CVCA whose name it carries (CAR DETESTeID00005).
    return f"[General]\n[preverification]\nenabled={'true' if preverification else 'false'}\n"


@contextlib.asynccontextmanager
async def start_ausweisapp(
    *, preverification: bool = False, binary: str | None = None, extra_env: Mapping[str, str] | None = None
) -> AsyncIterator[AusweisApp]:
    """Start AusweisApp headless (``--ui websocket --port 0``) and stop it (by its PID) afterwards."""
    exe = binary or ausweisapp_binary()
    if exe is None:
        raise SmokeTestError("AusweisApp2 is not installed (Debian: apt-get install ausweisapp2)")
    home = Path(tempfile.mkdtemp(prefix="eidgw-ausweisapp-"))
    config_dir, runtime, tmp = home / "config", home / "runtime", home / "tmp"
    for d in (config_dir / SETTINGS_DIR, runtime, tmp):
        d.mkdir(parents=True, mode=0o700)
    (config_dir / SETTINGS_DIR / SETTINGS_FILE).write_text(_settings(preverification), "utf-8")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(config_dir),
        "XDG_RUNTIME_DIR": str(runtime),
        "TMPDIR": str(tmp),
        "QT_QPA_PLATFORM": "offscreen",
        **(extra_env or {}),
    }
    log_path = home / "ausweisapp.log"
    log_file = log_path.open("wb")
    # One CPU: AusweisApp 1.26.2 races between its reader thread (still finishing the SET_CARD insert)
    # and its workflow thread (already connecting to the card): "Card is already connected". On one
    # core the insert finishes before the workflow thread runs (docs/eidserver.md has the evidence).
    # SCHED_BATCH (chrt -b) also turns off wakeup preemption, which narrows the window further.
    pin = [taskset, "-c", str(min(os.sched_getaffinity(0)))] if (taskset := shutil.which("taskset")) else []
    if (chrt := shutil.which("chrt")) is not None:
        pin = [chrt, "-b", "0", *pin]
    proc = await asyncio.create_subprocess_exec(
        *pin,
        exe,
        "--ui",
        "websocket",
        "--port",
        "0",
        "--no-proxy",
        "--no-logfile",
        env=env,
        stdout=log_file,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        port_file = tmp / f"AusweisApp2.{proc.pid}.port"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.returncode is not None or loop.time() > deadline:
                raise SmokeTestError(
                    "AusweisApp did not start (no port file); log:\n" + log_path.read_text("utf-8", "replace")[-2000:]
                )
            await asyncio.sleep(0.1)
        yield AusweisApp(proc, int(port_file.read_text().strip()), home, log_path)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log_file.close()
        if os.environ.get("EIDGW_KEEP_AUSWEISAPP_HOME") is None:
            shutil.rmtree(home, ignore_errors=True)


# --- the SDK conversation ----------------------------------------------------------------------------------


@dataclass
class AuthOutcome:
    """The final AUTH message: the refresh URL and the result the client reports."""

    url: str | None
    result: Mapping[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return str(self.result.get("major", "")).endswith("#ok")

    def message(self, kind: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m.get("msg") == kind), None)


async def run_auth(
    app: AusweisApp,
    tc_token_url: str,
    *,
    developer_mode: bool = True,
    simulator_files: list[dict[str, str]] | None = None,
    cancel_at_access_rights: bool = False,
    deselect: tuple[str, ...] = (),
    timeout: float = 90.0,
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> AuthOutcome:
    """One RUN_AUTH over ``/eID-Kernel``: accept (or cancel), insert the simulator card, send an empty PIN."""
    messages: list[dict[str, Any]] = []
    card: dict[str, Any] = {"name": "Simulator"}
    if simulator_files is not None:
        card["simulator"] = {"files": simulator_files}
    async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{app.port}/eID-Kernel") as ws:
        await ws.send_json(
            {"cmd": "RUN_AUTH", "tcTokenURL": tc_token_url, "developerMode": developer_mode, "status": False}
        )
        card_sent = False
        async with asyncio.timeout(timeout):
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise SmokeTestError(f"websocket closed: {frame.type}")
                msg = json.loads(frame.data)
                messages.append(msg)
                if on_message is not None:
                    on_message(msg)
                kind = msg.get("msg")
                if kind == "ACCESS_RIGHTS":
                    if cancel_at_access_rights:
                        await ws.send_json({"cmd": "CANCEL"})
                        continue
                    for right in deselect:
                        await ws.send_json(
                            {
                                "cmd": "SET_ACCESS_RIGHTS",
                                "chat": [r for r in msg.get("chat", {}).get("effective", []) if r != right],
                            }
                        )
                    await ws.send_json({"cmd": "ACCEPT"})
                elif kind == "INSERT_CARD" and not card_sent:
                    card_sent = True
                    await ws.send_json({"cmd": "SET_CARD", **card})
                elif kind == "ENTER_PIN":
                    await ws.send_json({"cmd": "SET_PIN"})  # the 1.26 simulator card takes no PIN
                elif kind in ("ENTER_CAN", "ENTER_PUK"):
                    await ws.send_json({"cmd": "CANCEL"})
                elif kind == "AUTH" and "result" in msg:
                    return AuthOutcome(msg.get("url"), msg["result"], messages)
                elif kind in ("INVALID", "BAD_STATE", "UNKNOWN_COMMAND", "INTERNAL_ERROR"):
                    raise SmokeTestError(f"AusweisApp SDK refused a command: {msg}")
    raise SmokeTestError("AusweisApp closed the connection before AUTH ended")


#: The short ResultMinor values AusweisApp appends when it redirects the browser itself (TR-03124).
_REDIRECT_MINORS: Final = ("communicationError", "trustedChannelEstablishmentFailed", "cancellationByUser")


def browser_redirect_url(outcome: AuthOutcome) -> str:
    """Where AusweisApp's own desktop redirect would send the browser for this outcome.

    In SDK mode AusweisApp reports the bare refresh / communication-error URL plus the result; the SDK
    user (here: the test's browser) appends ``ResultMajor`` / ``ResultMinor`` the way the desktop app's
    redirect does: ``ok``, or ``error`` with one of the TR-03124 short minors (else ``clientError``).
    """
    assert outcome.url is not None
    if outcome.ok:
        params = {"ResultMajor": "ok"}
    else:
        minor = str(outcome.result.get("minor", "")).rsplit("#", 1)[-1]
        params = {"ResultMajor": "error", "ResultMinor": minor if minor in _REDIRECT_MINORS else "clientError"}
    sep = "&" if urlsplit(outcome.url).query else "?"
    return outcome.url + sep + urlencode(params)


# --- the citizen's browser -----------------------------------------------------------------------------------


@dataclass
class Page:
    status: int
    url: str
    text: str

    def doc(self) -> Any:
        return lxml.html.fromstring(self.text)


class Browser:
    """Cookie jar + hand-followed redirects (query octets kept verbatim), like the e2e test browser."""

    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    async def get(self, url: str) -> Page:
        resp = await self.session.get(URL(url, encoded=True), allow_redirects=False)
        return await self._follow(resp, url)

    async def _follow(self, resp: aiohttp.ClientResponse, url: str) -> Page:
        for _ in range(10):
            if resp.status not in (301, 302, 303, 307, 308):
                return Page(resp.status, url, await resp.text())
            url = urljoin(url, resp.headers["Location"])
            resp.release()
            resp = await self.session.get(URL(url, encoded=True), allow_redirects=False)
        raise SmokeTestError("too many redirects")

    async def submit(self, page: Page) -> Page:
        forms = page.doc().forms
        if len(forms) != 1:
            raise SmokeTestError(f"expected one form on {urlsplit(page.url).path}, found {len(forms)}")
        form = forms[0]
        action = urljoin(page.url, str(form.action or page.url))
        fields = {str(i.name): str(i.value) for i in form.inputs if i.get("type") == "hidden" and i.name}
        resp = await self.session.post(URL(action, encoded=True), data=fields, allow_redirects=False)
        return await self._follow(resp, action)


def tc_token_url_of(page: Page) -> str:
    for a in page.doc().iter("a"):
        href = str(a.get("href") or "")
        if href.startswith(DESKTOP_CLIENT + "?"):
            return parse_qs(urlsplit(href).query)["tcTokenURL"][0]
    raise SmokeTestError("the gateway's start page has no AusweisApp link")


def result_table(page: Page) -> dict[str, str]:
    """The demo service's identity table (row header -> value)."""
    return {str(row.findtext("th")): str(row.findtext("td")) for row in page.doc().iter("tr")}


async def open_start_page(browser: Browser, origin: str, path: str = "/demo/") -> Page:
    demo = await browser.get(origin + path)
    if demo.status != 200:
        raise SmokeTestError(f"demo service answered {demo.status}")
    links = [a for a in demo.doc().iter("a") if a.get("id") == "signin"]
    if not links:
        raise SmokeTestError("demo service page has no sign-in link")
    start = await browser.get(urljoin(demo.url, str(links[0].get("href"))))
    if start.status != 200:
        raise SmokeTestError(f"gateway start page answered {start.status}")
    return start


@dataclass
class SignIn:
    """One sign-in as the citizen sees it: AusweisApp's outcome and the page the browser ends on."""

    outcome: AuthOutcome
    page: Page | None
    browser: Browser
    attempts: int


async def sign_in(
    app: AusweisApp,
    origin: str,
    http_factory: Callable[[], aiohttp.ClientSession],
    *,
    attempts: int = 4,
    tc_token_url_filter: Callable[[str], str] | None = None,
    start_path: str = "/demo/",
    **auth_options: Any,
) -> SignIn:
    """Browser to the start page, RUN_AUTH, browser to the refresh URL (and the SAML form, if any).

    A run that AusweisApp 1.26.2 loses to its own SET_CARD thread race is started again from the
    demo service (a fresh browser): the TC Token is single-use, so a retry is a whole new sign-in.
    """
    for attempt in range(1, attempts + 1):
        http = http_factory()
        browser = Browser(http)
        start = await open_start_page(browser, origin, start_path)
        tc_url = tc_token_url_of(start)
        if tc_token_url_filter is not None:
            tc_url = tc_token_url_filter(tc_url)
        offset = app.log_size()
        outcome = await run_auth(app, tc_url, **auth_options)
        if not outcome.ok and app.card_race_since(offset) and attempt < attempts:
            await http.close()
            continue
        page = None
        if outcome.url:
            page = await browser.get(browser_redirect_url(outcome))
            if page.status == 200 and len(page.doc().forms) == 1 and "SAMLResponse" in page.text:
                page = await browser.submit(page)
        return SignIn(outcome, page, browser, attempt)
    raise SmokeTestError("unreachable")


# --- the command ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def embedded_gateway(directory: Path) -> AsyncIterator[str]:
    """A gateway with the embedded PAOS eID-Server and the demo service, on loopback; yields its origin."""
    from aiohttp import web

    from eid_gateway.app import create_app
    from eid_gateway.config import load_config
    from eid_gateway.eidserver.testpki import generate_test_pki
    from eid_gateway.instance import write_example_config

    port, paos_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{port}"
    path = write_example_config(directory, origin, port)
    generate_test_pki(directory / "eid-test-pki", origin)
    text = path.read_text("utf-8").replace('kind = "simulator"', 'kind = "embedded-paos"', 1)
    text += f'\n[embedded_paos]\npki_dir = "eid-test-pki"\nlisten_host = "127.0.0.1"\nlisten_port = {paos_port}\n'
    path.write_text(text, "utf-8")
    config = load_config(path)
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield origin
    finally:
        await runner.cleanup()


async def smoke_test(url: str | None, out: TextIO) -> int:
    """The whole sign-in; prints every step to ``out``; 0 on success."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        async with contextlib.AsyncExitStack() as stack:
            if url is None:
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eidgw-smoke-")))
                say("starting an embedded gateway (eID-Server: embedded PAOS with the test PKI) ...")
                origin = await stack.enter_async_context(embedded_gateway(tmp / "instance"))
            else:
                origin = url.rstrip("/")
            say(f"gateway: {origin}")
            app = await stack.enter_async_context(start_ausweisapp())
            say(f"AusweisApp started (pid {app.process.pid}, websocket port {app.port})")
            sessions: list[aiohttp.ClientSession] = []

            def new_browser_session() -> aiohttp.ClientSession:
                session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                sessions.append(session)
                return session

            stack.push_async_callback(lambda: asyncio.gather(*(x.close() for x in sessions)))
            say("browser: demo service -> gateway start page -> tcTokenURL -> AusweisApp RUN_AUTH")
            done = await sign_in(
                app, origin, new_browser_session, on_message=lambda m: say(f"  AusweisApp: {m.get('msg')}")
            )
            outcome = done.outcome
            if done.attempts > 1:
                say(f"(AusweisApp 1.26.2 lost its SET_CARD race {done.attempts - 1}x; started again)")
            say(f"AusweisApp AUTH result: {outcome.result.get('major')} {outcome.result.get('minor', '')}")
            if not outcome.ok or not outcome.url or done.page is None:
                say("AusweisApp log (tail):\n" + app.log_tail())
                return 1
            say(f"browser: refresh {outcome.url}")
            result = done.page
            table = result_table(result)
            if result.status != 200 or not table:
                say(f"demo service did not show an identity (HTTP {result.status})")
                return 1
            say("demo service received:")
            for k, v in table.items():
                say(f"  {k}: {v}")
            return 0
    except (SmokeTestError, aiohttp.ClientError, TimeoutError) as exc:
        say(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
