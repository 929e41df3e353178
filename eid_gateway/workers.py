"""``eid-gateway serve --workers N``: N gateway processes on one port, run by gunicorn.

One Python process runs on one core; the workers let a node use all of its cores. gunicorn's arbiter (the
process the operator started) serves nothing: it starts the workers, replaces one that dies, stops them
gracefully on SIGTERM, and exits non-zero when a worker cannot start (a broken config file, a missing key,
a failing startup hook) instead of starting it again and again. Each worker is aiohttp's
``GunicornWebWorker`` serving through the gateway's connection guard (:mod:`eid_gateway.web.connections`),
so the per-process connection caps and the header and body deadlines apply in every worker as they do
in a single process.

The arbiter does not load the application (gunicorn's ``preload_app`` stays off): each worker reads the
config and loads its keys itself after the fork, because HSM sessions, the store's thread and connection,
event loops and key handles do not survive a fork. Each worker binds the port itself with SO_REUSEPORT
(gunicorn's ``reuse_port``) and the kernel spreads new connections over them. Everything a sign-in needs
between requests lives in the store (or in the other shared SQLite files), so it does not matter which
worker answers which request.

Metrics of all workers add up in one directory (prometheus-client's multi-process mode, see
:mod:`eid_gateway.metrics`): made here for the run, cleared of each dead worker's live gauges
(gunicorn's ``child_exit`` hook), removed when the arbiter ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NoReturn

from aiohttp import web
from aiohttp.worker import GunicornWebWorker
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.workers.base import Worker
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import mark_process_dead

from eid_gateway.metrics import MULTIPROC_DIR_ENV
from eid_gateway.web.connections import ConnectionGuard, GuardedSockSite

log = logging.getLogger("eid_gateway.workers")

EXIT_WORKERS_FAILED: Final = 1
#: Open requests get this long to finish after SIGTERM (each worker's aiohttp runner) ...
SHUTDOWN_SECONDS: Final = 60.0
#: ... and the arbiter kills workers still running this long after it sent SIGTERM.
GRACEFUL_SECONDS: Final = 75
#: A worker whose event loop has not come round for this long (a blocked loop) is killed and replaced.
HEARTBEAT_SECONDS: Final = 30


@dataclass(frozen=True)
class Served:
    """What one worker serves: the application and the guard of its connections."""

    app: web.Application
    guard: ConnectionGuard


#: Runs in each worker after the fork, with the worker's slot (0..N-1): configure logging, read the config,
#: build the app. ``None`` (the reason written) or an exception is a failed start: the arbiter then stops
#: every worker and exits.
StartWorker = Callable[[int], "Served | None"]


def bind_addresses(host: str, port: int) -> list[str]:
    """gunicorn ``bind`` entries for every address ``host`` resolves to (as aiohttp's own site binds)."""
    found: list[str] = []
    for family, _, _, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
        entry = f"[{address[0]!s}]:{port}" if family == socket.AF_INET6 else f"{address[0]!s}:{port}"
        if entry not in found:
            found.append(entry)
    return found


class GatewayWorker(GunicornWebWorker):
    """aiohttp's gunicorn worker, serving :class:`Served` through :class:`GuardedSockSite`."""

    #: The worker's slot, 0..N-1, set by the arbiter before the fork; it names the worker in the log.
    index = 0
    served: Served  # set by load_wsgi, in the worker

    def load_wsgi(self) -> None:
        # prometheus-client chose its value class when the arbiter imported it, before the metrics
        # directory was named in the environment: choose again here, or every worker reports only itself
        prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
        assert isinstance(self.app, _Gunicorn)
        served = self.app.start_worker(self.index)
        if served is None:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)  # the arbiter halts: replacing it would fail the same way
        self.served = served

    async def _run(self) -> None:
        """aiohttp's loop of ``GunicornWebWorker._run`` with the guarded site and the gateway's runner."""
        served = self.served
        runner = web.AppRunner(served.app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        for sock in self.sockets:
            await GuardedSockSite(runner, sock, served.guard).start()
        # Listening now. A failure before this point leaves ``booted`` false (aiohttp's ``run`` reset it):
        # the worker exits as failed to boot, and the arbiter stops instead of replacing it in a loop.
        self.booted = True
        try:
            while self.alive:
                self.notify()  # gunicorn's heartbeat
                if self.ppid != os.getppid():
                    # the arbiter was killed (SIGKILL): nobody would replace or stop this worker, which
                    # would hold the port and share it with a restarted gateway
                    log.error("arbiter pid=%d is gone; stopping", self.ppid)
                    self.alive = False
                else:
                    await self._wait_next_notify()  # a second, or until a signal ends the loop
        finally:
            await runner.cleanup()  # graceful: open requests get SHUTDOWN_SECONDS


class _Logger(glogging.Logger):
    """gunicorn's own lines through the gateway's log handler (text or JSON, one stream), not its own."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


class _Gunicorn(BaseApplication):
    """gunicorn's application: the settings come from here (no gunicorn.conf.py, no GUNICORN_CMD_ARGS)."""

    def __init__(self, start_worker: StartWorker, settings: dict[str, object]) -> None:
        self.start_worker = start_worker
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self) -> NoReturn:  # pragma: no cover - GatewayWorker.load_wsgi calls start_worker instead
        raise NotImplementedError


def serve(start_worker: StartWorker, host: str, port: int, count: int, *, log_level: str = "info") -> int:
    """Run ``count`` workers on ``host:port`` until SIGTERM / SIGINT (then 0), or until a worker fails to
    start (then :data:`EXIT_WORKERS_FAILED`). Check the port with :func:`eid_gateway.ports.port_in_use` first."""
    metrics_dir = tempfile.mkdtemp(prefix="eid-gateway-metrics-")
    os.environ[MULTIPROC_DIR_ENV] = metrics_dir  # the workers inherit it

    def pre_fork(arbiter: Arbiter, worker: Worker) -> None:
        assert isinstance(worker, GatewayWorker)
        held = {w.index for w in arbiter.WORKERS.values() if isinstance(w, GatewayWorker)}
        worker.index = min(set(range(len(held) + 1)) - held)

    def post_fork(arbiter: Arbiter, worker: Worker) -> None:
        assert isinstance(worker, GatewayWorker)
        log.info("worker=%d pid=%d started", worker.index, os.getpid())

    def child_exit(arbiter: Arbiter, worker: Worker) -> None:
        mark_process_dead(worker.pid, metrics_dir)  # type: ignore[no-untyped-call]

    settings: dict[str, object] = {
        "bind": bind_addresses(host, port),
        "workers": count,
        "worker_class": GatewayWorker,
        "reuse_port": True,
        "graceful_timeout": GRACEFUL_SECONDS,
        "timeout": HEARTBEAT_SECONDS,
        "logger_class": _Logger,
        "loglevel": log_level.lower(),
        "proc_name": "eid-gateway",
        "control_socket_disable": True,
        "umask": "0o077",
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "child_exit": child_exit,
    }
    if "certs.pkcs11" in sys.modules:  # keys in an HSM were loaded here (the config was validated)
        from certs.pkcs11 import close_tokens

        close_tokens()  # before the fork: each worker opens its token afresh, as sessions do not survive it
    log.info("starting workers=%d metrics_dir=%s", count, metrics_dir)
    arbiter_pid = os.getpid()
    code: object = 0
    arbiter = Arbiter(_Gunicorn(start_worker, settings))
    try:
        arbiter.run()
    except SystemExit as exc:
        if os.getpid() != arbiter_pid:
            raise  # a worker (a fork of this process) ending with gunicorn's code for it
        code = exc.code
    except HaltServer as exc:
        # gunicorn raises it out of its halt() when a second worker fails to start while the arbiter stops
        # the others after the first: stop whatever is left here
        log.error("%s", exc.reason)
        code = exc.exit_status
        arbiter.kill_workers(signal.SIGKILL)
        for pid in list(arbiter.WORKERS):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    finally:
        if os.getpid() == arbiter_pid:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_DIR_ENV, None)
    if code not in (0, None):
        log.error("stopped: a worker could not start (exit %s)", code)
        return EXIT_WORKERS_FAILED
    log.info("stopped; all workers ended")
    return 0
