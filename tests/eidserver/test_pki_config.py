"""The test PKI (checked by Debian's openpace as an independent parser), the config, the CLI, and the
aiohttp adapters over real TLS."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from io import StringIO
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from eid_gateway.cli import main
from eid_gateway.config import ConfigError, load_config
from eid_gateway.eidserver.emulator import ClientEmulator
from eid_gateway.eidserver.server import create_paos_app, paos_ssl_context
from eid_gateway.eidserver.server_core import EmbeddedEidServer
from eid_gateway.eidserver.testpki import TEST_CVCA, TestPki, TestPkiError, generate_test_pki, load_test_pki
from eid_gateway.instance import write_example_config
from tr03110.cvc import Role, parse_certificate_description

from .conftest import all_required, card_for

openpace = pytest.mark.skipif(shutil.which("cvc-print") is None, reason="openpace (cvc-print) not installed")


def test_chain_and_description(pki: TestPki) -> None:
    assert str(pki.dv.authority_reference) == TEST_CVCA and pki.cvca.chat.role is Role.CVCA
    assert pki.terminal.chat.role is Role.TERMINAL
    assert pki.terminal.description_hash == hashlib.sha256(pki.description).digest()
    desc = parse_certificate_description(pki.description)
    assert desc.subject_url == "http://127.0.0.1:8080"
    tls = (pki.directory / "paos-tls.crt").read_bytes()
    from cryptography import x509

    der = x509.load_pem_x509_certificate(tls).public_bytes(serialization.Encoding.DER)
    assert desc.comm_certificates == (hashlib.sha256(der).digest(),)


@openpace
def test_openpace_parses_and_verifies_the_chain(pki: TestPki, tmp_path: Path) -> None:
    trust = tmp_path / "cvc"
    trust.mkdir()
    (trust / TEST_CVCA).write_bytes(pki.cvca.encoded)
    (trust / str(pki.dv.holder_reference)).write_bytes(pki.dv.encoded)
    out = subprocess.run(
        [
            "cvc-print",
            "--cvc",
            str(pki.directory / "terminal.cvcert"),
            "--description",
            str(pki.directory / "description.der"),
            "--cvc-dir",
            str(trust),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"CHR: {pki.terminal.holder_reference}" in out and f"CAR: {pki.dv.holder_reference}" in out
    assert "Read DG 4 (Given Names)" in out and "Restricted Identification" in out
    assert "certificate description matches certificate" in out
    assert "certificate verified" in out
    assert "subjectURL\thttp://127.0.0.1:8080" in out
    # a flipped signature bit: openpace no longer verifies it
    broken = tmp_path / "broken.cvcert"
    data = bytearray(pki.terminal.encoded)
    data[-3] ^= 0x01
    broken.write_bytes(bytes(data))
    bad = subprocess.run(
        ["cvc-print", "--cvc", str(broken), "--cvc-dir", str(trust)], capture_output=True, text=True
    ).stdout
    assert "certificate not verified" in bad


def test_load_refuses_inconsistent_pki(pki: TestPki, tmp_path: Path) -> None:
    copy = tmp_path / "pki"
    shutil.copytree(pki.directory, copy)
    (copy / "description.der").write_bytes(pki.description + b"\x00")
    with pytest.raises(TestPkiError, match="unusable"):
        load_test_pki(copy)
    (copy / "terminal.cvcert").unlink()
    with pytest.raises(TestPkiError, match="missing terminal.cvcert"):
        load_test_pki(copy)
    with pytest.raises(TestPkiError, match="refusing to overwrite"):
        generate_test_pki(pki.directory, "http://x")


def _embedded_config(tmp_path: Path, *, production: bool = False, extra: str = "") -> Path:
    instance = tmp_path / "instance"
    path = write_example_config(instance, "http://127.0.0.1:8080", 8080)
    generate_test_pki(instance / "eid-test-pki", "http://127.0.0.1:8080")
    text = path.read_text("utf-8").replace('kind = "simulator"', 'kind = "embedded-paos"', 1)
    text += '\n[embedded_paos]\npki_dir = "eid-test-pki"\nlisten_port = 9443\n' + extra
    if production:
        text = 'mode = "production"\n' + text.replace('mode = "development"', "")
    path.write_text(text, "utf-8")
    return path


def test_config_embedded_paos(tmp_path: Path) -> None:
    config = load_config(_embedded_config(tmp_path))
    assert config.eid_server.kind == "embedded-paos"
    assert config.embedded_paos is not None
    assert config.embedded_paos.public_url == "https://127.0.0.1:9443/paos"
    assert config.eid_server.server_cert == config.embedded_paos.signing.certificate


def test_config_errors_name_their_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_embedded_config(tmp_path, extra='public_url = "http://x/paos"\nbogus = 1\n'))
    text = str(exc.value)
    assert "embedded_paos.public_url: must be an absolute https URL" in text
    assert "embedded_paos.bogus: unknown key" in text


def test_production_refuses_the_test_pki(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_embedded_config(tmp_path, production=True))
    assert "embedded_paos.pki_dir: this is the test PKI (CVCA DETESTeID00005); production refuses it" in str(exc.value)


def test_missing_pki_is_reported(tmp_path: Path) -> None:
    path = _embedded_config(tmp_path)
    shutil.rmtree(path.parent / "eid-test-pki")
    with pytest.raises(ConfigError, match="run `eid-gateway dev-pki`"):
        load_config(path)


def test_cli_dev_pki(tmp_path: Path) -> None:
    out, err = StringIO(), StringIO()
    assert main(["dev-pki", "--dir", str(tmp_path), "--origin", "https://eid.example.de"], stdout=out, stderr=err) == 0
    assert "DETESTEIDGW00001" in out.getvalue() and 'kind = "embedded-paos"' in out.getvalue()
    assert load_test_pki(tmp_path / "eid-test-pki").terminal.chat.mask
    assert main(["dev-pki", "--dir", str(tmp_path)], stdout=out, stderr=err) == 1
    assert "refusing to overwrite" in err.getvalue()


async def test_paos_endpoint_over_tls(server: EmbeddedEidServer, pki: TestPki) -> None:
    """The aiohttp adapter on a real TLS listener, driven by the client emulator."""
    runner = web.AppRunner(create_paos_app(server))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=paos_ssl_context(pki.tls_cert_path, pki.tls_key_path))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client_ctx = ssl.create_default_context(cafile=str(pki.tls_cert_path))
    resp = server.use_id(all_required())
    assert resp.psk is not None and resp.session_id is not None
    emu = ClientEmulator(card_for(pki), resp.psk.id)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as http:
            body: bytes | None = emu.start()
            while body is not None:
                async with http.post(
                    f"https://localhost:{port}/paos",
                    data=body,
                    headers={
                        "Content-Type": "application/vnd.paos+xml",
                        "requestid": resp.psk.id,
                        "PAOS": 'ver="urn:liberty:paos:2006-08"',
                    },
                ) as r:
                    assert r.status == 200 and r.headers["Content-Type"].startswith("application/vnd.paos+xml")
                    assert r.headers["Cache-Control"] == "no-store"
                    body = emu.answer(await r.read())
            async with http.post(f"https://localhost:{port}/paos", data=b"garbage") as r:
                assert r.status == 400
            async with http.get(f"https://localhost:{port}/paos") as r:
                assert r.status == 405
    finally:
        await runner.cleanup()
    from eid_gateway.eid.messages import GetResultRequest

    assert server.get_result(GetResultRequest(resp.session_id, 1)).result.ok


def test_browser_redirect_url_mirrors_ausweisapp() -> None:
    from eid_gateway.smoke_test import AuthOutcome, browser_redirect_url

    ok = AuthOutcome("https://gw/eid/refresh/r", {"major": "http://www.bsi.bund.de/ecard/api/1.1/resultmajor#ok"})
    assert browser_redirect_url(ok) == "https://gw/eid/refresh/r?ResultMajor=ok"
    minor = "http://www.bsi.bund.de/ecard/api/1.1/resultminor/sal#cancellationByUser"
    cancel = AuthOutcome("https://gw/e?x=1", {"major": "…#error", "minor": minor})
    assert browser_redirect_url(cancel) == "https://gw/e?x=1&ResultMajor=error&ResultMinor=cancellationByUser"
    other = AuthOutcome("https://gw/e", {"major": "…#error", "minor": "…/al/common#unknownError"})
    assert browser_redirect_url(other).endswith("ResultMinor=clientError")
