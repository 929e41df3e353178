"""``eid-gateway dev-pki`` and ``eid-gateway smoke-test`` (dispatched from :mod:`eid_gateway.cli`)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from eid_gateway.eidserver.testpki import TestPkiError, generate_test_pki

SNIPPET = """\
[eid_server]
kind = "embedded-paos"

[embedded_paos]
pki_dir = "{pki_dir}"
listen_host = "127.0.0.1"
listen_port = 8443
"""


def dev_pki_main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    p = argparse.ArgumentParser(
        prog="eid-gateway dev-pki",
        description=(
            "Write the embedded eID-Server's TEST PKI (CVCA/DV/terminal CV certificates, certificate "
            "description, TLS certificate). Only AusweisApp's simulator card accepts it; production refuses it."
        ),
    )
    p.add_argument("--dir", default="instance", help="the gateway's instance directory")
    p.add_argument("--origin", help="the gateway's public origin (subject URL of the description)")
    p.add_argument("--config", help="take the origin from this config file")
    p.add_argument("--tls-host", action="append", default=[], help="TLS certificate name (repeat)")
    p.add_argument("--force", action="store_true", help="overwrite an existing test PKI")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    origin = args.origin
    if origin is None and args.config:
        from eid_gateway.config import ConfigError, load_config

        try:
            origin = load_config(Path(args.config)).public_origin
        except ConfigError as exc:
            err.write(f"error: {exc}\n")
            return 2
    origin = origin or "http://127.0.0.1:8080"
    directory = Path(args.dir) / "eid-test-pki"
    try:
        pki = generate_test_pki(
            directory, origin, tls_hosts=tuple(args.tls_host) or ("localhost", "127.0.0.1"), overwrite=args.force
        )
    except TestPkiError as exc:
        err.write(f"error: {exc}\n")
        return 1
    out.write(f"test PKI written to {directory} (subject URL {origin})\n")
    for line in (*pki.terminal.describe(),):
        out.write(f"  {line}\n")
    out.write("\nEnable it in the config:\n\n" + SNIPPET.format(pki_dir="eid-test-pki"))
    return 0


def smoke_test_main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    p = argparse.ArgumentParser(
        prog="eid-gateway smoke-test",
        description=("One complete sign-in with the real AusweisApp (headless, simulator card) against a gateway."),
    )
    p.add_argument(
        "--ausweisapp",
        action="store_true",
        required=True,
        help="drive a local AusweisApp over its websocket SDK (the only mode)",
    )
    p.add_argument("--url", help="origin of a running gateway with the demo service (default: start one)")
    try:
        args = p.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    from eid_gateway.smoke_test import smoke_test

    return asyncio.run(smoke_test(args.url, out))
