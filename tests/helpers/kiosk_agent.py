"""The real kiosk agent (cardreader/agent.py) as its own process, as a kiosk PC runs it (started as a
plain process or from asyncio), and the ``[kiosk_monitor]`` table of a gateway it reports to: one kiosk
and one staff account."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password
from helpers.sse import Event

#: The staff account of :func:`kiosk_monitor_toml`, as an ``Authorization`` header (HTTP Basic).
STAFF_BASIC = "Basic " + base64.b64encode(b"buergerbuero:staff-secret").decode()


def kiosk_monitor_toml(token: str, *, heartbeat: float) -> str:
    """A gateway config's ``[kiosk_monitor]`` (the staff account of :data:`STAFF_BASIC`, hashed with the
    cheapest accepted scrypt) and one kiosk, ``mitte-1``, whose agent presents ``token``."""
    return f'''
[kiosk_monitor]
staff_user = "buergerbuero"
staff_password_hash = "{hash_staff_password("staff-secret", n=2**14)}"
heartbeat_seconds = {heartbeat}

[[kiosks]]
id = "mitte-1"
name = "Bürgerbüro Mitte, Platz 1"
credential_hash = "{hash_kiosk_credential(token)}"
'''


#: The agent's entry point run by this interpreter (no installed ``eid-kiosk-agent`` script needed).
AGENT_COMMAND = (sys.executable, "-c", "import sys; from cardreader.agent import main; sys.exit(main(sys.argv[1:]))")


def agent_env() -> dict[str, str]:
    """The agent's environment: unbuffered, so that what it logs reaches the test as it is written."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def agent_options(
    gateway: str, kiosk_id: str, token: str, directory: Path, *, heartbeat: float, ca_file: Path | None = None
) -> list[str]:
    """The agent's command-line options. ``gateway``: the kiosk base URL (``…/kiosks/``); the token goes
    in an owner-only file in ``directory``."""
    cred = directory / "credential"
    cred.write_text(token + "\n")
    cred.chmod(0o600)
    args = ["--gateway", gateway, "--kiosk-id", kiosk_id, "--credential-file", str(cred)]
    return args + ["--heartbeat", str(heartbeat)] + (["--ca-file", str(ca_file)] if ca_file is not None else [])


def start_agent_process(
    gateway: str, kiosk_id: str, token: str, directory: Path, *, heartbeat: float, ca_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """The agent with :func:`agent_options`, its log to ``directory/agent.log``."""
    return subprocess.Popen(
        [*AGENT_COMMAND, *agent_options(gateway, kiosk_id, token, directory, heartbeat=heartbeat, ca_file=ca_file)],
        stdout=subprocess.DEVNULL,
        stderr=(directory / "agent.log").open("wb"),
        env=agent_env(),
    )


async def start_agent_subprocess(
    gateway: str, kiosk_id: str, token: str, directory: Path, *, heartbeat: float, ca_file: Path | None = None
) -> asyncio.subprocess.Process:
    """The agent with :func:`agent_options`, started from asyncio, its log on the process's ``stderr`` pipe."""
    return await asyncio.create_subprocess_exec(
        *AGENT_COMMAND,
        *agent_options(gateway, kiosk_id, token, directory, heartbeat=heartbeat, ca_file=ca_file),
        stderr=subprocess.PIPE,
        env=agent_env(),
    )


def kiosk_post(conn: http.client.HTTPConnection, token: str, kind: str, body: dict[str, object]) -> dict[str, object]:
    """One message of the kiosk agent's protocol (cardreader/agent.py) from kiosk ``mitte-1`` on ``conn``,
    answered 200: the answer."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn.request("POST", f"/kiosks/api/v1/kiosks/mitte-1/{kind}", body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    assert resp.status == 200, data
    answer: dict[str, object] = json.loads(data)
    return answer


def kiosk_row(word: str) -> Callable[[Event], bool]:
    """A dashboard stream's event that shows kiosk ``mitte-1``'s row with the status ``word``."""
    return lambda e: e.name == "kiosk" and e.data["id"] == "mitte-1" and f'"badge status-{word}"' in e.data["row"]
