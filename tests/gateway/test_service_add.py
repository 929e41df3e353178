"""`eid-gateway service add` (issue 15): a validated [[services]] block from an SP's SAML metadata (the
project's builder, a real pysaml2 SP's) or for an OIDC client; bad metadata is refused with exit code 2 and
nothing is written. Also the key transport chosen from the metadata's md:EncryptionMethod list."""

from __future__ import annotations

import base64
import re
import shutil
import stat
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from eid_gateway.config import load_config
from eid_gateway.frontends.oidc.client_secret import verify_client_secret
from eid_gateway.frontends.saml_idp import choose_key_transport
from eid_gateway.identity import Attribute
from eid_gateway.service_add import EXIT_EXISTS, EXIT_INVALID, EXIT_OK
from helpers.cli import run_cli
from saml import algorithms as A
from saml import metadata as md
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem
from saml.messages import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, NAMEID_TRANSIENT
from saml.xml import to_bytes

SP = "https://portal.example.de/saml"
ACS = "https://portal.example.de/saml/acs"


@pytest.fixture(scope="module")
def sp_keys() -> tuple[KeyPair, KeyPair]:
    return generate_key_pair("ec-p256", "portal signing"), generate_key_pair("rsa-3072", "portal encryption")


@pytest.fixture
def gw(instance: Path, tmp_path: Path) -> Path:
    """A copy of the `init` instance, so that each test appends to its own config."""
    directory = tmp_path / "gw"
    shutil.copytree(instance, directory)
    return directory / "gateway.toml"


def sp_metadata(
    keys: tuple[KeyPair, KeyPair],
    *,
    methods: tuple[str, ...] = (),
    encryption_key: bool = True,
    acs: tuple[md.Endpoint, ...] = (md.Endpoint(BINDING_HTTP_POST, ACS),),
) -> bytes:
    sign, enc = keys
    kds = [md.KeyDescriptor(sign.certificate, md.USE_SIGNING)]
    if encryption_key:
        kds.append(md.KeyDescriptor(enc.certificate, md.USE_ENCRYPTION, methods))
    return to_bytes(
        md.build_metadata(
            md.EntityDescriptor(
                SP, sp=md.SPSSODescriptor(acs_services=acs, keys=tuple(kds), name_id_formats=(NAMEID_TRANSIENT,))
            )
        )
    )


def add(gw: Path, metadata: Path | str, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        "service",
        "add",
        "--id",
        "portal",
        "--name-de",
        "Bürgerportal",
        "--name-en",
        "Citizens' portal",
        "--attributes",
        "given_names,family_names,pseudonym",
        "--saml-metadata",
        str(metadata),
        "--config",
        str(gw),
        *extra,
    )


def test_metadata_parser_reads_encryption_methods(sp_keys: tuple[KeyPair, KeyPair]) -> None:
    parsed = md.parse_metadata(sp_metadata(sp_keys, methods=(A.AES256_GCM, A.RSA_OAEP, A.RSA_OAEP_MGF1P)))
    assert parsed.sp is not None
    assert parsed.sp.encryption_methods() == [A.AES256_GCM, A.RSA_OAEP, A.RSA_OAEP_MGF1P]
    assert md.parse_metadata(sp_metadata(sp_keys)).sp.encryption_methods() == []  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("methods", "chosen"),
    [
        ((), None),  # none listed: the gateway's default
        ((A.AES256_GCM, A.AES128_GCM), None),  # only data encryption listed: the default key transport
        ((A.RSA_OAEP,), "rsa-oaep"),
        ((A.RSA_OAEP_MGF1P,), "rsa-oaep-mgf1p"),
        ((A.RSA_1_5, A.RSA_OAEP_MGF1P, A.RSA_OAEP), "rsa-oaep"),  # the strongest both support
    ],
)
def test_key_transport_is_chosen_from_the_metadata(methods: tuple[str, ...], chosen: str | None) -> None:
    assert choose_key_transport(methods) == chosen


def test_key_transport_none_in_common_is_refused() -> None:
    with pytest.raises(ValueError, match="no key transport the gateway offers"):
        choose_key_transport((A.RSA_1_5, A.AES128_CBC))


def test_saml_service_from_builder_metadata_is_appended_and_loads(
    gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]
) -> None:
    meta = tmp_path / "sp.xml"
    meta.write_bytes(
        sp_metadata(
            sp_keys,
            methods=(A.AES256_GCM, A.RSA_OAEP),
            acs=(
                md.Endpoint(BINDING_HTTP_REDIRECT, "https://portal.example.de/redirect-acs"),
                md.Endpoint(BINDING_HTTP_POST, "https://portal.example.de/saml/acs2", index=2),
                md.Endpoint(BINDING_HTTP_POST, ACS, index=1, is_default=True),
            ),
        )
    )
    code, out, err = add(gw, meta)
    assert code == EXIT_OK, err
    assert "added service 'portal'" in out and "metadata is not signed" in err
    service = next(s for s in load_config(gw).services.services if s.id == "portal")
    assert service.name_de == "Bürgerportal" and service.name_en == "Citizens' portal"
    assert service.allowed_attributes == {Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.PSEUDONYM}
    saml = service.saml
    assert saml is not None
    assert saml.entity_id == SP
    assert saml.acs_urls == (ACS, "https://portal.example.de/saml/acs2")  # POST only, the default first
    assert saml.signing_certs == (sp_keys[0].certificate,)
    assert saml.encryption_cert == sp_keys[1].certificate
    assert saml.encrypt_assertions and saml.require_signed_requests
    assert saml.key_transport == "rsa-oaep"
    text = gw.read_text(encoding="utf-8")
    assert f"NameIDFormat in the SP's metadata: {NAMEID_TRANSIENT}" in text
    for name in ("portal-saml-signing.crt", "portal-saml-encryption.crt"):
        assert stat.S_IMODE((gw.parent / "certs" / name).stat().st_mode) == 0o600
    # the same again: the certificate files exist, nothing is overwritten
    assert add(gw, meta)[0] == EXIT_EXISTS
    assert gw.read_text(encoding="utf-8") == text


def test_metadata_without_encryption_methods_gets_the_default(
    gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]
) -> None:
    meta = tmp_path / "sp.xml"
    meta.write_bytes(sp_metadata(sp_keys, methods=()))
    assert add(gw, meta)[0] == EXIT_OK
    assert "key_transport" not in gw.read_text(encoding="utf-8").split("service add")[-1]
    service = next(s for s in load_config(gw).services.services if s.id == "portal")
    assert service.saml is not None and service.saml.key_transport == "rsa-oaep-mgf1p"  # DEFAULT_KEY_TRANSPORT


def test_metadata_listing_only_xml_enc_1_0_oaep_gets_it(
    gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]
) -> None:
    meta = tmp_path / "sp.xml"
    meta.write_bytes(sp_metadata(sp_keys, methods=(A.AES128_GCM, A.RSA_OAEP_MGF1P)))
    assert add(gw, meta)[0] == EXIT_OK
    service = next(s for s in load_config(gw).services.services if s.id == "portal")
    assert service.saml is not None and service.saml.key_transport == "rsa-oaep-mgf1p"


def test_printed_block_without_config(tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]) -> None:
    meta = tmp_path / "sp.xml"
    meta.write_bytes(sp_metadata(sp_keys))
    certs = tmp_path / "out"
    code, out, _ = run_cli(
        "service",
        "add",
        "--id",
        "portal",
        "--name-de",
        "Portal",
        "--saml-metadata",
        str(meta),
        "--cert-dir",
        str(certs),
    )
    assert code == EXIT_OK
    assert out.startswith("# Added by `eid-gateway service add`") and "[[services]]" in out
    assert f'signing_cert = "{certs.resolve()}/portal-saml-signing.crt"' in out
    assert (certs / "portal-saml-encryption.crt").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def _bad_cases(keys: tuple[KeyPair, KeyPair]) -> dict[str, tuple[bytes, str]]:
    good = sp_metadata(keys)
    return {
        "malformed-xml": (good[:-40], "not usable"),
        "not-metadata": (b"<html><body>login</body></html>", "not usable"),
        "no-post-acs": (sp_metadata(keys, acs=(md.Endpoint(BINDING_HTTP_REDIRECT, ACS),)), "HTTP-POST"),
        "no-acs": (re.sub(rb"<md:AssertionConsumerService[^>]*/>", b"", good), "no AssertionConsumerService"),
        "no-encryption-cert": (sp_metadata(keys, encryption_key=False), "no encryption certificate"),
        "only-rsa-1_5": (sp_metadata(keys, methods=(A.RSA_1_5,)), "cannot decrypt"),
        "idp-metadata": (
            to_bytes(
                md.build_metadata(
                    md.EntityDescriptor(
                        SP, idp=md.IDPSSODescriptor(sso_services=(md.Endpoint(BINDING_HTTP_POST, ACS),))
                    )
                )
            ),
            "no SAML 2.0 SP",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["malformed-xml", "not-metadata", "no-post-acs", "no-acs", "no-encryption-cert", "only-rsa-1_5", "idp-metadata"],
)
def test_bad_metadata_is_refused_and_nothing_written(
    gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair], case: str
) -> None:
    data, message = _bad_cases(sp_keys)[case]
    meta = tmp_path / "sp.xml"
    meta.write_bytes(data)
    before = gw.read_bytes()
    certs_before = sorted(p.name for p in (gw.parent / "certs").iterdir())
    code, out, err = add(gw, meta)
    assert code == EXIT_INVALID
    assert message in err and "nothing was written" in err and "Traceback" not in err
    assert out == ""
    assert gw.read_bytes() == before
    assert sorted(p.name for p in (gw.parent / "certs").iterdir()) == certs_before


def test_signed_only_service_needs_no_encryption_cert(
    gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]
) -> None:
    meta = tmp_path / "sp.xml"
    meta.write_bytes(sp_metadata(sp_keys, encryption_key=False))
    assert add(gw, meta, "--no-encrypt")[0] == EXIT_OK
    service = next(s for s in load_config(gw).services.services if s.id == "portal")
    assert service.saml is not None and not service.saml.encrypt_assertions


def test_block_the_loader_refuses_is_not_written(gw: Path, tmp_path: Path, sp_keys: tuple[KeyPair, KeyPair]) -> None:
    """A second service with the demo's id: the whole config is checked before anything is written."""
    meta = tmp_path / "sp.xml"
    meta.write_bytes(sp_metadata(sp_keys))
    before = gw.read_bytes()
    code, _, err = run_cli(
        "service", "add", "--id", "demo", "--name-de", "Doppelt", "--saml-metadata", str(meta), "--config", str(gw)
    )
    assert code == EXIT_INVALID
    assert "duplicate service id 'demo'" in err and "nothing was written" in err
    assert gw.read_bytes() == before
    assert not (gw.parent / "certs" / "demo-saml-signing.crt").exists()


def add_oidc(gw: Path, *extra: str, client_id: str = "rathaus", name: str = "Rathaus") -> tuple[int, str, str]:
    """``service add`` of an OpenID Connect client, by default "rathaus" (redirect URI
    https://rathaus.example.de/cb: the client ID's own host)."""
    return run_cli(
        "service",
        "add",
        "--id",
        client_id,
        "--name-de",
        name,
        "--oidc-redirect-uri",
        f"https://{client_id}.example.de/cb",
        "--config",
        str(gw),
        *extra,
    )


def test_unknown_attribute_and_missing_source_are_usage_errors(gw: Path) -> None:
    code, _, err = add_oidc(gw, "--attributes", "given_names,shoe_size", client_id="x", name="X")
    assert code == EXIT_INVALID and "unknown shoe_size" in err
    code, _, err = run_cli("service", "add", "--id", "x", "--name-de", "X", "--config", str(gw))
    assert code == EXIT_INVALID and "--saml-metadata" in err


def test_http_metadata_url_is_refused_without_the_dev_flag(gw: Path) -> None:
    code, _, err = add(gw, "http://127.0.0.1:9/metadata")
    assert code == EXIT_INVALID and "must be https" in err


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_oidc_client_secret_is_printed_once_and_only_its_hash_stored(gw: Path, method: str) -> None:
    code, out, err = add_oidc(gw, "--oidc-auth", method)
    assert code == EXIT_OK, err
    [secret] = re.findall(r"shown only now, stored only as its hash\): (\S+)", out)
    text = gw.read_text(encoding="utf-8")
    assert secret not in text
    [stored] = re.findall(r'client_secret_hash = "(scrypt\$[^"]+)"', text.split("service add")[-1])
    assert verify_client_secret(secret, stored)
    config = load_config(gw)
    assert config.oidc is not None
    client = config.oidc.clients["rathaus"]
    assert client.redirect_uris == ("https://rathaus.example.de/cb",)
    assert client.auth_method.value == method and client.client_secret_hash == stored


@pytest.mark.parametrize("switch", [False, True], ids=["default", "no-iss-in-errors"])
def test_oidc_compatibility_switch_for_iss_in_error_responses(gw: Path, switch: bool) -> None:
    """``--oidc-no-iss-in-errors`` writes the per-client switch mod_auth_openidc before 2.4.13 needs;
    without it the client gets RFC 9207's iss in error redirects too."""
    code, _, err = add_oidc(gw, *(["--oidc-no-iss-in-errors"] if switch else []))
    assert code == EXIT_OK, err
    assert ("error_response_iss = false" in gw.read_text(encoding="utf-8").split("service add")[-1]) == switch
    config = load_config(gw)
    assert config.oidc is not None
    assert config.oidc.clients["rathaus"].error_response_iss is not switch


def test_oidc_public_client(gw: Path) -> None:
    code, out, _ = add_oidc(gw, "--oidc-auth", "none", client_id="app", name="App")
    assert code == EXIT_OK and "secret" not in out
    config = load_config(gw)
    assert config.oidc is not None
    client = config.oidc.clients["app"]
    assert client.public_client


# --- a real pysaml2 SP's metadata -------------------------------------------------------------------------


XMLSEC1 = shutil.which("xmlsec1")


def _pysaml2_sp(directory: Path, keys: KeyPair, idp_metadata: bytes | None = None) -> Any:
    """pysaml2's SP (``Saml2Client``): its config, and (with our IdP metadata) the client itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from saml2 import BINDING_HTTP_POST as PY_POST
        from saml2.client import Saml2Client
        from saml2.config import SPConfig
        from saml2.saml import NAMEID_FORMAT_PERSISTENT

    key_pem, cert_pem = key_pair_to_pem(keys)
    (directory / "sp.key").write_bytes(key_pem)
    (directory / "sp.crt").write_bytes(cert_pem)
    config: dict[str, Any] = {
        "entityid": "https://pysaml2-sp.example/metadata",
        "key_file": str(directory / "sp.key"),
        "cert_file": str(directory / "sp.crt"),
        "encryption_keypairs": [{"key_file": str(directory / "sp.key"), "cert_file": str(directory / "sp.crt")}],
        "xmlsec_binary": XMLSEC1,
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [("https://pysaml2-sp.example/acs", PY_POST)]},
                "authn_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": True,
                "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            }
        },
    }
    if idp_metadata is not None:
        (directory / "gateway-idp.xml").write_bytes(idp_metadata)
        config["metadata"] = {"local": [str(directory / "gateway-idp.xml")]}
    cfg = SPConfig()
    cfg.load(config)
    return Saml2Client(cfg) if idp_metadata is not None else cfg


def _pysaml2_metadata(directory: Path, keys: KeyPair) -> bytes:
    from saml2.metadata import entity_descriptor

    return str(entity_descriptor(_pysaml2_sp(directory, keys))).encode("utf-8")


def _add_pysaml2(gw: Path, directory: Path, *options: str) -> tuple[KeyPair, tuple[int, str, str]]:
    """A pysaml2 SP's key and metadata (written into ``directory``), and ``service add`` of that metadata as
    the service "pysaml2" into ``gw`` (with ``options``): the key and the command's result."""
    keys = generate_key_pair("rsa-3072", "pysaml2 sp")
    meta = directory / "pysaml2.xml"
    meta.write_bytes(_pysaml2_metadata(directory, keys))
    argv = ["service", "add", "--id", "pysaml2", "--name-de", "pysaml2-Dienst", "--saml-metadata", str(meta)]
    return keys, run_cli(*argv, "--config", str(gw), *options)


def test_pysaml2_sp_metadata(gw: Path, tmp_path: Path) -> None:
    pytest.importorskip("saml2")
    keys, (code, _, err) = _add_pysaml2(gw, tmp_path)
    assert code == EXIT_OK, err
    service = next(s for s in load_config(gw).services.services if s.id == "pysaml2")
    assert service.saml is not None
    assert service.saml.entity_id == "https://pysaml2-sp.example/metadata"
    assert service.saml.acs_urls == ("https://pysaml2-sp.example/acs",)
    assert service.saml.signing_certs == (keys.certificate,)  # its one key, no use= (signing and encryption)
    assert service.saml.encryption_cert == keys.certificate
    assert service.allowed_attributes == {Attribute.PSEUDONYM}  # the default: the least data


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
def test_pysaml2_sp_added_from_its_metadata_accepts_the_gateways_response(
    gw: Path, tmp_path: Path, encrypt: bool
) -> None:
    """The registration `service add` wrote, loaded as `serve` loads it, drives the gateway's Response
    builder; pysaml2, configured with the gateway's own IdP metadata, accepts the Response."""
    pytest.importorskip("saml2")
    if XMLSEC1 is None:
        pytest.skip("pysaml2 needs the xmlsec1 binary (apt install xmlsec1)")
    from eid_gateway.frontends.saml_idp import build_success_response, idp_metadata
    from eid_gateway.identity import Identity
    from saml.messages import new_id

    extra = () if encrypt else ("--no-encrypt",)
    keys, (code, _, err) = _add_pysaml2(gw, tmp_path, "--attributes", "given_names,pseudonym", *extra)
    assert code == EXIT_OK, err
    config = load_config(gw)
    service = next(s for s in config.services.services if s.id == "pysaml2")
    assert service.saml is not None and service.saml.encrypt_assertions == encrypt
    request_id = new_id()
    response = build_success_response(
        idp_entity_id=config.saml_idp.entity_id,
        key=config.keys.saml_signing,
        settings=service.saml,
        acs_url=service.saml.acs_urls[0],
        request_id=request_id,
        identity=Identity(given_names="ERIKA"),
        pseudonym="pseudonym-4711",
        released=frozenset({Attribute.GIVEN_NAMES, Attribute.PSEUDONYM}),
    )
    xml = to_bytes(response)
    assert (b"ERIKA" not in xml) == encrypt
    client = _pysaml2_sp(tmp_path, keys, idp_metadata(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from saml2 import BINDING_HTTP_POST as PY_POST

        result = client.parse_authn_request_response(
            base64.b64encode(xml).decode(), PY_POST, outstanding={request_id: "/"}
        )
    assert result is not None and result.name_id.text == "pseudonym-4711"
    assert result.ava["urn:eid-gateway:attribute:given_names"] == ["ERIKA"]


# --- metadata generated by the SP software itself (Debian's packages) ---------------------------------------


def _mellon_metadata(directory: Path) -> bytes:
    subprocess.run(
        ["mellon_create_metadata", "https://sp.stadt.example/mellon", "https://sp.stadt.example/mellon"],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (directory / "https_sp.stadt.example_mellon.xml").read_bytes()


def _shib_metagen_metadata(directory: Path) -> bytes:
    (directory / "sp.crt").write_bytes(key_pair_to_pem(generate_key_pair("rsa-3072", "shibboleth sp"))[1])
    done = subprocess.run(
        [
            "shib-metagen",
            "-h",
            "sp.stadt.example",
            "-c",
            str(directory / "sp.crt"),
            "-e",
            "https://sp.stadt.example/shibboleth",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("tool", "make", "acs", "signs"),
    [
        ("mellon_create_metadata", _mellon_metadata, "https://sp.stadt.example/mellon/postResponse", True),
        ("shib-metagen", _shib_metagen_metadata, "https://sp.stadt.example/Shibboleth.sso/SAML2/POST", False),
    ],
)
def test_metadata_made_by_the_sp_software(
    gw: Path, tmp_path: Path, tool: str, make: Any, acs: str, signs: bool
) -> None:
    """mod_auth_mellon's and Shibboleth SP's own metadata generators: accepted as they come; of their
    ACS endpoints only the SAML 2.0 HTTP-POST one is taken; neither lists md:EncryptionMethod."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian: libapache2-mod-auth-mellon / shibboleth-sp-utils)")
    meta = tmp_path / "sp.xml"
    meta.write_bytes(make(tmp_path))
    code, _, err = run_cli(
        "service", "add", "--id", "sp", "--name-de", "SP", "--saml-metadata", str(meta), "--config", str(gw)
    )
    assert code == EXIT_OK, err
    assert ("AuthnRequestsSigned" in err) != signs  # Shibboleth's says nothing: the operator is told to sign
    service = next(s for s in load_config(gw).services.services if s.id == "sp")
    assert service.saml is not None
    assert service.saml.acs_urls == (acs,)
    assert service.saml.encrypt_assertions and service.saml.encryption_cert is not None
    assert service.saml.key_transport == "rsa-oaep-mgf1p"  # no md:EncryptionMethod: the default
