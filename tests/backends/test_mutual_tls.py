"""The TR-03130 client against the simulator's eID-Interface over real mutual TLS on loopback: it works
with the dev PKI, and each TLS misconfiguration fails with its own clear error."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from certs.devpki import generate_ca
from eid_gateway.backends.tls import TLS12_CIPHERS, EidTlsError, TlsFailure, client_context
from eid_gateway.backends.tr03130 import Tr03130Client
from eid_gateway.core.port import EidRequest
from eid_gateway.identity import Attribute
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem

from .tlsenv import Pki, TlsSimulator, make_pki, start_tls_simulator, tls_client

REQUEST = EidRequest(required=frozenset({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.PSEUDONYM}))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def sim(pki: Pki) -> AsyncIterator[TlsSimulator]:
    env = await start_tls_simulator(pki, pki.server_cert())
    yield env
    await env.close()


async def test_sign_in_over_mutual_tls(pki: Pki, sim: TlsSimulator) -> None:
    client = tls_client(pki, sim.eid_url)
    try:
        info = await client.server_info()
        assert "simulator" in info.version
        session = await client.start_session(REQUEST)
        assert session.psk_id is not None
        sim.simulator.core.card_step(session.psk_id, "erika", "123456")
        identity = await client.fetch_result(session, 1)
        assert identity.family_names == "MUSTERMANN" and identity.restricted_id
    finally:
        await client.close()


@asynccontextmanager
async def _client_against(pki: Pki, server_cert: KeyPair, **client_options: Any) -> AsyncIterator[Tr03130Client]:
    """A TR-03130 client (:func:`tls_client`) against a TLS simulator presenting ``server_cert``; both
    closed afterwards."""
    env = await start_tls_simulator(pki, server_cert)
    client = tls_client(pki, env.eid_url, **client_options)
    try:
        yield client
    finally:
        await client.close()
        await env.close()


async def _failure(client_call: object) -> EidTlsError:
    assert callable(client_call)
    with pytest.raises(EidTlsError) as caught:
        await client_call()
    return caught.value


async def test_wrong_client_certificate_is_refused_by_the_server(pki: Pki, sim: TlsSimulator) -> None:
    stranger = generate_key_pair("ec-p256", "not the gateway")
    client = tls_client(pki, sim.eid_url, client=stranger)
    try:
        error = await _failure(client.server_info)
    finally:
        await client.close()
    assert error.failure is TlsFailure.CLIENT_REJECTED
    assert "refused our client certificate" in str(error)


async def test_untrusted_server_certificate(pki: Pki, tmp_path: Path) -> None:
    other_ca = generate_ca("some other CA")
    async with _client_against(pki, pki.server_cert(ca=other_ca)) as client:
        error = await _failure(client.server_info)
    assert error.failure is TlsFailure.UNTRUSTED
    assert "certificate" in error.detail  # OpenSSL: self-signed certificate in certificate chain


async def test_expired_server_certificate(pki: Pki) -> None:
    async with _client_against(pki, pki.server_cert(expired=True)) as client:
        error = await _failure(client.server_info)
    assert error.failure is TlsFailure.EXPIRED and "expired" in error.detail


async def test_server_certificate_with_the_wrong_name(pki: Pki) -> None:
    async with _client_against(pki, pki.server_cert(hosts=("eid.example.org",))) as client:
        error = await _failure(client.server_info)
    assert error.failure is TlsFailure.NAME_MISMATCH
    assert "127.0.0.1" in error.detail
    # the configured server name (tls_server_name) is what is checked when it is set
    async with _client_against(
        pki, pki.server_cert(hosts=("eid.example.org",)), server_hostname="eid.example.org"
    ) as client:
        assert "simulator" in (await client.server_info()).version


async def test_pinned_server_certificate_as_trust_anchor(pki: Pki, tmp_path: Path) -> None:
    """tls_ca_file may hold the server's own (CA-issued) certificate instead of the CA."""
    server = pki.server_cert()
    pin = tmp_path / "pin.crt"
    pin.write_bytes(key_pair_to_pem(server)[1].split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    async with _client_against(pki, server, trust=pin) as client:
        assert (await client.server_info()).version


async def test_tls_versions_and_suites(pki: Pki, sim: TlsSimulator) -> None:
    """TLS 1.2+ only, and in TLS 1.2 only ECDHE/DHE with AES-GCM, on both sides."""
    ctx = client_context(pki.gateway, pki.ca_file)
    assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2 and ctx.check_hostname
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and set(tls12) <= set(TLS12_CIPHERS.split(":"))
    port = urlsplit(sim.eid_url).port

    async def handshake(context: ssl.SSLContext) -> tuple[str, str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        obj = writer.get_extra_info("ssl_object")
        result = (obj.version(), obj.cipher()[0])
        writer.close()
        return result

    tls12_ctx = client_context(pki.gateway, pki.ca_file)
    tls12_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = await handshake(tls12_ctx)
    assert version == "TLSv1.2" and cipher in TLS12_CIPHERS.split(":")
    cbc = client_context(pki.gateway, pki.ca_file)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA256")  # CBC: not offered by the server
    with pytest.raises((ssl.SSLError, ConnectionResetError)):  # the server aborts: no shared cipher
        await handshake(cbc)
    assert (await handshake(ctx))[0] == "TLSv1.3"
