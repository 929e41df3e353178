"""Shared fixtures: one `eid-gateway init` instance (config + development keys) per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.instance import write_example_config

ORIGIN = "http://127.0.0.1:8080"


@pytest.fixture(scope="session")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the example gateway.toml and certs/ exactly as `eid-gateway init` writes them."""
    directory = tmp_path_factory.mktemp("instance")
    write_example_config(directory, ORIGIN, 8080)
    return directory


@pytest.fixture(scope="session")
def example_toml(instance: Path) -> str:
    return (instance / "gateway.toml").read_text(encoding="utf-8")


def write_variant(instance: Path, text: str, name: str) -> Path:
    """A config file next to the example one (so its relative key paths resolve to the same certs)."""
    path = instance / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def base_config(instance: Path) -> GatewayConfig:
    """The example config, loaded once (loading RSA keys costs tenths of a second)."""
    return load_config(instance / "gateway.toml")
