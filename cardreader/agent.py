"""`eid-gateway kiosk-agent`: watch this kiosk's readers and report to the gateway.

State changes go out at once, a heartbeat every N seconds when nothing else was sent. The gateway
may be down: messages wait in a bounded outbox, in order, and are retried with backoff until it
acknowledges them. HTTPS with a per-kiosk bearer token; a client certificate adds mutual TLS.
SIGTERM / SIGINT stop the agent cleanly: a short last attempt to deliver what waits, then an
"offline" message, so the dashboard shows the kiosk offline at once (a killed agent shows offline
after one missed heartbeat instead). A refused credential is retried at least once per heartbeat
interval, so the dashboard keeps showing it as such.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import ssl
import stat
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp

from cardreader.model import KioskSnapshot
from cardreader.monitor import PcscMonitor
from cardreader.outbox import Backoff, Outbox, Outgoing

log = logging.getLogger("cardreader.agent")
CREDENTIAL_ENV = "EID_KIOSK_CREDENTIAL"


class AgentConfigError(ValueError):
    pass


class Monitor(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


@dataclass(frozen=True)
class AgentConfig:
    gateway: str  # base URL of the gateway's kiosk sub-app, e.g. https://gw.example/kiosks/
    kiosk_id: str
    credential: str
    heartbeat_seconds: float = 10.0
    queue_size: int = 1000
    request_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    shutdown_grace: float = 2.0
    ssl: ssl.SSLContext | None = None

    def url(self, kind: str) -> str:
        return f"{self.gateway.rstrip('/')}/api/v1/kiosks/{quote(self.kiosk_id, safe='')}/{kind}"


def check_gateway_url(url: str) -> str:
    """https only; plain http is allowed to a loopback address (tests, a local reverse proxy)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AgentConfigError("gateway URL must be an absolute https URL")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise AgentConfigError("gateway URL must use https (http only to a loopback address)")
    if parts.query or parts.fragment:
        raise AgentConfigError("gateway URL must not have a query or fragment")
    return url


def tls_context(ca_file: Path | None, client_cert: Path | None, client_key: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert is not None:
        ctx.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    elif client_key is not None:
        raise AgentConfigError("--client-key needs --client-cert")
    return ctx


class KioskAgent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        monitor_factory: Callable[[Callable[[KioskSnapshot], None]], Monitor] | None = None,
    ) -> None:
        self.config = config
        self.outbox = Outbox(config.queue_size)
        self.backoff = Backoff(config.backoff_initial, config.backoff_max)
        self.current: KioskSnapshot | None = None
        # what the gateway acknowledged last (diagnostics and tests), bounded
        self.delivered: deque[Outgoing] = deque(maxlen=1000)
        self._factory = monitor_factory or (lambda listener: PcscMonitor(listener))
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self.gateway_reachable: bool | None = None

    # -- called from the monitor thread (through call_soon_threadsafe) --------------------------
    def _on_snapshot(self, snap: KioskSnapshot) -> None:
        self.current = snap
        self.outbox.put_state(snap)
        if self._wake is not None:
            self._wake.set()

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake, self._stopping = asyncio.Event(), asyncio.Event()

        def listener(snap: KioskSnapshot) -> None:  # runs on the monitor thread
            loop.call_soon_threadsafe(self._on_snapshot, snap)

        monitor = self._factory(listener)
        monitor.start()
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        connector = aiohttp.TCPConnector(ssl=self.config.ssl if self.config.ssl is not None else True, limit=2)
        headers = {"Authorization": f"Bearer {self.config.credential}", "User-Agent": "eid-gateway-kiosk-agent/1"}
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:
                await self._send_loop(session)
                await self._flush(session)
        finally:
            await asyncio.to_thread(monitor.stop)

    async def _sleep(self, seconds: float, *, wake_on_new: bool) -> None:
        assert self._wake is not None and self._stopping is not None
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake_on_new:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _send_loop(self, session: aiohttp.ClientSession) -> None:
        assert self._wake is not None and self._stopping is not None
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + self.config.heartbeat_seconds
        while not self._stopping.is_set():
            msg = self.outbox.peek()
            if msg is None:
                wait = next_heartbeat - loop.time()
                if wait > 0:
                    self._wake.clear()
                    await self._sleep(wait, wake_on_new=True)
                    continue
                msg = self.outbox.heartbeat()
            outcome = await self._post(session, msg)
            if outcome in ("retry", "refused"):
                if msg.kind == "heartbeat":
                    next_heartbeat = loop.time() + self.config.heartbeat_seconds
                pause = self.backoff.next()
                if outcome == "refused":  # keep the refusal visible on the dashboard
                    pause = min(pause, self.config.heartbeat_seconds)
                await self._sleep(pause, wake_on_new=False)
                continue
            self.backoff.reset()
            next_heartbeat = loop.time() + self.config.heartbeat_seconds
            if msg.kind == "state":
                self.outbox.done(msg)
            if outcome == "resend" and self.current is not None and len(self.outbox) == 0:
                self.outbox.put_state(self.current)

    async def _flush(self, session: aiohttp.ClientSession) -> None:
        """On stop: one short, bounded attempt to deliver what is still waiting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        while (msg := self.outbox.peek()) is not None and loop.time() < deadline:
            if await self._post(session, msg, timeout=max(0.1, deadline - loop.time())) in ("retry", "refused"):
                break
            self.outbox.done(msg)
        if len(self.outbox):
            log.warning("stopping with %d undelivered state message(s)", len(self.outbox))
        if await self._post(session, self.outbox.offline(), timeout=max(0.5, deadline - loop.time())) != "ok":
            log.warning("could not announce the stop; the dashboard shows this kiosk offline after a missed heartbeat")

    async def _post(self, session: aiohttp.ClientSession, msg: Outgoing, timeout: float | None = None) -> str:
        """'ok', 'resend' (gateway wants the whole state), 'drop' (never deliverable), 'refused'
        (credential refused) or 'retry'."""
        body = self.outbox.body(msg)
        try:
            kw: dict[str, Any] = {"json": body}
            if timeout is not None:
                kw["timeout"] = aiohttp.ClientTimeout(total=timeout)
            async with session.post(self.config.url(msg.kind), **kw) as resp:
                if resp.status == 200:
                    ack = await resp.json(content_type=None)
                    self._reachable(True)
                    self.delivered.append(msg)
                    if isinstance(ack, dict) and ack.get("want_state") is True:
                        return "resend"
                    return "ok"
                self._reachable(True)
                if resp.status in (401, 403):
                    log.error("gateway refused this kiosk's credential (HTTP %d); will retry", resp.status)
                    return "refused"
                if resp.status in (400, 404, 413, 422):
                    log.error("gateway rejected a %s message (HTTP %d); dropping it", msg.kind, resp.status)
                    return "drop"
                log.warning("gateway answered HTTP %d; will retry", resp.status)
                return "retry"
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            self._reachable(False, type(exc).__name__)
            return "retry"

    def _reachable(self, ok: bool, why: str = "") -> None:
        if ok != self.gateway_reachable:
            if ok:
                log.info("gateway reachable")
            else:
                log.warning("gateway unreachable (%s); %d state(s) waiting", why, len(self.outbox))
        self.gateway_reachable = ok


def read_credential(path: Path | None) -> str:
    if path is None:
        token = os.environ.get(CREDENTIAL_ENV, "").strip()
        if not token:
            raise AgentConfigError(f"give --credential-file or set {CREDENTIAL_ENV}")
        return token
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AgentConfigError(f"cannot read credential file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("credential file %s is readable by others; chmod 600 it", path)
    if not token:
        raise AgentConfigError(f"credential file {path} is empty")
    return token


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="eid-gateway kiosk-agent", description="Report this kiosk's card-reader state to the gateway."
    )
    ap.add_argument("--gateway", required=True, help="base URL of the gateway's kiosk API, e.g. https://gw/kiosks/")
    ap.add_argument("--kiosk-id", required=True)
    ap.add_argument("--credential-file", type=Path, help=f"file holding the kiosk token (else ${CREDENTIAL_ENV})")
    ap.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats (default 10)")
    ap.add_argument("--queue-size", type=int, default=1000, help="states kept while the gateway is down")
    ap.add_argument("--ca-file", type=Path, help="CA bundle that signs the gateway's TLS certificate")
    ap.add_argument("--client-cert", type=Path, help="client certificate (PEM) for mutual TLS")
    ap.add_argument("--client-key", type=Path, help="its private key (PEM)")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point for `eid-gateway kiosk-agent`; 0 after a clean stop, 2 for bad configuration."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        gateway = check_gateway_url(args.gateway)
        if not 0.5 <= args.heartbeat <= 3600 or not 1 <= args.queue_size <= 1_000_000:
            raise AgentConfigError("--heartbeat must be 0.5..3600 s and --queue-size 1..1000000")
        config = AgentConfig(
            gateway=gateway,
            kiosk_id=args.kiosk_id,
            credential=read_credential(args.credential_file),
            heartbeat_seconds=args.heartbeat,
            queue_size=args.queue_size,
            ssl=tls_context(args.ca_file, args.client_cert, args.client_key) if gateway.startswith("https") else None,
        )
    except (AgentConfigError, ssl.SSLError, OSError) as exc:
        print(f"kiosk-agent: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        agent = KioskAgent(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stop)
        log.info("kiosk agent for %r reporting to %s", config.kiosk_id, config.gateway)
        await agent.run()
        log.info("kiosk agent stopped")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
