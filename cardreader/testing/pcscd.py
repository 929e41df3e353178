"""Start and stop a foreground pcscd for tests and demos (TEST FACILITY), isolated per run.

Every run gets its own pcscd: its own client socket and its own vpcd port, so two test runs (or a
test run and a system pcscd) on one machine never meet. pcscd 1.9.9 always binds the fixed
/run/pcscd/pcscd.comm itself (PCSCLITE_CSOCK_NAME is read by the *client* library only), but it
accepts a listening socket handed over by systemd-style socket activation (LISTEN_FDS/LISTEN_PID,
fd 3): we bind a socket in a private directory, hand it over, and point clients at it with
PCSCLITE_CSOCK_NAME. The per-run reader.conf.d (pcscd -c) gives vpcd a free port pair
(DEVICENAME /dev/null:<port>; slot 1 listens on port + 1).

One leftover of pcscd we cannot move: it writes and, on exit, removes /run/pcscd/pcscd.pid (nothing
but `pcscd --hotplug` reads it). The process is stopped by the PID we started, never by name.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")  # the system daemon's socket (not used by tests)
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
#: clients (libpcsclite, so pyscard and every child process) read the socket path from here
SOCKET_ENV = "PCSCLITE_CSOCK_NAME"
#: the vpcd slot-0 port of this run; VirtualIdCard connects there by default
VPCD_PORT_ENV = "EID_TEST_VPCD_PORT"
#: hands the listening socket (fd {fd}) to pcscd as fd 3 the way systemd does (LISTEN_PID must be
#: pcscd's own PID: the shell's $$ stays the same through exec; bash, as dash takes fds 0-9 only)
_ACTIVATE = 'exec 3<&{fd} {fd}<&-; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"'


class PcscdUnavailable(RuntimeError):
    """pcscd or vpcd is not installed (tests skip on this, and only on this)."""


def missing_parts() -> list[str]:
    """What of pcscd + vpcd is not installed; empty when a test can run."""
    missing = []
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        missing.append("pcscd (apt-get install pcscd)")
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        missing.append("vpcd (apt-get install vsmartcard-vpcd)")
    return missing


PACE_READER_SOURCE = Path(__file__).with_name("ifd_pace_reader.c")
PACE_READER_NAME = "eid-gateway Test PACE Reader"


def free_vpcd_port(tries: int = 50) -> int:
    """A port p with p and p + 1 free on every interface (vpcd listens on both, on 0.0.0.0)."""
    for _ in range(tries):
        with socket.socket() as first:
            first.bind(("0.0.0.0", 0))
            port: int = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port pair for vpcd")


def build_reader_config(workdir: Path, vpcd_port: int) -> tuple[Path, bool]:
    """This run's reader.conf.d: vpcd on *vpcd_port* (and + 1), plus the test PACE reader (a tiny IFD
    handler built here with gcc against libpcsclite-dev) when it can be built. Returns the directory
    and whether the PACE reader is in it."""
    conf = workdir / "reader.conf.d"  # pcscd parses every file in it: keep the library outside
    conf.mkdir(exist_ok=True)
    (conf / "vpcd").write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:0x{vpcd_port:04X}\n'
        f"LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{vpcd_port:04X}\n",
        encoding="utf-8",
    )
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/PCSC/ifdhandler.h").exists():
        return conf, False
    lib = workdir / "libifd_eid_gateway_pace_test.so"
    built = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-I/usr/include/PCSC", "-o", str(lib), str(PACE_READER_SOURCE)],
        capture_output=True,
    )
    if built.returncode != 0:
        return conf, False
    (conf / "eid-gateway-pace-test").write_text(
        f'FRIENDLYNAME "{PACE_READER_NAME}"\nDEVICENAME   /dev/null\nLIBPATH      {lib}\n', encoding="utf-8"
    )
    return conf, True


class Pcscd:
    """One foreground pcscd process on its own socket, with its log captured; start() waits until it
    is ready. Clients reach it when ``PCSCLITE_CSOCK_NAME`` is *socket_path* (:meth:`client_env`)."""

    def __init__(self, config_dir: Path, socket_path: Path, log_path: Path | None = None) -> None:
        self.config_dir = config_dir
        self.socket_path = socket_path
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def client_env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket_path)}

    def _listen(self) -> socket.socket:
        """A fresh listening socket at socket_path (a stale file from a killed run is replaced)."""
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o666)  # as pcscd does: clients of other users may connect
        sock.listen(64)
        return sock

    def start(self, timeout: float = 10.0) -> None:
        missing = missing_parts()
        if missing:
            raise PcscdUnavailable("not installed: " + ", ".join(missing))
        exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
        self._ready.clear()
        self.lines = []
        sock = self._listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        try:
            # the parent must not keep the socket: with pcscd gone, clients are to be refused at once
            self.proc = subprocess.Popen(
                [
                    "/bin/bash",
                    "-c",
                    _ACTIVATE.format(fd=sock.fileno()),
                    "pcscd",
                    exe,
                    "--foreground",
                    "--debug",
                    "-c",
                    str(self.config_dir),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
                env=env,
            )
        finally:
            sock.close()
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("pcscd did not become ready:\n" + "\n".join(self.lines[-20:]))

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        sink = open(self.log_path, "a", encoding="utf-8") if self.log_path else None
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                self.lines.append(line)
                if len(self.lines) > 2000:
                    del self.lines[:1000]
                if sink:
                    sink.write(line + "\n")
                    sink.flush()
                if "daemon ready" in line:
                    self._ready.set()
        finally:
            if sink:
                sink.close()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        # a socket-activated pcscd leaves its socket: remove it so that clients see "no service"
        try:
            self.socket_path.unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def main() -> int:
    """`python -m cardreader.testing.pcscd`: run an isolated pcscd with vpcd in the foreground until
    Ctrl-C, and print how a shell reaches it."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="eid-pcscd-"))
    port = free_vpcd_port()
    conf, pace = build_reader_config(work, port)
    d = Pcscd(conf, work / "pcscd.comm")
    d.start()
    extra = f" and '{PACE_READER_NAME} 00 00'" if pace else ""
    print(
        f"pcscd ready (pid {d.pid}); vpcd slot 0 on 127.0.0.1:{port}{extra}. Ctrl-C stops it.\n"
        f"In another shell: export {SOCKET_ENV}={d.socket_path} {VPCD_PORT_ENV}={port}",
        flush=True,
    )
    try:
        while d.proc is not None and d.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        d.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Pcscd", "PcscdUnavailable", "build_reader_config", "free_vpcd_port", "missing_parts"]
