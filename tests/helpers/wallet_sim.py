"""The test wallet as a process (``eid-gateway wallet-sim``) for tests, and the fixture that starts it.

Use in a test module: ``from helpers.wallet_sim import wallet_sim`` (a fixture, one process per test
session) and then

- ``wallet_sim.authorize_url``: the gateway's ``[wallet] invocation_url`` for same-device tests (the
  browser lands on the wallet page and clicks "Als Erika Mustermann freigeben");
- ``wallet_sim.ca_path``: the PID provider's CA certificate, the gateway's ``[wallet] trust_list``;
- ``await wallet_sim.present(invocation_url, person="andre", tamper=Tamper.WRONG_NONCE)``: the process
  presents without a browser (cross-device), returns the verifier's answer;
- ``wallet_sim.wallet()``: an in-process :class:`TestWallet` with the same keys (same pseudonyms), e.g.
  for ``present_from_qr``;
- ``wallet_sim.revoke(idx)`` / ``status_mode("unavailable")`` for the revocation tests (reset them).

:func:`node_wallet_present` is a second wallet built on maintained libraries the project did not write
(``tests/wallet_node``: @openid4vc/openid4vp and @sd-jwt/sd-jwt-vc); it presents a PID of the test wallet.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers.ports import free_port

EID_GATEWAY = str(Path(sys.executable).with_name("eid-gateway"))
NODE_WALLET = Path(__file__).resolve().parents[1] / "wallet_node" / "holder.mjs"
NODE_WALLET_INSTALLED = (NODE_WALLET.parent / "node_modules" / "@openid4vc" / "openid4vp").is_dir()
#: Start-up bound (generous: CI machines are up to 4x slower; the process usually answers within 2 s).
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass
class WalletSim:
    """A running ``eid-gateway wallet-sim`` process."""

    url: str
    directory: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def authorize_url(self) -> str:
        """The same-device wallet page: the gateway's ``invocation_url`` in tests and the demo."""
        return self.url + "/authorize"

    @property
    def ca_path(self) -> Path:
        """The PID provider's CA certificate (PEM): the gateway's trust list."""
        return self.directory / "pid-ca.crt"

    @property
    def status_uri(self) -> str:
        return self.url + "/status/1"

    def logs(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    async def present(
        self, invocation_url: str, *, person: str = "erika", tamper: Any = None, expect_ok: bool = True
    ) -> dict[str, Any]:
        """``POST /present``: the process's wallet answers ``invocation_url``; returns its JSON (``status``,
        ``redirect_uri``, ``body``, ``form``, ``presentation``). ``tamper``: a ``Tamper`` or its value."""
        body = {"invocation_url": invocation_url, "person": person, "tamper": getattr(tamper, "value", tamper)}
        timeout = aiohttp.ClientTimeout(total=START_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(self.url + "/present", json=body) as response:
                answer: dict[str, Any] = await response.json()
                if expect_ok:
                    assert response.status == 200, f"wallet-sim /present: {response.status} {answer}"
                return answer

    def _post(self, path: str) -> None:
        request = urllib.request.Request(self.url + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=START_TIMEOUT) as response:
            assert response.status == 200

    def revoke(self, idx: int, value: int = 1) -> None:
        """Set (or with ``value=0`` clear) status-list entry ``idx`` (the persons' entries: ``/persons``)."""
        self._post(f"/admin/revoke?idx={idx}&value={value}")

    def status_mode(self, mode: str) -> None:
        """``ok``, ``unavailable`` (503) or ``garbage`` (not a status list token)."""
        self._post(f"/admin/status?mode={mode}")

    def wallet(self) -> Any:
        """An in-process ``TestWallet`` holding the same keys as the process (its PIDs name the same status list)."""
        from eid_gateway.wallet_sim.wallet import TestWallet

        return TestWallet.open(self.directory, status_uri=self.status_uri)


def start_wallet_sim(directory: Path, log: Path, *extra: str) -> WalletSim:
    """Start ``eid-gateway wallet-sim`` on a free loopback port and wait until it answers."""
    port = free_port()
    process = subprocess.Popen(
        [EID_GATEWAY, "wallet-sim", "--listen", f"127.0.0.1:{port}", "--dir", str(directory), *extra],
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    sim = WalletSim(f"http://127.0.0.1:{port}", directory, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"wallet-sim exited with {process.returncode}:\n{sim.logs()}")
        try:
            with urllib.request.urlopen(sim.url + "/health", timeout=5) as response:
                if response.status == 200:
                    return sim
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_wallet_sim(sim)
            raise RuntimeError(f"wallet-sim did not answer within {START_TIMEOUT} s:\n{sim.logs()}")
        time.sleep(0.1)  # polling a condition (the port answers), bounded by the deadline


def stop_wallet_sim(sim: WalletSim) -> None:
    sim.process.terminate()
    try:
        sim.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        sim.process.kill()
        sim.process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def wallet_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WalletSim]:
    """One ``eid-gateway wallet-sim`` process per test session (keys in a fresh 0700 directory)."""
    root = tmp_path_factory.mktemp("wallet-sim")
    sim = start_wallet_sim(root / "keys", root / "wallet-sim.log")
    try:
        yield sim
    finally:
        stop_wallet_sim(sim)


async def node_wallet_present(invocation_url: str, wallet: Any, person: str = "erika") -> dict[str, Any]:
    """Present ``person``'s PID held by ``wallet`` (a ``TestWallet``) with the Node.js wallet
    (``tests/wallet_node/holder.mjs``); returns its JSON (``status``, ``body``, ``presentation``) or fails
    the test with its error. ``./dev test`` installs its packages (npm ci)."""
    node = shutil.which("node")
    if node is None or not NODE_WALLET_INSTALLED:
        pytest.fail("the Node.js test wallet is not installed: ./dev test runs npm ci in tests/wallet_node")
    holding = wallet.holding(person)
    request = {
        "invocation_url": invocation_url,
        "issuance": holding.issuance,
        "holder_jwk": json.loads(holding.holder_key.export_private()),
        "allow_http": True,  # the tests' servers listen on http://127.0.0.1
    }
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_WALLET),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), timeout=START_TIMEOUT)
    try:
        answer: dict[str, Any] = json.loads(out)
    except ValueError:
        answer = {"error": out.decode(errors="replace")}
    assert process.returncode == 0 and "error" not in answer, f"node wallet: {answer} {err.decode(errors='replace')}"
    return answer
