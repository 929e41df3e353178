"""``[oidc.*_key] path = "pkcs11:..."``: the provider key named in an HSM, with the gateway's HSM settings
from ``[keys]``. Parsing and the checks before the token is opened; signing in SoftHSM2 itself is in
tests/backends/test_pkcs11.py (python-pkcs11 loads the token module once per process)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from eid_gateway.frontends.oidc.keys import load_provider_keys
from eid_gateway.frontends.oidc.settings import (
    SigningKeyRef,
    TokenKeyRef,
    parse_oidc_settings,
)
from eid_gateway.settings_base import ConfigError

URI = "pkcs11:token=gw;object=oidc-ec"


def provider(keys: str, path: str = URI) -> str:
    return f'{keys}\n[oidc]\n[oidc.signing_key]\nkid = "hsm-1"\npath = "{path}"\n'


def test_a_token_key_uses_the_hsm_settings_of_keys(tmp_path: Path) -> None:
    s = parse_oidc_settings(tomllib.loads(provider('[keys]\npkcs11_pin_env = "GW_PIN"')), tmp_path)
    assert s is not None
    assert s.provider.signing_key == SigningKeyRef(kid="hsm-1", path=None, token=TokenKeyRef(URI, "GW_PIN"))
    s = parse_oidc_settings(
        tomllib.loads(provider('[keys]\npkcs11_pin_env = "GW_PIN"\npkcs11_module = "lib/hsm.so"')), tmp_path
    )
    assert s is not None and s.provider.signing_key.token is not None
    assert s.provider.signing_key.token.module == tmp_path / "lib" / "hsm.so"
    # a PEM file next to it stays a file
    s = parse_oidc_settings(tomllib.loads(provider('[keys]\npkcs11_pin_env = "GW_PIN"', "k.pem")), tmp_path)
    assert s is not None and s.provider.signing_key == SigningKeyRef(kid="hsm-1", path=tmp_path / "k.pem")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", r"oidc.signing_key.path: a pkcs11: key needs keys.pkcs11_pin_env"),
        ('[keys]\npkcs11_pin_env = ""', r"oidc.signing_key.path: a pkcs11: key needs keys.pkcs11_pin_env"),
        ('[keys]\npkcs11_pin_env = "P"\npkcs11_module = 3', r"keys.pkcs11_module: must be a path string"),
    ],
)
def test_a_token_key_without_hsm_settings_is_refused(tmp_path: Path, keys: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_oidc_settings(tomllib.loads(provider(keys)), tmp_path)


def test_the_pin_variable_must_be_set_before_the_token_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pkcs11")
    monkeypatch.delenv("TEST_EIDGW_UNSET_PIN", raising=False)
    s = parse_oidc_settings(tomllib.loads(provider('[keys]\npkcs11_pin_env = "TEST_EIDGW_UNSET_PIN"')), tmp_path)
    assert s is not None
    with pytest.raises(ConfigError, match="keys.pkcs11_pin_env: environment variable TEST_EIDGW_UNSET_PIN"):
        load_provider_keys(s.provider)


def test_a_malformed_uri_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pkcs11")
    monkeypatch.setenv("TEST_EIDGW_PIN", "1234")
    s = parse_oidc_settings(
        tomllib.loads(provider('[keys]\npkcs11_pin_env = "TEST_EIDGW_PIN"', "pkcs11:token=gw")), tmp_path
    )
    assert s is not None
    with pytest.raises(ConfigError, match="oidc.signing_key.path: the PKCS#11 URI must name token= and object="):
        load_provider_keys(s.provider)
