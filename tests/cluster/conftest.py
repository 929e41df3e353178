"""Several gateway nodes as real processes (`eid-gateway serve`) on one real redis-server.

The eID-Server simulator runs as its own process (`eid-gateway simulator`): the embedded one keeps its
sessions in the memory of one node, so a flow begun on node A could not be finished on node B. Every
node reads the same config file (same keys, same services); only the port differs. The test plays the
city service (signed SAML AuthnRequests with the demo service's key), the browsers (one cookie jar and
one made-up client address each, sent as X-Forwarded-For as a reverse proxy would) and AusweisApp
(fetches the TC Token, performs the simulator's card step, follows the refresh address).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from yarl import URL

from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.eid.results import MAJOR_OK, REFRESH_ERROR, REFRESH_OK, refresh_minor
from eid_gateway.eid.tctoken import ErrorTcToken, TcToken, parse_tc_token, refresh_url
from eid_gateway.instance import write_example_config
from eid_gateway.store.redis_server import RedisServer, free_port
from saml import AuthnRequest, build_authn_request, parse_xml, redirect_url
from saml.xml import NS

EID_GATEWAY = str(Path(sys.executable).parent / "eid-gateway")
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


@dataclass
class Node:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, url_or_path: str) -> str:
        """The same path and (raw) query on this node: what a reverse proxy does when it picks a node."""
        parts = urlsplit(url_or_path)
        return self.origin + parts.path + (f"?{parts.query}" if parts.query else "")


def run_on_port(command: str, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``eid-gateway COMMAND`` (``serve``, ``simulator``) with ``config`` on ``127.0.0.1:port``, warnings and
    worse logged to ``log``."""
    argv = [EID_GATEWAY, "--log-level", "WARNING", command, "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


def node_config_text(example: str, *, redis_url: str, prefix: str, sim_port: int, extra: str = "") -> str:
    """The `init` example turned into a cluster node's config: Redis store, separate simulator."""
    text, n = re.subn(
        r'(?m)^kind = "sqlite"\npath = "[^"]*"$',
        f'kind = "redis"\nurl = "{redis_url}"\nkey_prefix = "{prefix}"\n'
        "retries = 1\ntimeout_seconds = 1.0\nconnect_timeout_seconds = 0.5",
        example,
    )
    assert n == 1, "the [store] section of the example config changed"
    text, n = re.subn(
        r'(?m)^kind = "simulator"$',
        f'kind = "tr03130"\nurl = "http://127.0.0.1:{sim_port}/eid-sim/eID"\nserver_cert = "certs/simulator.crt"',
        text,
    )
    assert n == 1, "the [eid_server] section of the example config changed"
    return text + "\n" + extra


@dataclass
class Cluster:
    directory: Path
    public_origin: str
    config_path: Path
    config: GatewayConfig
    redis: RedisServer
    sim: Node
    nodes: dict[str, Node] = field(default_factory=dict)

    def start(self, name: str, port: int | None = None, config_path: Path | None = None) -> Node:
        port = port or free_port()
        log = self.directory / f"node-{name}-{port}.log"
        node = Node(name, port, run_on_port("serve", config_path or self.config_path, port, log), log)
        self.nodes[name] = node
        return node

    def wait(self, *nodes: Node) -> None:
        for node in nodes:
            _wait_http(node.origin + "/healthz", node.process, node.log)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        node = self.nodes.pop(name)
        if node.process.poll() is None:
            os.kill(node.process.pid, sig)
        try:
            node.process.wait(10)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(10)


def make_cluster(
    directory: Path,
    redis: RedisServer,
    *,
    extra: str = "",
    nodes: tuple[str, ...] = ("a", "b"),
    prefix: str | None = None,
) -> Cluster:
    """Write configs, start the simulator and the nodes (in parallel), wait until all answer."""
    public_origin = f"http://127.0.0.1:{free_port()}"  # the reverse proxy's origin (URLs in tokens)
    sim_port = free_port()
    write_example_config(directory, public_origin, 8080)
    example = (directory / "gateway.toml").read_text(encoding="utf-8")
    sim_config = directory / "simulator.toml"
    sim_config.write_text(example.replace(public_origin, f"http://127.0.0.1:{sim_port}"), encoding="utf-8")
    node_config = directory / "node.toml"
    node_config.write_text(
        node_config_text(
            example, redis_url=redis.url, prefix=prefix or f"c{secrets.token_hex(4)}:", sim_port=sim_port, extra=extra
        ),
        encoding="utf-8",
    )
    sim_log = directory / "simulator.log"
    sim_process = run_on_port("simulator", sim_config, sim_port, sim_log)
    cluster = Cluster(
        directory,
        public_origin,
        node_config,
        load_config(node_config),
        redis,
        Node("sim", sim_port, sim_process, sim_log),
    )
    try:
        started = [cluster.start(name) for name in nodes]
        cluster.wait(cluster.sim, *started)
    except BaseException:
        close_cluster(cluster)  # leave no processes behind
        raise
    return cluster


def close_cluster(cluster: Cluster) -> None:
    for name in list(cluster.nodes):
        try:
            cluster.kill(name, signal.SIGTERM)
        except subprocess.TimeoutExpired:
            cluster.nodes.pop(name, None)
    if cluster.sim.process.poll() is None:
        cluster.sim.process.terminate()
    cluster.sim.process.wait(10)


UNLIMITED = """
[limits]
starts_per_ip = 100000
starts_per_service = 1000000
pending_per_ip = 100000
"""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Cluster]:
    """Two nodes (a, b) and the simulator, shared by the session (a test that kills a node restarts it)."""
    directory = tmp_path_factory.mktemp("cluster")
    c = make_cluster(directory, redis_server, extra=UNLIMITED + '\n[audit]\njsonl_path = "audit.jsonl"\n')
    yield c
    close_cluster(c)


# --- the city service, the browser and AusweisApp --------------------------------------------------------


def fake_address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


class Citizen:
    """One citizen: a browser (cookies, one client address) and an AusweisApp (no cookies)."""

    def __init__(self, cluster: Cluster | Any, address: str | None = None) -> None:
        self.cluster = cluster  # anything with the gateway's ``config``
        self.address = address or fake_address()
        headers = {"X-Forwarded-For": self.address}
        self.browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers)
        self.app = aiohttp.ClientSession(headers=headers)
        self.request_id = ""
        self.ref = ""
        self.tc_token: bytes = b""

    async def close(self) -> None:
        await self.browser.close()
        await self.app.close()

    def sso_url(self) -> str:
        """A fresh signed AuthnRequest of the demo service (HTTP-Redirect binding)."""
        config = self.cluster.config
        assert config.demo.request_signing_key is not None
        sso = config.public_origin + "/saml/sso"
        request = AuthnRequest(
            issuer=config.demo.entity_id, destination=sso, acs_url=config.public_origin + "/demo/acs"
        )
        self.request_id = request.id
        return redirect_url(sso, build_authn_request(request), relay_state="rs", key=config.demo.request_signing_key)

    async def get(self, url: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.browser.get(URL(url, encoded=True), allow_redirects=False, **kw)

    async def begin(self, node: Node, sso_url: str | None = None) -> str:
        resp = await self.get(node.url(sso_url or self.sso_url()))
        body = await resp.text()
        assert resp.status == 303, (resp.status, body[:500])
        m = re.fullmatch(r"/signin/([A-Za-z0-9_-]{43})", resp.headers["Location"])
        assert m
        self.ref = m.group(1)
        return self.ref

    async def start_page(self, node: Node) -> str:
        resp = await self.get(node.url(f"/signin/{self.ref}"))
        text = await resp.text()
        assert resp.status == 200, (resp.status, text[:300])
        return text

    async def fetch_tc_token(self, node: Node) -> TcToken | ErrorTcToken:
        async with self.app.get(node.url(f"/eid/tctoken/{self.ref}"), allow_redirects=False) as resp:
            assert resp.status == 200, resp.status
            self.tc_token = await resp.read()
        return parse_tc_token(self.tc_token)

    async def card_step(self, identity: str = "erika", pin: str = "123456") -> str:
        """AusweisApp + card at the simulator (the TC Token's ServerAddress); the refresh URL it names."""
        token = parse_tc_token(self.tc_token)
        assert isinstance(token, TcToken)
        form = {"SessionIdentifier": token.session_identifier, "identity": identity, "pin": pin, "action": "confirm"}
        async with self.app.post(token.server_address, data=form) as resp:
            answer = await resp.json()
        if answer.get("result_major") == MAJOR_OK:
            return refresh_url(token.refresh_address, REFRESH_OK)
        return refresh_url(token.refresh_address, REFRESH_ERROR, refresh_minor(answer.get("result_minor")))

    async def refresh(self, node: Node, next_url: str) -> tuple[int, str]:
        resp = await self.get(node.url(next_url))
        return resp.status, await resp.text()

    def saml_status(self, page: str) -> str:
        """The top-level StatusCode of the SAML Response in the POST form, checked against our request."""
        m = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
        assert m, page[:500]
        response = parse_xml(base64.b64decode(m.group(1)))
        assert response.get("InResponseTo") == self.request_id
        code = response.find("samlp:Status/samlp:StatusCode", NS)
        assert code is not None
        return str(code.get("Value"))


NewCitizen = Callable[..., Citizen]


@pytest.fixture
async def new_citizen(cluster: Cluster) -> AsyncIterator[NewCitizen]:
    made: list[Citizen] = []

    def new(address: str | None = None, on: Cluster | None = None) -> Citizen:
        c = Citizen(on or cluster, address)
        made.append(c)
        return c

    yield new
    for c in made:
        await c.close()
