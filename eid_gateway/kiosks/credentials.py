"""Kiosk and staff credentials: only hashes live in the config; checks take constant time.

Kiosk credentials are 256-bit random tokens made by `new_kiosk_credential`, so one SHA-256 is enough
to store them (no dictionary to guess from) and cheap enough for 1,000 kiosks' heartbeats. Staff
passwords are chosen by people, so they get scrypt (memory-hard, :mod:`eid_gateway.secret_hash`),
checked off the event loop.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import secrets
import sys

from eid_gateway.secret_hash import HashFormatError, hash_secret, parse_hash, verify_secret

KIOSK_PREFIX = "sha256$"
#: People choose staff passwords, so a higher scrypt cost than for random client secrets.
STAFF_PASSWORD_N = 2**15
_DUMMY_KIOSK_HASH = KIOSK_PREFIX + "00" * 32


class CredentialFormatError(ValueError):
    """A configured credential hash is not in a format we produce."""


def new_kiosk_credential() -> tuple[str, str]:
    """A fresh kiosk token (goes to the kiosk, never stored by the gateway) and its hash (config)."""
    token = secrets.token_urlsafe(32)
    return token, hash_kiosk_credential(token)


def hash_kiosk_credential(token: str) -> str:
    return KIOSK_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_kiosk_hash(stored: str) -> None:
    """Raise CredentialFormatError unless *stored* is 'sha256$' + 64 lower-case hex digits."""
    if not stored.startswith(KIOSK_PREFIX):
        raise CredentialFormatError("kiosk credential hash must start with 'sha256$'")
    digest = stored[len(KIOSK_PREFIX) :]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise CredentialFormatError("kiosk credential hash must be 64 lower-case hex digits")


def verify_kiosk_credential(token: str, stored: str | None) -> bool:
    """Constant-time check; an unknown kiosk (stored None) costs the same as a wrong token."""
    presented = hash_kiosk_credential(token).encode("ascii")
    expected = (stored if stored is not None else _DUMMY_KIOSK_HASH).encode("ascii")
    ok = hmac.compare_digest(presented, expected)
    return ok and stored is not None


def hash_staff_password(password: str, *, n: int = STAFF_PASSWORD_N) -> str:
    """The stored form of a staff password (:mod:`eid_gateway.secret_hash`)."""
    return hash_secret(password, n=n)


def check_staff_hash(stored: str) -> None:
    """Raise CredentialFormatError unless *stored* is a scrypt hash we accept."""
    try:
        parse_hash(stored)
    except HashFormatError as exc:
        raise CredentialFormatError(f"staff password hash {exc}") from None


def verify_staff_password(password: str, stored: str) -> bool:
    """Recompute scrypt and compare in constant time (slow on purpose: run it in a thread)."""
    return verify_secret(password, stored)


def credential_main(argv: list[str] | None = None) -> int:
    """`eid-gateway kiosk-credential new` / `metrics-token` / `staff-password`: a credential and its config hash."""
    ap = argparse.ArgumentParser(prog="eid-gateway kiosk-credential", description=credential_main.__doc__)
    sub = ap.add_subparsers(dest="what", required=True)
    sub.add_parser("new", help="a new kiosk token (for the kiosk) and its hash (for [[kiosks]])")
    sub.add_parser("metrics-token", help="a scrape token for /kiosks/metrics (Prometheus) and its hash")
    sub.add_parser("staff-password", help="hash a staff password for [kiosk_monitor] (read from the terminal)")
    args = ap.parse_args(argv)
    if args.what == "new":
        token, digest = new_kiosk_credential()
        print(f"kiosk token (put it in the kiosk's credential file, mode 0600): {token}")
        print(f'credential_hash = "{digest}"')
        return 0
    if args.what == "metrics-token":
        token, digest = new_kiosk_credential()  # the same kind of secret: 256 random bits, SHA-256 stored
        print(f"scrape token (Prometheus: authorization credentials_file, mode 0600): {token}")
        print(f'metrics_token_hash = "{digest}"   # in [kiosk_monitor]')
        return 0
    pw = getpass.getpass("staff password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(pw) < 12:
        print("refused: use at least 12 characters", file=sys.stderr)
        return 2
    print(f'staff_password_hash = "{hash_staff_password(pw)}"')
    return 0
