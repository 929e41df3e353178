"""``eid-gateway kiosk-staff add NAME --role view|admin``: a named staff account for the kiosk dashboard.

The password is generated (people pick weak ones), printed once, and only its scrypt hash is kept,
made the way OIDC client secrets are (:mod:`eid_gateway.frontends.oidc.client_secret`). With
``--config`` the ``[[kiosk_monitor.staff]]`` block is appended after the whole config with it has been
validated (as ``service add`` does); without, the block is printed for the operator to paste.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import TextIO

from eid_gateway.config import ConfigError
from eid_gateway.frontends.oidc.client_secret import hash_client_secret
from eid_gateway.service_add import ServiceAddError, _replace_private, _validated_config_text

EXIT_OK, EXIT_INVALID = 0, 2


def new_staff_password() -> str:
    """20 characters of base64url (120 random bits): long enough, short enough to type."""
    return secrets.token_urlsafe(15)


def staff_block(name: str, role: str, password_hash: str) -> str:
    return f'[[kiosk_monitor.staff]]\nname = "{name}"\nrole = "{role}"\npassword_hash = "{password_hash}"\n'


def staff_main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    ap = argparse.ArgumentParser(prog="eid-gateway kiosk-staff", description="staff accounts of the kiosk dashboard")
    sub = ap.add_subparsers(dest="what", required=True)
    add = sub.add_parser("add", help="a new staff account: prints its generated password once")
    add.add_argument("name", help="the sign-in name (no ':')")
    add.add_argument("--role", choices=("view", "admin"), default="view", help="view (default) or admin")
    add.add_argument("--config", type=Path, help="append the account to this config (without: print the block)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    name: str = args.name
    if not name or ":" in name or '"' in name or "\\" in name or not name.isprintable() or len(name) > 200:
        err.write("error: the name must be 1-200 printable characters without ':', '\"' or '\\'\n")
        return EXIT_INVALID
    password = new_staff_password()
    block = staff_block(name, args.role, hash_client_secret(password))
    if args.config is not None:
        try:
            _replace_private(args.config, _validated_config_text(args.config, block))
        except ConfigError as exc:
            err.write(f"error: {args.config} would not be valid with this account:\n")
            err.write("".join(f"  - {line}\n" for line in exc.errors))
            err.write("nothing was written\n")
            return EXIT_INVALID
        except (ServiceAddError, OSError) as exc:
            err.write(f"error: {exc}\nnothing was written\n")
            return EXIT_INVALID
        out.write(f"added staff account {name!r} (role {args.role}) to {args.config}\n")
    else:
        out.write(block)
    out.write(f"password for {name} (give it to them; shown only now, not stored anywhere): {password}\n")
    return EXIT_OK
