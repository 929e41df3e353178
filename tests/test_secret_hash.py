"""One scrypt hash format for staff passwords and OIDC client secrets (eid_gateway/secret_hash.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from eid_gateway.frontends.oidc.client_secret import hash_client_secret, verify_client_secret
from eid_gateway.kiosks.credentials import (
    CredentialFormatError,
    check_staff_hash,
    hash_staff_password,
    verify_staff_password,
)
from eid_gateway.secret_hash import HashFormatError, hash_secret, parse_hash, verify_secret

#: Made by the two hashers before they were one (oidc/client_secret.py at N=2^14, kiosks/credentials.py
#: at N=2^15, commit f9b2268): hashes already in operators' config files.
OLD_CLIENT_SECRET = (
    "an OIDC client secret from before",
    "scrypt$16384$8$1$njHZfBaUQ9loPVOB2vKRTQ$WpS0DVvFYelzZhGnYQQQnHHd9LGYh-d1F4DII6h-F9w",
)
OLD_STAFF_PASSWORD = (
    "a staff password from before",
    "scrypt$32768$8$1$tNQ5ol_K648uGEbl_YqlhA$601UtNy_cF-JEb71TbwiD8OpDxzzH-7Zqhl69Fd48Nw",
)


@pytest.mark.parametrize("secret, stored", [OLD_CLIENT_SECRET, OLD_STAFF_PASSWORD], ids=["client", "staff"])
def test_hashes_made_by_both_old_hashers_still_verify(secret: str, stored: str) -> None:
    assert verify_secret(secret, stored)
    assert verify_client_secret(secret, stored) and verify_staff_password(secret, stored)
    assert not verify_secret(secret + " ", stored) and not verify_secret(secret[1:], stored)
    check_staff_hash(stored)


def test_each_purpose_keeps_its_cost_in_the_stored_string() -> None:
    client, staff = hash_client_secret("s3cret client"), hash_staff_password("a staff password")
    assert parse_hash(client).n == 2**14 and parse_hash(staff).n == 2**15
    assert verify_client_secret("s3cret client", client) and verify_staff_password("a staff password", staff)
    assert hash_client_secret("s3cret client") != client  # salted


def test_the_stored_hash_is_plain_scrypt() -> None:
    """Checked against hashlib directly, not through the module's own parser."""
    stored = hash_secret("correct horse", n=2**14)
    name, n, r, p, salt, digest = stored.split("$")
    unpad = lambda text: base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))  # noqa: E731
    assert (name, n, r, p) == ("scrypt", "16384", "8", "1") and len(unpad(salt)) == 16
    expected = hashlib.scrypt(b"correct horse", salt=unpad(salt), n=16384, r=8, p=1, dklen=32)
    assert unpad(digest) == expected


SALT, DIGEST = "A" * 22, "A" * 43  # 16 and 32 bytes


@pytest.mark.parametrize(
    "stored, complaint",
    [
        ("", "must be scrypt"),
        ("plain-password", "must be scrypt"),
        (f"bcrypt$16384$8$1${SALT}${DIGEST}", "must be scrypt"),
        (f"scrypt$16384$8$1${SALT}", "must be scrypt"),
        (f"scrypt$x$8$1${SALT}${DIGEST}", "malformed"),
        (f"scrypt$16384$8$1$A${DIGEST}", "malformed"),  # not base64
        (f"scrypt$1024$8$1${SALT}${DIGEST}", "too weak"),
        (f"scrypt$24576$8$1${SALT}${DIGEST}", "too weak"),  # not a power of two
        (f"scrypt$16384$0$1${SALT}${DIGEST}", "too weak"),
        (f"scrypt$16384$8$17${SALT}${DIGEST}", "too weak"),
        (f"scrypt$131072$8$1${SALT}${DIGEST}", "64 MiB"),
        (f"scrypt$16384$64$1${SALT}${DIGEST}", "too weak"),
        (f"scrypt$16384$8$1$AAAA${DIGEST}", "too short"),
        (f"scrypt$16384$8$1${SALT}$AAAA", "too short"),
    ],
)
def test_a_hash_we_do_not_accept_is_refused_and_never_verifies(stored: str, complaint: str) -> None:
    with pytest.raises(HashFormatError, match=complaint):
        parse_hash(stored)
    with pytest.raises(CredentialFormatError, match=complaint):
        check_staff_hash(stored)
    assert not verify_secret("anything", stored) and not verify_client_secret("anything", stored)


def test_a_cost_out_of_range_is_not_hashed() -> None:
    with pytest.raises(HashFormatError):
        hash_secret("x", n=2**12)
    with pytest.raises(HashFormatError):
        hash_secret("x", n=2**17)
