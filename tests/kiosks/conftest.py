"""Kiosk tests: a real aiohttp gateway on loopback (TLS where the agent talks to it), real pcscd."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cardreader.testing.fixtures import Deadline, pcscd, pcscd_session, vcard  # noqa: F401  (pytest fixtures)
from eid_gateway.kiosks import create_kiosk_app
from eid_gateway.kiosks.credentials import hash_kiosk_credential, hash_staff_password
from eid_gateway.kiosks.keys import REGISTRY
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.settings import KioskEntry, KioskSettings
from eid_gateway.kiosks.state_store import KioskStateStore, MemoryKioskStateStore

STAFF_USER = "buergerbuero"
STAFF_PASSWORD = "correct horse battery staple"
TOKENS = {"mitte-1": "tok-mitte-1-" + "a" * 32, "nord-2": "tok-nord-2-" + "b" * 32}
# scrypt at the minimum accepted cost keeps the suite fast; production hashes use the default
_STAFF_HASH = hash_staff_password(STAFF_PASSWORD, n=2**14)


def make_settings(heartbeat: float = 10.0, missed: int = 3) -> KioskSettings:
    return KioskSettings(
        kiosks=(
            KioskEntry("mitte-1", "Bürgerbüro Mitte, Platz 1", hash_kiosk_credential(TOKENS["mitte-1"])),
            KioskEntry("nord-2", "Bürgerbüro Nord <Platz 2>", hash_kiosk_credential(TOKENS["nord-2"])),
        ),
        staff_user=STAFF_USER,
        staff_password_hash=_STAFF_HASH,
        heartbeat_seconds=heartbeat,
        stale_after_missed=missed,
    )


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Async wait for a truthy value (the event loop keeps serving the gateway meanwhile)."""
    deadline = Deadline(timeout)
    while not (value := predicate()):
        deadline.check()
        await asyncio.sleep(interval)
    return value


@dataclass
class Received:
    kiosk: str
    kind: str
    seq: int
    summary: str | None


@dataclass
class RunningGateway:
    """The kiosk sub-app mounted at /kiosks/ like the gateway does, served on a loopback port."""

    settings: KioskSettings
    port: int
    ssl_context: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    store: KioskStateStore = field(default_factory=MemoryKioskStateStore)
    runner: web.AppRunner | None = None
    kiosk_app: web.Application | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}/kiosks/"

    @property
    def registry(self) -> KioskRegistry:
        assert self.kiosk_app is not None
        return self.kiosk_app[REGISTRY]

    async def start(self) -> None:
        received = self.received

        @web.middleware
        async def record(request, handler):
            # test instrument: what reached the gateway with a valid credential, in arrival order
            resp = await handler(request)
            parts = request.path.split("/")
            if request.method == "POST" and resp.status == 200 and len(parts) == 7:
                doc = await request.json()
                summary = None
                if "status" in doc:
                    from cardreader.model import snapshot_from_json

                    summary = snapshot_from_json(doc["status"]).summary
                received.append(Received(parts[5], parts[6], doc["seq"], summary))
            return resp

        app = web.Application(middlewares=[record])
        self.kiosk_app = create_kiosk_app(self.settings, state_store=self.store, tick_seconds=0.1)
        app.add_subapp("/kiosks/", self.kiosk_app)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class Pki:
    ca_file: Path
    server_ctx: ssl.SSLContext
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool, san=None, eku=None):
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and a kiosk client certificate (P-256)."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test CA")])
    ca = _cert("kiosk test CA", ca_key, ca_name, ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert(
        "127.0.0.1",
        srv_key,
        ca_name,
        ca_key,
        ca=False,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = _cert("kiosk mitte-1", cli_key, ca_name, ca_key, ca=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server.key").write_bytes(srv_key.private_bytes(pem, pkcs8, none))
    (d / "client.pem").write_bytes(cli.public_bytes(pem))
    (d / "client.key").write_bytes(cli_key.private_bytes(pem, pkcs8, none))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "server.pem"), str(d / "server.key"))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # asked for, not required (a proxy that requires them: test_agent_e2e)
    return Pki(
        ca_file=d / "ca.pem",
        server_ctx=ctx,
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
    )


# --- a dashboard with a kiosk in every kind of state (tests/kiosks/test_dashboard_*.py) ------------------

SCENE_TOKENS = {
    **TOKENS,
    "sued-3": "tok-sued-3-" + "c" * 32,
    "ost-4": "tok-ost-4-" + "d" * 32,
    "west-5": "tok-west-5-" + "e" * 32,
}


def scene_settings(heartbeat: float = 10.0, time_zone: str = "Europe/Berlin") -> KioskSettings:
    """Five kiosks with long names (the 360 px layout must hold them)."""
    extra = (
        KioskEntry(
            "sued-3",
            "Bürgerbüro Süd, Eingangshalle links, Information, Platz 3 (barrierefrei)",
            hash_kiosk_credential(SCENE_TOKENS["sued-3"]),
        ),
        KioskEntry("ost-4", "Bürgerbüro Ost, Platz 4", hash_kiosk_credential(SCENE_TOKENS["ost-4"])),
        KioskEntry("west-5", "Bürgerbüro West, Platz 5", hash_kiosk_credential(SCENE_TOKENS["west-5"])),
    )
    base = make_settings(heartbeat=heartbeat, missed=1)
    return KioskSettings(
        kiosks=base.kiosks + extra,
        staff_user=base.staff_user,
        staff_password_hash=base.staff_password_hash,
        heartbeat_seconds=heartbeat,
        stale_after_missed=1,
        time_zone=time_zone,
    )


async def post_scene(base: str) -> None:
    """Through the kiosk API: mitte-1 two readers (a comfort reader with an ID card, a card answering
    garbled), nord-2 refused credential, sued-3 stopped cleanly, ost-4 never reported, west-5 pcscd down."""
    import aiohttp

    from cardreader.identify import card_info
    from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState, snapshot_to_json
    from cardreader.testing.vcard import NPA_ATR, npa_card_access
    from tr03110.security_infos import parse_security_infos

    _, card = card_info(NPA_ATR, parse_security_infos(npa_card_access()))
    snaps = {
        "mitte-1": KioskSnapshot(
            ServiceState.OK,
            (
                ReaderStatus(
                    "REINER SCT cyberJack RFID komfort (4711081500) 00 00",
                    ReaderState.ID_CARD,
                    card,
                    ("eSign", "eID", "generic", "DestroyPACEChannel"),
                ),
                ReaderStatus("Virtual PCD 00 01", ReaderState.CARD_UNREADABLE, None, None, "malformed response"),
            ),
        ),
        "sued-3": KioskSnapshot(ServiceState.OK, (ReaderStatus("Virtual PCD 00 00", ReaderState.EMPTY),)),
        "west-5": KioskSnapshot(ServiceState.PCSC_UNAVAILABLE, (), "SCARD_E_NO_SERVICE"),
    }
    api = f"{base}/kiosks/api/v1/kiosks"
    async with aiohttp.ClientSession() as s:
        for kid, snap in snaps.items():
            auth = {"Authorization": f"Bearer {SCENE_TOKENS[kid]}"}
            r = await s.post(
                f"{api}/{kid}/state",
                headers=auth,
                json={"instance": "scene-agent", "seq": 1, "status": snapshot_to_json(snap)},
            )
            assert r.status == 200
        r = await s.post(
            f"{api}/sued-3/offline",
            json={"instance": "scene-agent", "seq": 2},
            headers={"Authorization": f"Bearer {SCENE_TOKENS['sued-3']}"},
        )
        assert r.status == 200
        r = await s.post(
            f"{api}/nord-2/heartbeat",
            json={"instance": "scene-agent", "seq": 1},
            headers={"Authorization": "Bearer replaced-" + "z" * 40},
        )
        assert r.status == 401
