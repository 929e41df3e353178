"""``eid-gateway wallet-sim --listen HOST:PORT --dir DIR``: the test wallet and test PID provider process.

Dispatched by :mod:`eid_gateway.cli` before the gateway's own parser, so the ``sd-jwt`` library (extra
``wallet-sim``) is imported only here.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

EXIT_OK = 0
EXIT_CANNOT_LISTEN = 1
EXIT_USAGE = 64


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eid-gateway wallet-sim",
        description="Serve the test EUDI wallet and test PID provider (TEST FACILITY: fictitious people).",
    )
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 8700), help="HOST:PORT (127.0.0.1:8700)")
    parser.add_argument(
        "--dir", type=Path, required=True, help="directory of the provider's CA, issuer and holder keys (made 0700)"
    )
    parser.add_argument(
        "--public-url", help="the URL the gateway reaches this process at (status list URI); default http://HOST:PORT"
    )
    parser.add_argument("--status-ttl", type=int, default=10, help="the status list's ttl in seconds (10)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="listen on an address other than loopback (its admin routes have no login: test networks only)",
    )
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wallet_sim_main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    host, port = args.listen
    if not _is_loopback(host) and not args.allow_non_loopback:
        err.write(
            f"error: --listen {host}: the test wallet's admin routes have no login; it listens on loopback"
            " (127.0.0.1, ::1) unless --allow-non-loopback is given\n"
        )
        return EXIT_USAGE
    from eid_gateway.ports import port_in_use

    problem = port_in_use(host, port)
    if problem is not None:
        err.write(f"error: cannot listen on {problem} (--listen)\n")
        return EXIT_CANNOT_LISTEN
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING))

    from aiohttp import web

    from eid_gateway.wallet_sim.server import STATUS_PATH, create_app
    from eid_gateway.wallet_sim.wallet import TestWallet

    shown = f"[{host}]" if ":" in host else host
    base = (args.public_url or f"http://{shown}:{port}").rstrip("/")
    wallet = TestWallet.open(args.dir, status_uri=base + STATUS_PATH)
    app = create_app(wallet, wallet.status_list(ttl=args.status_ttl))
    out.write(f"wallet-sim on {base} (CA certificate: {base}/ca.pem, keys in {args.dir})\n")
    out.flush()
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return EXIT_OK
