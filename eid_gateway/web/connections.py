"""Slow and surplus connections: deadlines for reading a request, and caps on open connections.

aiohttp bounds neither the time a client may take to send a request's head or body nor the number of
connections it holds open, so one client dribbling a byte every few seconds over a thousand connections
used up the process's file descriptors and the gateway stopped answering. Here, for every connection
the server accepts:

* a cap on open connections per process (``[listen] max_connections``, lowered to what the process's
  file limit leaves room for) and per client address (``max_connections_per_address``; reverse proxies
  listed in ``[limits] trusted_proxies`` are exempt, every citizen behind them shares their address).
  A connection over a cap is closed as soon as it is accepted, before a byte is read;
* a request's head must be complete within ``header_timeout_seconds`` of its first byte, and its body
  within ``body_timeout_seconds`` of the head; otherwise the connection is closed (nothing is answered:
  a client that slow would not read it);
* an idle keep-alive connection is closed after ``keepalive_timeout_seconds`` (aiohttp's own setting);
* a malformed request (over-long request line or header, bad syntax) gets the gateway's error page
  with its security headers and no log line of its own (no traceback, no ERROR): it is the client's
  doing, and a flood of them must not flood the log or page anyone.

Refusals, cut-offs and malformed requests are counted and summed up in one INFO line at most once a
minute, without addresses.

:func:`run_app` replaces ``aiohttp.web.run_app`` (same signals and graceful shutdown) because aiohttp offers
no setting for its protocol class (for the same reason each worker of ``serve --workers N`` serves through
:class:`GuardedSockSite`, see :mod:`eid_gateway.workers`); :func:`read_deadlines` is the application
middleware that tells a connection when the head of a request is complete and when the request is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import resource
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from eid_gateway.config import ListenConfig
from eid_gateway.web.branding import BRANDING_KEY, NEUTRAL, REQUEST_BRANDING
from eid_gateway.web.clients import Address, networks
from eid_gateway.web.middlewares import content_security_policy, set_security_headers
from eid_gateway.web.render import render_http_error

log = logging.getLogger("eid_gateway.connections")

#: File descriptors kept free for what the process opens itself (store, log, eID-Server, key files).
FD_RESERVE: Final = 64
#: At most one summary line of refusals and cut-offs per this many seconds (not one line per connection).
REPORT_INTERVAL: Final = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def file_limit() -> int:
    """The process's soft limit on open files (``ulimit -n``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionGuard:
    """Counts open connections per process and per address; builds the protocol of each connection."""

    def __init__(self, listen: ListenConfig, trusted_proxies: Iterable[str], *, hsts: bool) -> None:
        self.header_timeout = listen.header_timeout_seconds
        self.body_timeout = listen.body_timeout_seconds
        self.keepalive_timeout = listen.keepalive_timeout_seconds
        self.max_per_address = listen.max_connections_per_address
        room = max(1, file_limit() - FD_RESERVE)
        self.max_connections = min(listen.max_connections, room)
        if self.max_connections < listen.max_connections:
            log.warning(
                "listen.max_connections=%d lowered to %d: this process may open %d files (ulimit -n, "
                "LimitNOFILE=); raise that limit to allow more",
                listen.max_connections,
                self.max_connections,
                file_limit(),
            )
        self.exempt = networks(trusted_proxies)
        self.hsts = hsts
        self.csp = content_security_policy(())
        #: The served application's [branding] for error pages (set by GuardedSite.start).
        self.branding = NEUTRAL
        self.open = 0
        self.per_address: dict[str, int] = {}
        #: refusals and cut-offs since the last summary line, by kind
        self.events: dict[str, int] = {}
        self._last_report = 0.0

    def protocol_factory(self, runner: web.BaseRunner) -> Callable[[], GuardedRequestHandler]:
        """For ``loop.create_server`` of a site of ``runner``: one :class:`GuardedRequestHandler` per
        accepted connection. The error pages take the [branding] of the runner's application."""
        server = runner.server
        assert server is not None
        if isinstance(runner, web.AppRunner):
            self.branding = runner.app.get(BRANDING_KEY, NEUTRAL)
        loop = asyncio.get_running_loop()
        return lambda: GuardedRequestHandler(server, self, loop)

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``; or the reason it is refused (then it is not counted)."""
        if self.open >= self.max_connections:
            return "max_connections"
        held = self.per_address.get(address, 0)
        if held >= self.max_per_address and not self._exempt(address):
            return "max_connections_per_address"
        self.open += 1
        self.per_address[address] = held + 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        held = self.per_address.pop(address, 1) - 1
        if held > 0:
            self.per_address[address] = held

    def _exempt(self, address: str) -> bool:
        try:
            ip: Address = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.exempt)

    def note(self, kind: str, now: float) -> None:
        """Count a refusal or cut-off; log a summary at most every :data:`REPORT_INTERVAL` seconds. No
        addresses: the count is what an operator needs to see an attack, and the log stays bounded."""
        self.events[kind] = self.events.get(kind, 0) + 1
        log.debug("connection %s", kind)
        if now - self._last_report >= REPORT_INTERVAL:
            self._last_report = now
            log.info(
                "connections refused or cut off since the last report: %s open=%d",
                " ".join(f"{k}={v}" for k, v in sorted(self.events.items())),
                self.open,
            )
            self.events.clear()

    def error_page(self, request: web.BaseRequest, status: int) -> web.StreamResponse:
        """The gateway's error page for a request aiohttp refused before any application saw it."""
        if isinstance(request, web.Request):
            request[REQUEST_BRANDING] = self.branding  # not routed: no application to ask
            response: web.StreamResponse = render_http_error(request, status)
        else:  # pragma: no cover - aiohttp builds web.Request objects for applications
            response = web.Response(status=status, text=f"HTTP {status}")
        set_security_headers(response.headers, self.csp, hsts=self.hsts)
        response.force_close()
        return response


class GuardedRequestHandler(RequestHandler):
    """aiohttp's protocol for one connection, with the guard's admission, deadlines and error page."""

    def __init__(self, server: web.Server, guard: ConnectionGuard, loop: asyncio.AbstractEventLoop) -> None:
        # access_log=None (no access log, as run_app(access_log=None) had it) is handled, if not typed, by aiohttp
        super().__init__(server, loop=loop, keepalive_timeout=guard.keepalive_timeout, access_log=None)  # type: ignore[arg-type]
        self._guard = guard
        self._address: str | None = None  # set once admitted
        self._in_request = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = self._guard.admit(address)
        if refused is not None:
            self._guard.note(refused, self._loop.time())
            transport.close()
            return
        self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is None:  # refused: aiohttp never saw it
            return
        self._guard.release(self._address)
        self._address = None
        self._cancel_deadlines()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and not self._in_request and self._head_deadline is None and self._address is not None:
            self._head_deadline = self._loop.call_later(self._guard.header_timeout, self._cut_off, "header_timeout")
        super().data_received(data)

    def request_started(self, request: web.Request) -> None:
        """The request's head is complete (the application got it); its body, if any, is now on the clock."""
        self._in_request = True
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        body = request.content
        if not body.is_eof():
            self._body_deadline = self._loop.call_later(self._guard.body_timeout, self._cut_off, "body_timeout")
            body.on_eof(self._body_complete)

    def request_finished(self) -> None:
        self._in_request = False
        self._body_complete()

    def _body_complete(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _cut_off(self, kind: str) -> None:
        self._head_deadline = self._body_deadline = None
        if self._address is None:
            return
        self._guard.note(kind, self._loop.time())
        self.force_close()  # a handler reading the body sees the connection reset; error_pages logs it at INFO

    def _cancel_deadlines(self) -> None:
        for handle in (self._head_deadline, self._body_deadline):
            if handle is not None:
                handle.cancel()
        self._head_deadline = self._body_deadline = None

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse (and to errors past every middleware): the
        gateway's page instead of aiohttp's plain text, and no traceback in the log. The request line is
        neither echoed nor logged (it may carry personal data in its query)."""
        if isinstance(exc, HttpProcessingError):  # counted, not logged one by one: scanners send plenty
            self._guard.note("malformed_request", self._loop.time())
        else:
            log.error(
                "request failed outside the application status=%d type=%s",
                status,
                type(exc).__name__ if exc is not None else "-",
            )
        if request.writer.output_size > 0:  # as aiohttp: the answer has begun, the connection is broken
            raise ConnectionError("response already begun; cannot send an error page")
        return self._guard.error_page(request, status)


@web.middleware
async def read_deadlines(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tells a guarded connection when a request's head is in and when the request is done (outermost
    middleware; on connections served without the guard, as in tests, it does nothing)."""
    protocol = request.protocol
    if not isinstance(protocol, GuardedRequestHandler):
        return await handler(request)
    protocol.request_started(request)
    try:
        return await handler(request)
    finally:
        protocol.request_finished()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections get :class:`GuardedRequestHandler` protocols."""

    __slots__ = ("_guard",)

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        guard: ConnectionGuard,
        *,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(self._runner),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


class GuardedSockSite(web.SockSite):
    """A site on a socket bound elsewhere (by gunicorn, in each worker) with guarded connections."""

    __slots__ = ("_guard",)

    def __init__(self, runner: web.BaseRunner, sock: socket.socket, guard: ConnectionGuard) -> None:
        super().__init__(runner, sock)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(self._runner), sock=self._sock, backlog=self._backlog
        )


def run_app(
    app: web.Application, host: str, port: int, guard: ConnectionGuard, *, shutdown_timeout: float = 60.0
) -> None:
    """``web.run_app`` with a :class:`GuardedSite`: SIGTERM / SIGINT (aiohttp's handlers) raise
    ``GracefulExit``; open requests then get ``shutdown_timeout`` seconds to finish."""

    async def serve() -> None:
        runner = web.AppRunner(app, handle_signals=True, access_log=None, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            await GuardedSite(runner, host, port, guard).start()
            await asyncio.Event().wait()  # until GracefulExit or cancellation
        finally:
            await runner.cleanup()

    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        main = loop.create_task(serve())
        try:
            loop.run_until_complete(main)
        except (web.GracefulExit, KeyboardInterrupt):
            pass
        finally:
            if not main.done():  # cleanup (graceful shutdown) runs before the runner cancels the rest
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
