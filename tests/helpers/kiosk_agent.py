"""The real kiosk agent (cardreader/agent.py) as its own process, as a kiosk PC runs it, for tests that
start gateways as processes (tests/kiosks/test_agent_liveness.py starts it from asyncio instead)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_agent_process(
    gateway: str, kiosk_id: str, token: str, directory: Path, *, heartbeat: float, ca_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """``gateway``: the kiosk base URL (``…/kiosks/``); the token goes in an owner-only file, the log
    to ``directory/agent.log``."""
    cred = directory / "credential"
    cred.write_text(token + "\n")
    cred.chmod(0o600)
    args = ["--gateway", gateway, "--kiosk-id", kiosk_id, "--credential-file", str(cred)]
    args += ["--heartbeat", str(heartbeat)] + (["--ca-file", str(ca_file)] if ca_file is not None else [])
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from cardreader.agent import main; sys.exit(main(sys.argv[1:]))", *args],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "agent.log").open("wb"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
