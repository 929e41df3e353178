"""Issue 16, the operator's rough edges: complete CLI help and docs/cli.md, a clean one-line error for a
taken port, a start line that says where to open the demo, a page at ``/``, a missing certificate
reported under its own key, and packaging without setuptools warnings."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from eid_gateway.app import create_app
from eid_gateway.cli import build_parser
from eid_gateway.config import GatewayConfig

from .conftest import write_variant

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command of the parser by its full name ("service add"), nested ones included."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found[full] = sub
                found.update(_subparsers(sub, full + " "))
    return found


def test_every_option_and_argument_has_help() -> None:
    parser = build_parser()
    missing = []
    for name, sub in {"": parser, **_subparsers(parser)}.items():
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            if not action.help:
                missing.append(f"{name or 'eid-gateway'} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_docs_cli_md_names_every_subcommand() -> None:
    doc = CLI_DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`eid-gateway ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", doc))
    commands = set(_subparsers(build_parser()))
    missing = sorted(c for c in commands if c not in named and not any(n.startswith(c + " ") for n in named))
    assert missing == []


def _taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_taken_port_is_one_clean_line(instance: Path) -> None:
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "eid_gateway.cli",
                "serve",
                "--config",
                str(instance / "gateway.toml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=instance,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1 port {port}: in use (listen.host / listen.port, --host / --port)"
    )
    assert "Traceback" not in result.stderr and "gateway started" not in result.stderr


@pytest.mark.parametrize("command", ["serve", "simulator", "demo-service"])
def test_a_single_process_checks_its_port_without_gunicorn(instance: Path, command: str) -> None:
    """Only ``serve --workers N`` needs gunicorn (eid_gateway.workers); one process checks its port with
    eid_gateway.ports and never imports it."""
    code = (
        "import sys; from eid_gateway.cli import main; "
        "code = main(sys.argv[1:]); print('gunicorn' in sys.modules, 'eid_gateway.workers' in sys.modules, code)"
    )
    with _taken_port() as sock:
        port = sock.getsockname()[1]
        config = str(instance / "gateway.toml")
        result = subprocess.run(
            [sys.executable, "-c", code, command, "--config", config, "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=instance,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert f"error: cannot listen on 127.0.0.1 port {port}: in use" in result.stderr
    assert result.stdout.split() == ["False", "False", "1"], result.stderr


async def test_the_start_line_says_where_to_open_the_demo(
    base_config: GatewayConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="eid_gateway")
    async with TestClient(TestServer(create_app(base_config))):
        pass
    assert f"open {base_config.public_origin}/demo/ to try a sign-in with the demo service" in caplog.messages


async def test_the_root_page_says_what_this_service_is(base_config: GatewayConfig) -> None:
    async with TestClient(TestServer(create_app(base_config))) as client:
        german = await client.get("/", headers={"Accept-Language": "de"})
        text = await german.text()
        assert german.status == 200 and 'lang="de"' in text
        assert "Anmeldedienst mit dem Personalausweis" in text and 'href="/demo/"' in text
        english = await client.get("/?lang=en")
        text = await english.text()
        assert english.status == 200 and 'lang="en"' in text and "sign-in service" in text
        assert (await client.head("/")).status == 200


def test_a_missing_saml_signing_cert_is_reported_under_its_own_key(instance: Path, example_toml: str) -> None:
    lines = example_toml.splitlines()
    [cert_line] = [line for line in lines if line.startswith("saml_signing_cert")]
    path = write_variant(
        instance, example_toml.replace(cert_line, 'saml_signing_cert = "certs/absent.crt"'), "missing-cert"
    )
    result = subprocess.run(
        [sys.executable, "-m", "eid_gateway.cli", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode != 0
    assert "saml_signing_cert" in result.stderr, result.stderr
    assert "keys.saml_signing_key" not in result.stderr, result.stderr


def test_packaging_has_no_license_warning(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert "project.license" not in output and "Warning" not in output, output[-3000:]
    (wheel,) = tmp_path.glob("eid_gateway-*.whl")
    # the translation catalog is package data: read from the wheel itself (-I -S: not the source tree,
    # not the editable install), every area and table
    read = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from eid_gateway import catalog; "
            "print(catalog.__file__); print(sorted(catalog.areas())); "
            "print(sum(len(t) for a in catalog.areas() for t in catalog._area(a).values()))",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    where, areas, entries = read.stdout.splitlines()
    assert where.startswith(str(wheel)) and areas == "['citizen', 'demo', 'kiosks']" and int(entries) > 200, read.stdout
