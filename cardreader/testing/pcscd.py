"""Start and stop a foreground pcscd for tests and demos (TEST FACILITY).

Only one pcscd can own /run/pcscd/pcscd.comm, so a test session starts one and shares it. It is
stopped by the PID we started, never by name.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")


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


def build_reader_config(workdir: Path) -> Path | None:
    """A reader.conf.d for tests: vpcd plus the test PACE reader (a tiny IFD handler built here with
    gcc against libpcsclite-dev). None when it cannot be built; pcscd then uses its default config."""
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/PCSC/ifdhandler.h").exists() or not VPCD_CONF.exists():
        return None
    lib = workdir / "libifd_eid_gateway_pace_test.so"
    built = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-I/usr/include/PCSC", "-o", str(lib), str(PACE_READER_SOURCE)],
        capture_output=True,
    )
    if built.returncode != 0:
        return None
    conf = workdir / "reader.conf.d"  # pcscd parses every file in it: keep the library outside
    conf.mkdir(exist_ok=True)
    (conf / "vpcd").write_bytes(VPCD_CONF.read_bytes())
    (conf / "eid-gateway-pace-test").write_text(
        f'FRIENDLYNAME "{PACE_READER_NAME}"\nDEVICENAME   /dev/null\nLIBPATH      {lib}\n', encoding="utf-8"
    )
    return conf


def pcscd_running() -> bool:
    return PCSCD_SOCKET.exists()


class Pcscd:
    """One foreground pcscd process with its log captured; start() waits until it is ready."""

    def __init__(self, config_dir: Path | None = None, log_path: Path | None = None) -> None:
        self.config_dir = config_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        missing = missing_parts()
        if missing:
            raise PcscdUnavailable("not installed: " + ", ".join(missing))
        exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
        cmd = [exe, "--foreground", "--debug"]
        if self.config_dir is not None:
            cmd += ["-c", str(self.config_dir)]
        self._ready.clear()
        self.lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        # pcscd removes its socket on exit; wait so that a restart does not see a stale one
        deadline = time.monotonic() + 3
        while PCSCD_SOCKET.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def main() -> int:
    """`python -m cardreader.testing.pcscd`: run pcscd with vpcd in the foreground until Ctrl-C."""
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="eid-pcscd-"))
    conf = build_reader_config(work)
    d = Pcscd(config_dir=conf)
    d.start()
    extra = f" and '{PACE_READER_NAME} 00 00'" if conf else ""
    print(f"pcscd ready (pid {d.pid}); vpcd slot 0 on 127.0.0.1:35963{extra}. Ctrl-C stops it.", flush=True)
    try:
        while d.proc is not None and d.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Pcscd", "PcscdUnavailable", "missing_parts", "pcscd_running"]
