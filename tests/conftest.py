"""Fixtures every test directory shares, and which tests are ``slow``.

The helpers behind them are the ``helpers`` package (tests/helpers): ports, the fake clock, the reused
development keys, Chromium, the in-process gateway with its scripted browser. ``tests/`` is on sys.path
by ``pythonpath = ["tests"]`` (pyproject.toml), so ``import helpers`` works from every test module.

``./dev test -m "not slow"`` runs the fast subset: everything except the tests below that start real
Apache/shibd, AusweisApp, Chromium, Redis clusters, Node, PC/SC daemons or gateway processes, and the fuzzers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where used: this file loads for every test, also the ones needing no gateway
    from eid_gateway.store.redis_server import RedisServer
    from helpers.gateway import Browser, Servers, StartGateway
    from helpers.keys import DevKeys

TESTS = Path(__file__).resolve().parent

#: Test directories and modules (relative to tests/) that are slow, and why. Tests marked ``browser``
#: (a real Chromium) are slow too. Everything else is the fast subset.
SLOW: dict[str, str] = {
    "sp": "real Apache httpd with mod_auth_openidc, mod_auth_mellon, mod_shib and shibd",
    "cluster": "gateway nodes as processes on a shared redis-server",
    "rp_node": "a Node.js relying party (openid-client) as a process",
    "fuzz": "HTTP fuzzing of a running gateway",
    "fuzz_parsers": "parser fuzzing (many thousand inputs)",
    "throughput": "start-up heap and parser limits at full size",
    "eidserver/test_ausweisapp.py": "the real AusweisApp (headless) against the embedded eID-Server",
    "gateway/test_workers.py": "`eid-gateway serve --workers N` processes",
    "gateway/test_hostile_clients.py": "a served gateway process against slow and hostile clients",
    "gateway/test_service_add.py": "`eid-gateway service add` processes, metadata fetch timeouts",
    "saml_protocol/test_stores_processes.py": "replay caches shared by several processes",
    "eid/test_sessions_processes.py": "eID sessions shared by several processes",
    "store/test_sentinel.py": "Redis Sentinel failover (three redis processes)",
    "kiosks/test_agent_e2e.py": "real pcscd + vpcd + virtual card + kiosk agent",
    "cardreader/test_cr_pcsc_live.py": "real pcscd with the vpcd virtual reader",
    "cardreader/test_cr_pcsc_isolation.py": "two pcscd daemons side by side",
    "kiosks/test_agent_liveness.py": "the kiosk agent process killed and stopped against real pcscd",
    "kiosks/test_agent_install.py": "the agent installed alone in a fresh venv (pip, pyscard build)",
    "wallet_sim/test_process.py": "`eid-gateway wallet-sim` processes (the test EUDI wallet)",
    "wallet_sim/test_node_wallet.py": "Node.js processes (the second test wallet, tests/wallet_node)",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(item.path).resolve().relative_to(TESTS).as_posix()
        parts = relative.split("/")
        prefixes = {"/".join(parts[:n]) for n in range(1, len(parts) + 1)}
        if item.get_closest_marker("browser") is not None or prefixes & SLOW.keys():
            item.add_marker(pytest.mark.slow)


# --- keys -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dev_keys(tmp_path_factory: pytest.TempPathFactory) -> DevKeys:
    """One development key set per run, written by the real generator."""
    from helpers.keys import DevKeys

    return DevKeys(tmp_path_factory.mktemp("dev-keys"))


@pytest.fixture
def reuse_dev_keys(monkeypatch: pytest.MonkeyPatch, dev_keys: DevKeys) -> DevKeys:
    """``init`` in this test copies the run's development keys instead of generating eight new ones."""
    from helpers.keys import reuse_in_init

    reuse_in_init(monkeypatch, dev_keys)
    return dev_keys


# --- the in-process gateway, its browser and servers --------------------------------------------------------


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    from helpers.gateway import Servers

    s = Servers()
    yield s
    await s.close()


@pytest.fixture
def start_gateway(servers: Servers, tmp_path: Path, reuse_dev_keys: DevKeys) -> StartGateway:
    """Start a gateway (``init`` into ``tmp_path/instance`` with the run's keys, load, build, serve)."""
    from helpers.gateway import gateway_starter

    return gateway_starter(servers, tmp_path / "instance")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    import aiohttp

    from helpers.gateway import Browser

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield Browser(session)


# --- Chromium ---------------------------------------------------------------------------------------------


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium for one test (helpers/chromium.py); its module sets ``pytestmark = BROWSER_MARKS``."""
    from helpers.chromium import launched

    async with launched() as browser:
        yield browser


# --- Redis ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server (Debian's package, own port and directory) for the whole run; every test that
    uses it writes under a key prefix of its own."""
    from eid_gateway.store.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
