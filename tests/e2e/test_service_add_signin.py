"""Issue 15, end to end: the demo city service registered by `eid-gateway service add` from its SAML
metadata (instead of the [[services]] block `init` writes), then a citizen signs in through it; and the
metadata fetched from a URL."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest
from aiohttp import web

from eid_gateway.service_add import ServiceAddError, read_metadata_source
from helpers.cli import run_cli
from helpers.gateway import Browser, Servers, StartGateway, ausweisapp, deliver, open_start_page, tc_token_url_of
from helpers.ports import bound_socket
from saml import algorithms as A
from saml import metadata as md
from saml.keys import load_certificate
from saml.messages import BINDING_HTTP_POST, NAMEID_PERSISTENT
from saml.xml import to_bytes

DEMO_ATTRIBUTES = "given_names,family_names,date_of_birth,address,pseudonym"


def demo_metadata(directory: Path, origin: str, methods: tuple[str, ...]) -> bytes:
    """The demo SP's metadata, made with the project's builder from the keys `init` wrote for it."""
    certs = directory / "certs"
    signing = load_certificate((certs / "demo-service-signing.crt").read_bytes())
    encryption = load_certificate((certs / "demo-service.crt").read_bytes())
    return to_bytes(
        md.build_metadata(
            md.EntityDescriptor(
                f"{origin}/demo/metadata",
                sp=md.SPSSODescriptor(
                    acs_services=(md.Endpoint(BINDING_HTTP_POST, f"{origin}/demo/acs"),),
                    keys=(
                        md.KeyDescriptor(signing, md.USE_SIGNING),
                        md.KeyDescriptor(encryption, md.USE_ENCRYPTION, methods),
                    ),
                    name_id_formats=(NAMEID_PERSISTENT,),
                    authn_requests_signed=True,
                ),
            )
        )
    )


def add_demo(config: Path, metadata: str, *extra: str) -> tuple[int, str, str]:
    """`eid-gateway service add` of the demo service from ``metadata`` (a file or URL) into ``config``."""
    return run_cli(
        "service",
        "add",
        "--id",
        "demo",
        "--name-de",
        "Meldebescheinigung beantragen",
        "--attributes",
        DEMO_ATTRIBUTES,
        "--saml-metadata",
        metadata,
        "--config",
        str(config),
        *extra,
    )


def without_services(text: str) -> str:
    """The `init` config minus its [[services]] tables (they are the last part of the file)."""
    head, _, _ = text.partition("# One [[services]] table per city service")
    assert re.search(r"^\[\[services\]\]", head, re.M) is None and head != text
    return head


async def test_signin_with_a_service_added_from_its_metadata(
    start_gateway: StartGateway, browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    directory = tmp_path / "instance"

    def register(text: str) -> str:
        config = directory / "gateway.toml"
        config.write_text(without_services(text), encoding="utf-8")
        origin = re.search(r'^public_origin = "([^"]+)"', text, re.M)
        assert origin is not None
        metadata = tmp_path / "demo-metadata.xml"
        # it lists only the XML Enc 1.1 key transport (not the default): the gateway must use that one
        metadata.write_bytes(demo_metadata(directory, origin[1], (A.AES256_GCM, A.RSA_OAEP)))
        code, _, err = add_demo(config, str(metadata))
        assert code == 0, err
        return config.read_text(encoding="utf-8")

    gw = await start_gateway(edit_config=register)
    [service] = gw.config.services.services
    assert service.saml is not None and service.saml.key_transport == "rsa-oaep"
    start = await open_start_page(browser, gw)
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    post_page = await browser.get(step.next_url)
    result = await deliver(browser, post_page)
    assert result.status == 200, result.text
    table = {str(row.findtext("th")): str(row.findtext("td")) for row in result.doc().iter("tr")}
    assert table["Familienname"] == "MUSTERMANN" and table["Vornamen"] == "ERIKA"
    assert table["Verschlüsselt übertragen"] == "ja"
    [form] = post_page.forms()
    raw = base64.b64decode(next(i.value for i in form.inputs if i.name == "SAMLResponse"))
    assert b"MUSTERMANN" not in raw
    assert f'Algorithm="{A.RSA_OAEP}"'.encode() in raw and A.RSA_OAEP_MGF1P.encode() not in raw


async def test_metadata_fetched_from_a_url(servers: Servers, start_gateway: StartGateway, tmp_path: Path) -> None:
    gw = await start_gateway()
    config = gw.directory / "gateway.toml"
    config.write_text(without_services(config.read_text(encoding="utf-8")), encoding="utf-8")
    body = demo_metadata(gw.directory, gw.origin, ())

    async def metadata(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/samlmetadata+xml")

    app = web.Application()
    app.router.add_get("/sp/metadata", metadata)
    url = await servers.serve(app) + "/sp/metadata"
    # https only: an http URL needs the development flag
    code, _, err = await asyncio.to_thread(add_demo, config, url)
    assert code == 2 and "must be https" in err
    code, _, err = await asyncio.to_thread(add_demo, config, url, "--allow-http")
    assert code == 0, err
    code, _, err = await asyncio.to_thread(add_demo, config, url.replace("/sp/", "/missing/"), "--allow-http")
    assert code == 2 and "HTTP 404" in err
    text = config.read_text(encoding="utf-8")
    assert f'entity_id = "{gw.origin}/demo/metadata"' in text and "key_transport" not in text


def test_a_metadata_url_that_never_answers_times_out() -> None:
    """A server that accepts the connection and then says nothing: the fetch ends at its timeout."""
    sock = bound_socket()
    sock.listen(1)  # connections queue up, nobody ever reads or answers
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/metadata"
        with pytest.raises(ServiceAddError, match="timed out"):
            read_metadata_source(url, allow_http=True, timeout=0.5)
    finally:
        sock.close()
