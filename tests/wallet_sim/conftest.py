"""Fixtures of the test wallet's own tests: an in-process wallet and a stub verifier endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from eid_gateway.wallet_sim.wallet import TestWallet
from wallet_sim.verifier import StubVerifier

STATUS_URI = "https://wallet-sim.test/status/1"


@pytest.fixture(scope="session")
def wallet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wallet") / "keys"


@pytest.fixture
def wallet(wallet_dir: Path) -> TestWallet:
    return TestWallet.open(wallet_dir, status_uri=STATUS_URI)


@pytest.fixture
async def verifier(aiohttp_server: object) -> StubVerifier:
    stub = StubVerifier.generate()
    server: TestServer = await aiohttp_server(stub.app())  # type: ignore[operator]
    stub.base = str(server.make_url("")).rstrip("/")
    return stub
