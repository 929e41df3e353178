"""One way to read the config (eid_gateway/settings_base.py): every table of every settings module is
validated by a pydantic model, all problems of a file come out of one run with their TOML key paths,
unknown keys are refused everywhere, and there is one exception type. The ``init`` template is package data."""

from __future__ import annotations

import copy
import inspect
import io
import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import import_module, resources
from pathlib import Path
from typing import Any

import pytest

import eid_gateway
from eid_gateway.cli import EXIT_CONFIG, main
from eid_gateway.config import load_config, parse_config
from eid_gateway.eidserver.settings import parse_embedded_paos
from eid_gateway.frontends.oidc.settings import (
    parse_client_settings,
    parse_oidc_settings,
)
from eid_gateway.identity import Attribute
from eid_gateway.instance import CONFIG_TEMPLATE, write_example_config
from eid_gateway.kiosks.settings import parse_kiosk_settings
from eid_gateway.service_settings import parse_services
from eid_gateway.settings_base import ConfigError, ReadContext, Section

from .conftest import write_variant

STAFF_HASH = "scrypt$16384$8$1$" + "A" * 22 + "$" + "A" * 43


def errors_of(data: dict[str, Any], base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir)
    assert type(info.value) is ConfigError
    return info.value.errors


# --- one URL type -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        'https://sp.example/acs"><script>',
        "https://sp.example/a b",
        "https://sp.example/acs\n",
        "https://sp.example/acs#x",
    ],
)
def test_service_and_branding_urls_follow_one_rule(instance: Path, example_toml: str, url: str) -> None:
    """settings_base.Url is the one URL check: an ACS URL and a footer link are refused alike (a quote or a
    space would end up in an HTML attribute; a fragment is no part of an endpoint)."""
    data = tomllib.loads(example_toml)
    data["services"][0]["saml"]["acs_urls"] = [url]
    data["branding"] = {"help_url": url}
    message = "must be an absolute https URL (http is allowed in development)"
    assert errors_of(data, instance) == [f"services[0].saml.acs_urls[0]: {message}", f"branding.help_url: {message}"]


# --- the init template -------------------------------------------------------------------------------------


def test_init_template_is_package_data_and_what_it_renders_validates(tmp_path: Path) -> None:
    template = resources.files("eid_gateway").joinpath("templates", "gateway.toml")
    assert template.is_file()
    assert CONFIG_TEMPLATE.template == template.read_text("utf-8")
    assert set(CONFIG_TEMPLATE.get_identifiers()) == {"origin", "port", "config_path"}
    for origin, port in (("http://127.0.0.1:9321", 9321), ("https://eid.example.de", 8443)):
        directory = tmp_path / str(port)
        path = write_example_config(directory, origin, port)
        text = path.read_text(encoding="utf-8")
        assert "$" not in text.replace("scrypt$", "")  # every placeholder filled
        config = load_config(path)
        assert config.public_origin == origin and config.listen.port == port
        assert f"--config {path}" in text


# --- every problem in one run --------------------------------------------------------------------------------


def test_problems_of_every_table_and_parser_come_out_of_one_run(instance: Path, example_toml: str) -> None:
    data = tomllib.loads(example_toml)
    data["mode"] = "staging"
    data["listen"]["port"] = "8080"
    data["listen"]["workers"] = True
    data["store"]["kind"] = "memcached"
    data["flow"]["colour"] = "blue"
    data["eid_server"]["timeout_seconds"] = 500
    data["oidc"]["code_lifetime"] = 0
    data["oidc"]["signing_key"]["kid"] = ""
    service = data["services"][0]
    service["attributes"] = ["given_names", "shoe_size"]
    service["saml"]["acs_urls"] = ["ftp://x/acs"]
    service["saml"]["key_transport"] = "rsa-1_5"
    service["saml"]["encryption_cert"] = "certs/missing.crt"
    service["oidc"]["redirect_uris"] = []
    service["oidc"]["public_client"] = "yes"
    data["kiosk_monitor"] = {"staff_user": "staff", "staff_password_hash": STAFF_HASH, "heartbeat_seconds": 0}
    data["kiosks"] = [{"id": "Mitte 1", "credential_hash": "sha256$" + "1" * 64}]
    errors = errors_of(data, instance)
    assert errors == [
        'mode: must be "development" or "production"',
        "listen.port: must be an integer",
        "listen.workers: must be an integer, not a boolean",
        'store.kind: must be "sqlite" or "redis"',
        "flow.colour: unknown key",
        "eid_server.timeout_seconds: must be between 0.5 and 120",
        f"services[0].attributes[1]: unknown attribute 'shoe_size' (known: {', '.join(a.value for a in Attribute)})",
        "services[0].required[1]: 'family_names' must also be listed in attributes",
        "services[0].required[2]: 'date_of_birth' must also be listed in attributes",
        "services[0].required[3]: 'address' must also be listed in attributes",
        "services[0].required[4]: 'pseudonym' must also be listed in attributes",
        "services[0].saml.acs_urls[0]: must be an absolute https URL (http is allowed in development)",
        f"services[0].saml.encryption_cert: certificate file {instance / 'certs' / 'missing.crt'} does not exist",
        'services[0].saml.key_transport: must be "rsa-oaep" or "rsa-oaep-mgf1p"',
        "oidc.signing_key.kid: must not be empty",
        "oidc.code_lifetime: must be between 1 and 60",
        "services[0].oidc.redirect_uris: a non-empty list of URLs is required",
        "services[0].oidc.public_client: must be true or false",
        "kiosk_monitor.heartbeat_seconds: must be between 1 and 3600",
        "kiosks[0].id: must match [a-z0-9][a-z0-9_-]{0,63}",
    ]


def test_check_config_prints_every_problem_one_per_line(instance: Path, example_toml: str) -> None:
    text = (
        example_toml.replace("port = 8080", "port = 0")
        .replace("ttl_seconds = 600", "ttl_seconds = 600\nttl = 5")
        .replace('client_id = "demo-oidc"', 'client_id = ""')
    )
    out, err = io.StringIO(), io.StringIO()
    assert (
        main(["check-config", "--config", str(write_variant(instance, text, "cli-all"))], stdout=out, stderr=err)
        == EXIT_CONFIG
    )
    assert err.getvalue().splitlines()[1:] == [
        "  - listen.port: must be between 1 and 65535",
        "  - flow.ttl: unknown key",
        "  - services[0].oidc.client_id: must not be empty",
    ]


# --- unknown keys ----------------------------------------------------------------------------------------------


def _table(data: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    table: Any = data
    for part in path:
        table = table[part]
    assert isinstance(table, dict)
    return table


TABLES: list[tuple[str | int, ...]] = [
    (),
    ("listen",),
    ("keys",),
    ("store",),
    ("flow",),
    ("eid_server",),
    ("simulator",),
    ("saml_idp",),
    ("demo",),
    ("services", 0),
    ("services", 0, "saml"),
    ("services", 0, "oidc"),
    ("oidc",),
    ("oidc", "signing_key"),
    ("oidc", "rsa_signing_key"),
    ("limits",),
    ("audit",),
    ("metrics",),
    ("kiosk_monitor",),
    ("kiosks", 0),
]


def test_an_unknown_key_is_refused_in_every_table(instance: Path, example_toml: str) -> None:
    data = copy.deepcopy(tomllib.loads(example_toml))
    data.update(
        {
            "limits": {},
            "audit": {},
            "metrics": {},
            "kiosk_monitor": {"staff_user": "staff", "staff_password_hash": STAFF_HASH},
            "kiosks": [{"id": "mitte-1", "credential_hash": "sha256$" + "1" * 64}],
        }
    )
    for path in TABLES:  # a typo of a real key name in each table
        _table(data, path)["signing_kye"] = "x"
    expected = []
    for path in TABLES:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        expected.append(f"{where + '.' if where else ''}signing_kye: unknown key")
    assert sorted(errors_of(data, instance)) == sorted(expected)


# --- one reader for every settings module -----------------------------------------------------------------


PARSERS: list[tuple[str, Callable[[Path], object], str]] = [
    ("config", lambda d: parse_config({"public_origin": "http://x", "keys": {}, "listn": {}}, d), "listn: unknown key"),
    (
        "services",
        lambda d: parse_services(
            [{"id": "a", "name_de": "A", "attributes": ["pseudonym"], "nmae": 1}], ReadContext(base_dir=d)
        ),
        "services[0].nmae: unknown key",
    ),
    (
        "oidc",
        lambda d: parse_oidc_settings({"oidc": {"signing_key": {"kid": "k", "path": "k.pem"}, "x": 1}}, d),
        "oidc.x: unknown key",
    ),
    (
        "oidc client",
        lambda d: parse_client_settings(
            "s",
            {"client_id": "c", "redirect_uris": ["https://a/cb"], "public_client": True, "x": 1},
            d,
            where=("services", 0, "oidc"),
        ),
        "services[0].oidc.x: unknown key",
    ),
    (
        "kiosks",
        lambda d: parse_kiosk_settings(
            {"kiosk_monitor": {"staff_user": "s", "staff_password_hash": STAFF_HASH, "x": 1}}
        ),
        "kiosk_monitor.x: unknown key",
    ),
    (
        "embedded_paos",
        lambda d: parse_embedded_paos({"embedded_paos": {"x": 1}}, d, production=False),
        "embedded_paos.x: unknown key",
    ),
]


@pytest.mark.parametrize(("name", "parse", "message"), PARSERS, ids=[p[0] for p in PARSERS])
def test_each_settings_module_reports_through_the_one_reader(
    tmp_path: Path, name: str, parse: Callable[[Path], object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path)
    assert type(info.value) is ConfigError and message in info.value.errors


def _settings_modules() -> list[str]:
    """``eid_gateway.config`` and every ``*settings.py`` module of the package (namespace packages too)."""
    root = Path(eid_gateway.__file__).parent
    files = [f for f in root.rglob("*.py") if f.stem.endswith("settings") or f.relative_to(root) == Path("config.py")]
    return sorted("eid_gateway." + ".".join(f.relative_to(root).with_suffix("").parts) for f in files)


def test_no_settings_module_has_an_error_type_or_table_reader_of_its_own() -> None:
    modules = _settings_modules()
    assert {
        "eid_gateway.config",
        "eid_gateway.service_settings",
        "eid_gateway.frontends.oidc.settings",
        "eid_gateway.kiosks.settings",
        "eid_gateway.eidserver.settings",
    } <= set(modules)
    for name in modules:
        module = import_module(name)
        own = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == name]
        assert not [c for c in own if issubclass(c, Exception)], f"{name} defines its own error type"
        assert [c for c in own if issubclass(c, Section)], f"{name} has no Section model"


def test_reading_the_config_imports_settings_not_the_parts_they_configure() -> None:
    """config.py composes settings modules; it is no hub that imports the embedded eID-Server, its test PKI,
    the OIDC frontend, the kiosk app or the flow (whose imports of the config would close a circle)."""
    code = "import sys, eid_gateway.config; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
        ).stdout.split()
    )
    assert "eid_gateway.eidserver.settings" in loaded and "eid_gateway.frontends.oidc.settings" in loaded
    for module in (
        "eid_gateway.eidserver.testpki",
        "eid_gateway.eidserver.server",
        "eid_gateway.frontends.oidc.frontend",
        "eid_gateway.kiosks.app",
        "eid_gateway.flow",
        "eid_gateway.app",
        "eid_gateway.simulator",
    ):
        assert module not in loaded, module
