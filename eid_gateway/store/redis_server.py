"""A throwaway ``redis-server`` process for tests and benchmarks (never the system service).

It runs on a free loopback port with its own directory, AOF persistence on and RDB snapshots off, so
that a restart (:meth:`RedisServer.restart`) shows what a production Redis with AOF keeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from eid_gateway.ports import free_port


class RedisServerError(RuntimeError):
    """redis-server is not installed or did not come up."""


class RedisServer:
    def __init__(self, directory: Path, *, port: int | None = None, appendfsync: str = "everysec") -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisServerError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.exe = exe
        self.directory = directory
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self.process.returncode}; see {self.directory / 'redis.log'}"
                )
            if self.ping():
                return
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RedisServerError("redis-server did not answer PING in time")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command in RESP, the raw reply (for INFO, CONFIG and the like in tests)."""
        return self.command_at(self.port, *args)

    @staticmethod
    def command_at(port: int, *args: str) -> bytes:
        """:meth:`command` for any local Redis or Sentinel port."""
        payload = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(0.3)
            chunks: list[bytes] = []
            while True:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)

    def info(self, section: str) -> dict[str, str]:
        raw = self.command("INFO", section).decode()
        out: dict[str, str] = {}
        for line in raw.splitlines():
            if ":" in line and not line.startswith("#"):
                k, _, v = line.partition(":")
                out[k] = v.strip()
        return out

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Stop (gracefully by default: the AOF is flushed) and start again on the same port and files."""
        self.stop(sig)
        self.start()
