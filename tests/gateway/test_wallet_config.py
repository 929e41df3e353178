"""``[wallet]`` and each service's ``methods``: the wallet is offered only where it is configured and
reaches the service's level of assurance; every problem is named by its key path (check-config)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from certs.devpki import generate_ca, write_private
from eid_gateway.config import parse_config
from eid_gateway.identity import LevelOfAssurance
from eid_gateway.settings_base import ConfigError
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES
from eid_gateway.wallet.settings import DEFAULT_INVOCATION_URL
from saml.keys import key_pair_to_pem


@pytest.fixture(scope="module")
def trust_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "pid-providers.pem"
    write_private(path, key_pair_to_pem(generate_ca("test PID provider CA"))[1])
    return path


def _data(example_toml: str, trust: Path, *, wallet: dict[str, Any] | None = None, **service: Any) -> dict[str, Any]:
    data = copy.deepcopy(tomllib.loads(example_toml))
    data["wallet"] = {
        "trust_list": str(trust),
        "signing_key": "certs/wallet-request.key",
        "signing_cert": "certs/wallet-request.crt",
        **(wallet or {}),
    }
    data["services"][0].update(service)
    return data


def _errors(data: dict[str, Any], base_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir)
    return info.value.errors


def test_a_service_is_card_only_unless_it_says_otherwise(instance: Path, example_toml: str, trust_pem: Path) -> None:
    config = parse_config(_data(example_toml, trust_pem), instance)
    assert config.wallet is not None and config.wallet.enabled
    assert config.wallet.invocation_url == DEFAULT_INVOCATION_URL
    assert config.wallet.vct_values == DEFAULT_VCT_VALUES
    assert config.wallet.level_of_assurance is LevelOfAssurance.SUBSTANTIAL
    service = config.services.services[0]
    assert service.methods == ("card",) and not config.wallet.offers(service)
    no_wallet = copy.deepcopy(tomllib.loads(example_toml))
    assert parse_config(no_wallet, instance).wallet is None


def test_a_substantial_service_may_offer_card_and_wallet(instance: Path, example_toml: str, trust_pem: Path) -> None:
    data = _data(example_toml, trust_pem, methods=["card", "wallet"], level_of_assurance="substantial")
    config = parse_config(data, instance)
    service = config.services.services[0]
    assert service.methods == ("card", "wallet")
    assert config.wallet is not None and config.wallet.offers(service)
    data["wallet"]["enabled"] = False
    config = parse_config(data, instance)
    assert config.wallet is not None and not config.wallet.offers(config.services.services[0])


def test_wallet_without_a_wallet_section_is_refused(instance: Path, example_toml: str, trust_pem: Path) -> None:
    data = _data(example_toml, trust_pem, methods=["wallet"], level_of_assurance="substantial")
    del data["wallet"]
    assert _errors(data, instance) == ["services[0].methods: offers 'wallet', but there is no [wallet] section"]


def test_a_high_service_is_refused_the_substantial_wallet(instance: Path, example_toml: str, trust_pem: Path) -> None:
    data = _data(example_toml, trust_pem, methods=["card", "wallet"])  # level_of_assurance defaults to high
    (error,) = _errors(data, instance)
    assert error.startswith("services[0].methods: offers 'wallet', but the service needs level of assurance high")
    data["wallet"]["level_of_assurance"] = "high"  # an operator whose wallet is notified at high may say so
    assert parse_config(data, instance).services.services[0].methods == ("card", "wallet")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"methods": []}, "services[0].methods: must list at least one sign-in method"),
        ({"methods": ["card", "card"]}, "services[0].methods: must not list a method twice"),
        ({"methods": ["sms"]}, "services[0].methods[0]:"),
    ],
)
def test_bad_methods_are_named(
    instance: Path, example_toml: str, trust_pem: Path, change: dict[str, Any], message: str
) -> None:
    errors = _errors(_data(example_toml, trust_pem, **change), instance)
    assert len(errors) == 1 and errors[0].startswith(message), errors


@pytest.mark.parametrize(
    ("wallet", "message"),
    [
        ({"invocation_url": "openid4vp://?client_id=x"}, "wallet.invocation_url: must not carry a query"),
        ({"invocation_url": "no scheme"}, "wallet.invocation_url: must be a URL scheme"),
        ({"vct_values": []}, "wallet.vct_values: must list at least one credential type"),
        ({"level_of_assurance": "medium"}, "wallet.level_of_assurance: must be one of low, substantial, high"),
        ({"trust_list": "certs/pseudonym.secret"}, "wallet.trust_list: not a usable trust list"),
        ({"trust_list": "nowhere.pem"}, "wallet.trust_list: file"),
        (
            {"signing_key": "certs/saml-signing.key", "signing_cert": "certs/saml-signing.crt"},
            "wallet.signing_key: must be an EC P-256 key",
        ),
        ({"status_timeout_seconds": 0}, "wallet.status_timeout_seconds:"),
        ({"signing_kye": "x"}, "wallet.signing_kye: unknown key"),
    ],
)
def test_wallet_section_problems_are_named(
    instance: Path, example_toml: str, trust_pem: Path, wallet: dict[str, Any], message: str
) -> None:
    errors = _errors(_data(example_toml, trust_pem, wallet=wallet), instance)
    assert len(errors) == 1 and errors[0].startswith(message), errors


def test_production_refuses_the_development_request_signing_key(
    instance: Path, example_toml: str, trust_pem: Path
) -> None:
    data = _data(example_toml, trust_pem)
    data["mode"] = "production"
    errors = _errors(data, instance)
    assert any(e.startswith("wallet.signing_key: ") and "development key material" in e for e in errors), errors


def test_production_refuses_the_test_wallets_ca_as_trust_list(
    instance: Path, example_toml: str, tmp_path: Path
) -> None:
    from certs.devpki import DEV_MARKER
    from eid_gateway.wallet_sim.pid_provider import ProviderKeys

    test_ca = tmp_path / "pid-ca.crt"
    write_private(test_ca, ProviderKeys.generate().ca_pem)  # what `eid-gateway wallet-sim` trusts
    data = _data(example_toml, test_ca)
    data["mode"] = "production"
    errors = _errors(data, instance)
    assert any(e.startswith("wallet.trust_list: ") and DEV_MARKER in e for e in errors), errors


def test_a_service_requiring_what_no_pid_carries_is_refused_the_wallet(
    instance: Path, example_toml: str, trust_pem: Path
) -> None:
    data = _data(
        example_toml,
        trust_pem,
        methods=["card", "wallet"],
        level_of_assurance="substantial",
        attributes=["family_names", "community_id", "document_type"],
        required=["family_names", "community_id"],
    )
    assert _errors(data, instance) == [
        "services[0].methods: offers 'wallet', but the PID does not carry the required community_id"
    ]
    data["services"][0]["required"] = ["family_names"]  # optional: the wallet sign-in simply lacks it
    assert parse_config(data, instance).services.services[0].methods == ("card", "wallet")
