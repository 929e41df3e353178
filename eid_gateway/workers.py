"""``eid-gateway serve --workers N``: N gateway processes on one port, kept running by a supervisor.

One Python process runs on one core; the workers let a node use all of its cores. Each worker is a fresh
interpreter started with the same command line (not a fork): HSM sessions, the store's thread and
connection, event loops and key handles do not survive a fork, so every worker loads the config and its
keys itself. All workers bind the same host and port with SO_REUSEPORT, and the kernel spreads new
connections over them. Everything a sign-in needs between requests lives in the store (or in the other
shared SQLite files), so it does not matter which worker answers which request.

The supervisor (the process the operator started) serves nothing. It forwards SIGTERM / SIGINT to the
workers and waits for them to finish their open requests; a worker that dies on its own is logged and
replaced after a short pause, and when workers keep dying right after their start (a broken config file,
a missing key) it stops them all and exits non-zero instead of looping. Metrics of all workers add up in
one directory (prometheus-client's multi-process mode, see :mod:`eid_gateway.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client.multiprocess import mark_process_dead

from eid_gateway.metrics import MULTIPROC_DIR_ENV

log = logging.getLogger("eid_gateway.workers")

EXIT_WORKERS_FAILED: Final = 1

WorkerCommand = Callable[[int], Sequence[str]]


@dataclass(frozen=True)
class RestartPolicy:
    """When a dead worker is replaced, and when the supervisor gives up."""

    #: A worker that ran at least this long had started fine; its death starts the count anew.
    stable_seconds: float = 10.0
    #: Deaths in a row, each within ``stable_seconds`` of its start, after which the supervisor gives up.
    max_quick_deaths: int = 5
    #: Pause before a replacement, doubled for each quick death in a row, at most ``backoff_max``.
    backoff_first: float = 0.5
    backoff_max: float = 10.0
    #: How long workers get to finish their open requests after SIGTERM before they are killed.
    shutdown_seconds: float = 75.0

    def backoff(self, quick_deaths: int) -> float:
        return float(min(self.backoff_max, self.backoff_first * 2 ** max(0, quick_deaths - 1)))


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now, or ``None``.

    Binding with SO_REUSEPORT succeeds even where another server with that option (say, a second gateway
    started by mistake) already listens, and the kernel would then split the traffic between the two.
    So before the workers bind, the supervisor binds once without it, as a lone server would.
    """
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    for family, kind, proto, _, address in addresses:
        shown = f"[{address[0]!s}]" if family == socket.AF_INET6 else f"{address[0]!s}"
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is fine
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
                return f"{shown} port {port}: {reason}"
    return None


class Supervisor:
    """Starts ``count`` workers (``command(index)``), replaces those that die, stops them on a signal."""

    def __init__(self, command: WorkerCommand, count: int, *, env: Mapping[str, str] | None = None,
                 policy: RestartPolicy = RestartPolicy()) -> None:
        self.command = command
        self.count = count
        self.env = dict(os.environ if env is None else env)
        self.policy = policy
        self.metrics_dir: str | None = None
        self.failed = False
        self._stop = asyncio.Event()
        self._running: dict[int, asyncio.subprocess.Process] = {}
        self._exit_codes: dict[int, int] = {}

    async def run(self) -> int:
        """Until SIGTERM / SIGINT (exit 0 once every worker ended cleanly) or until workers keep dying
        right after their start (exit :data:`EXIT_WORKERS_FAILED`)."""
        loop = asyncio.get_running_loop()
        self.metrics_dir = tempfile.mkdtemp(prefix="eid-gateway-metrics-")
        self.env[MULTIPROC_DIR_ENV] = self.metrics_dir
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            log.info("supervisor started pid=%d workers=%d metrics_dir=%s", os.getpid(), self.count,
                     self.metrics_dir)
            slots = [asyncio.create_task(self._keep(i)) for i in range(self.count)]
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait([stopping, *slots], return_when=asyncio.FIRST_COMPLETED)
            self._begin_stop()
            _, pending = await asyncio.wait(slots, timeout=self.policy.shutdown_seconds)
            if pending:
                log.error("workers did not stop within %.0f s; killing them", self.policy.shutdown_seconds)
                self._signal_all(signal.SIGKILL)
                await asyncio.wait(pending)
            await stopping
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        # -SIGTERM: stopped before it had set up its handlers (it was still starting, serving nothing)
        unclean = {i: code for i, code in self._exit_codes.items() if code not in (0, -signal.SIGTERM)}
        if self.failed:
            return EXIT_WORKERS_FAILED
        if unclean:
            log.error("supervisor stopped; workers ended uncleanly: %s",
                      " ".join(f"worker={i} {_ended(code)}" for i, code in sorted(unclean.items())))
            return EXIT_WORKERS_FAILED
        log.info("supervisor stopped; all workers ended cleanly")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("supervisor received %s; stopping the workers", sig.name)
        self._begin_stop()

    def _begin_stop(self) -> None:
        """SIGTERM to every worker, once: aiohttp takes a second SIGTERM during its graceful shutdown as
        a reason to abandon it (the worker then exits 1 with its requests cut off)."""
        if not self._stop.is_set():
            self._stop.set()
            self._signal_all(signal.SIGTERM)

    def _signal_all(self, sig: signal.Signals) -> None:
        for proc in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    async def _keep(self, index: int) -> None:
        """Keep worker ``index`` running until the supervisor stops (or gives up on it)."""
        loop = asyncio.get_running_loop()
        quick_deaths = 0
        while not self._stop.is_set():
            started = loop.time()
            # process_group=0: a terminal's Ctrl-C reaches the supervisor only, which stops the workers once
            try:
                proc = await asyncio.create_subprocess_exec(*self.command(index), env=self.env, process_group=0)
            except OSError as exc:
                log.error("worker=%d cannot be started: %s", index, exc.strerror or type(exc).__name__)
                self.failed = True
                return
            self._running[index] = proc
            if self._stop.is_set():  # the signal came while it was starting
                proc.send_signal(signal.SIGTERM)
            log.info("worker=%d pid=%d started", index, proc.pid)
            code = await proc.wait()
            del self._running[index]
            assert self.metrics_dir is not None
            mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self._stop.is_set():
                self._exit_codes[index] = code
                log.info("worker=%d pid=%d stopped %s", index, proc.pid, _ended(code))
                return
            uptime = loop.time() - started
            quick_deaths = quick_deaths + 1 if uptime < self.policy.stable_seconds else 1
            if quick_deaths >= self.policy.max_quick_deaths:
                log.error("worker=%d pid=%d ended %s after %.1f s; %d quick deaths in a row, giving up "
                          "(is the port taken, or the config or a key unreadable?)",
                          index, proc.pid, _ended(code), uptime, quick_deaths)
                self.failed = True
                return
            delay = self.policy.backoff(quick_deaths)
            log.warning("worker=%d pid=%d ended unexpectedly %s after %.1f s; replacing it in %.1f s",
                        index, proc.pid, _ended(code), uptime, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal={signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal={-returncode}"
    return f"code={returncode}"


def supervise(command: WorkerCommand, count: int, *, policy: RestartPolicy = RestartPolicy()) -> int:
    return asyncio.run(Supervisor(command, count, policy=policy).run())


# --- inside a worker ----------------------------------------------------------------------------------------

PARENT_CHECK_SECONDS: Final = 1.0


def run_as_worker(app: web.Application, parent_pid: int) -> None:
    """Make ``app`` behave as one worker of the supervisor ``parent_pid``.

    * The first SIGTERM / SIGINT starts the graceful shutdown; later ones are ignored. aiohttp would take a
      second one as a reason to abandon the shutdown (cutting off open requests, exit 1), and workers do
      get two when a service manager signals every process of the service (systemd's default
      ``KillMode=control-group``) and the supervisor forwards its own.
    * The worker stops (gracefully) once its supervisor is gone: a supervisor killed with SIGKILL cannot
      stop its workers, which would hold the port and serve on with nobody to replace them, sharing the
      port with a restarted gateway.
    """

    async def worker(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        stopping = False

        def stop_once() -> None:
            nonlocal stopping
            if not stopping:
                stopping = True
                raise web.GracefulExit()

        for sig in (signal.SIGTERM, signal.SIGINT):  # replaces aiohttp's handlers, installed just before
            loop.add_signal_handler(sig, stop_once)

        async def watch() -> None:
            while os.getppid() == parent_pid:
                await asyncio.sleep(PARENT_CHECK_SECONDS)
            log.error("supervisor pid=%d is gone; stopping", parent_pid)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(worker)
