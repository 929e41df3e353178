"""A new instance directory: the example ``gateway.toml`` and the development keys (``eid-gateway init``).

Its own module because ``init``, the smoke test and the tests all write instances; the command line
only calls it (so nothing below the command line imports :mod:`eid_gateway.cli`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from certs.devpki import generate_dev_keys, write_private
from eid_gateway.web.branding import write_demo_logo

#: The example ``gateway.toml`` (package data: ``eid_gateway/templates/gateway.toml``), with ``$origin``,
#: ``$port`` and ``$config_path`` to fill in; a test checks that what it renders passes the config loader.
CONFIG_TEMPLATE = Template(resources.files("eid_gateway").joinpath("templates", "gateway.toml").read_text("utf-8"))


def write_example_config(directory: Path, origin: str, port: int, *, force: bool = False) -> Path:
    """Write ``directory/gateway.toml`` and the development keys under ``directory/certs``.

    Refuses (``FileExistsError`` / :class:`DevPkiExists`) to overwrite anything unless ``force``.
    """
    config_path = directory / "gateway.toml"
    if config_path.exists() and not force:
        raise FileExistsError(f"{config_path} exists (use --force to overwrite)")
    directory.mkdir(parents=True, exist_ok=True)
    generate_dev_keys(directory / "certs", overwrite=force)
    write_demo_logo(directory)
    text = CONFIG_TEMPLATE.substitute(origin=origin.rstrip("/"), port=port, config_path=config_path)
    write_private(config_path, text.encode("utf-8"))
    return config_path
