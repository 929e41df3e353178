"""Issue 15: a python3-saml SP (OneLogin_Saml2_Auth driven with a request dict, as python3-saml's docs
show for frameworks other than Django/Flask) signs a citizen in through the real gateway.

The SP's settings are docs/integrations/python3-saml/settings.json, loaded unchanged (the test fills
its placeholders: host, key, certificate); the IdP part comes from the gateway's /saml/metadata through
python3-saml's own metadata parser. The SP is registered by `eid-gateway service add` from the metadata
python3-saml generates from those settings, nothing added: that metadata lists no md:EncryptionMethod,
so the gateway's default key transport (XML Enc 1.0 rsa-oaep-mgf1p) applies, and the full sign-in works
with strict=True, a signed and encrypted assertion. XML Enc 1.1 rsa-oaep, which python3-saml's XSD check
refuses, is shown here end to end as the reason for that default (docs/saml.md#key-transport).
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers.cli import service_add
from helpers.gateway import Browser, Servers, StartGateway, ausweisapp, tc_token_url_of
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    auth_module = pytest.importorskip("onelogin.saml2.auth")
    from onelogin.saml2.idp_metadata_parser import (  # type: ignore[import-untyped]
        OneLogin_Saml2_IdPMetadataParser,
    )
    from onelogin.saml2.settings import OneLogin_Saml2_Settings  # type: ignore[import-untyped]

SETTINGS = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "python3-saml" / "settings.json"
SP_HOST = "python3-saml.stadt.example"
ATTRIBUTES = "given_names,family_names,date_of_birth,place_of_birth,address,pseudonym"
ATTR = "urn:eid-gateway:attribute:"


def _pem_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


def sp_settings(sp: KeyPair) -> dict[str, Any]:
    """The documented settings file with its placeholders filled (nothing else changed)."""
    key, cert = key_pair_to_pem(sp)
    fill = {"SP_HOST": SP_HOST, "SP_CERT": _pem_body(cert), "SP_KEY": key.decode()}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            for placeholder, text in fill.items():
                value = value.replace(placeholder, text)
        return value

    settings: dict[str, Any] = walk(json.loads(SETTINGS.read_text(encoding="utf-8")))
    return settings


def request_data(path: str, post: dict[str, str] | None = None) -> dict[str, Any]:
    """What a web framework hands python3-saml about the current request (its documented dict)."""
    return {"https": "on", "http_host": SP_HOST, "script_name": path, "get_data": {}, "post_data": post or {}}


def registrar(tmp_path: Path, settings: dict[str, Any], key_transport: str | None) -> Callable[[str], str]:
    """An edit_config for start_gateway: the block `service add` writes from python3-saml's own SP
    metadata appended (plus, if given, a key_transport line, in that block only: a measurement)."""

    def register(text: str) -> str:
        config = tmp_path / "instance" / "gateway.toml"
        config.write_text(text, encoding="utf-8")  # init's demo service stays (the [demo] page needs it)
        metadata = tmp_path / "python3-saml-metadata.xml"
        sp_only = OneLogin_Saml2_Settings(settings, sp_validation_only=True)
        xml = sp_only.get_sp_metadata()
        assert sp_only.validate_metadata(xml) == []
        metadata.write_bytes(xml if isinstance(xml, bytes) else xml.encode())
        service_add(
            "python3-saml", "Wohngeld beantragen", ATTRIBUTES, "--saml-metadata", str(metadata), "--config", str(config)
        )
        written = config.read_text(encoding="utf-8")
        head, block = written[: len(text.rstrip("\n"))], written[len(text.rstrip("\n")) :]
        assert head == text.rstrip("\n") and 'id = "python3-saml"' in block
        assert "key_transport" not in block  # python3-saml's metadata names no EncryptionMethod
        if key_transport is not None:
            block, n = re.subn(
                r"^encrypt_assertions = true$",
                f'encrypt_assertions = true\nkey_transport = "{key_transport}"',
                block,
                flags=re.M,
            )
            assert n == 1
        return head + block

    return register


async def sign_in(
    start_gateway: StartGateway, browser: Browser, servers: Servers, tmp_path: Path, key_transport: str | None
) -> tuple[Any, bytes]:
    """The full sign-in; returns python3-saml's Auth after its ACS processed the Response, and the raw
    Response as the browser carried it."""
    settings = sp_settings(generate_key_pair("rsa-3072", "python3-saml sp"))
    gw = await start_gateway(edit_config=registrar(tmp_path, settings, key_transport))
    metadata = await browser.get(gw.url("/saml/metadata"))
    assert metadata.status == 200
    settings = OneLogin_Saml2_IdPMetadataParser.merge_settings(
        settings, OneLogin_Saml2_IdPMetadataParser.parse(metadata.text.encode())
    )
    assert settings["idp"]["entityId"] == gw.url("/saml/metadata")

    login = auth_module.OneLogin_Saml2_Auth(request_data("/saml/login"), settings)
    login_url = login.login(return_to=f"https://{SP_HOST}/wohngeld")
    request_id = login.get_last_request_id()
    assert login_url.startswith(gw.url("/saml/sso?")) and "&Signature=" in login_url
    start = await browser.get(login_url)
    assert start.status == 200, start.text
    assert urlsplit(start.url).path.startswith("/signin/") and "Wohngeld beantragen" in start.text
    step = await ausweisapp(servers, tc_token_url_of(start), identity="erika")
    post_page = await browser.get(step.next_url)
    [form] = post_page.forms()
    assert form.action == f"https://{SP_HOST}/saml/acs"
    fields = {str(i.name): str(i.value) for i in form.inputs if i.name}
    acs = auth_module.OneLogin_Saml2_Auth(request_data("/saml/acs", fields), settings)
    acs.process_response(request_id=request_id)
    assert fields["RelayState"] == f"https://{SP_HOST}/wohngeld"
    return acs, base64.b64decode(fields["SAMLResponse"])


async def test_python3_saml_signs_in_with_an_encrypted_assertion(
    start_gateway: StartGateway, browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    acs, raw = await sign_in(start_gateway, browser, servers, tmp_path, None)
    assert acs.get_errors() == [], acs.get_last_error_reason()
    assert b"xmlenc#rsa-oaep-mgf1p" in raw
    assert acs.is_authenticated()
    assert b"EncryptedAssertion" in raw and b"MUSTERMANN" not in raw
    assert acs.get_nameid_format() == "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    attributes = acs.get_attributes()
    assert attributes == {
        ATTR + "given_names": ["ERIKA"],
        ATTR + "family_names": ["MUSTERMANN"],
        ATTR + "date_of_birth": ["1964-08-12"],
        ATTR + "place_of_birth": ['{"freetext":"BERLIN"}'],
        ATTR + "address": ['{"city":"KÖLN","country":"D","street":"HEIDESTRASSE 17","zip_code":"51147"}'],
        ATTR + "pseudonym": [acs.get_nameid()],
    }
    assert acs.get_friendlyname_attributes()["given_names"] == ["ERIKA"]


async def test_python3_saml_refuses_the_xml_enc_1_1_key_transport_by_schema(
    start_gateway: StartGateway, browser: Browser, servers: Servers, tmp_path: Path
) -> None:
    """With ``key_transport = "rsa-oaep"`` added to the registration, python3-saml's strict XSD check
    refuses the xenc11 EncryptionMethod: why the gateway's default is rsa-oaep-mgf1p."""
    acs, raw = await sign_in(start_gateway, browser, servers, tmp_path, "rsa-oaep")
    assert b"xmlenc11#rsa-oaep" in raw
    assert not acs.is_authenticated()
    assert "saml-schema-protocol-2.0.xsd" in str(acs.get_last_error_reason())


def test_the_page_shows_the_settings_file_the_test_loads() -> None:
    page = (SETTINGS.parent.parent / "python3-saml.md").read_text(encoding="utf-8")
    assert "```json\n" + SETTINGS.read_text(encoding="utf-8") + "```\n" in page
