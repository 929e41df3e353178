"""``[embedded_paos]``: the embedded PAOS eID-Server's settings, validated like the rest of the config.

    [eid_server]
    kind = "embedded-paos"

    [embedded_paos]
    pki_dir = "eid-test-pki"        # written by `eid-gateway dev-pki`
    listen_host = "127.0.0.1"       # the PAOS endpoint's own TLS listener
    listen_port = 8443              # omit: PAOS at <public_origin>/paos on the gateway's own https listener
    public_url = "https://127.0.0.1:8443/paos"   # optional: the TC Token's ServerAddress
    prefix = "/eid-paos"            # eID-Interface (SOAP) path prefix in the gateway app

Production refuses the test PKI: here because its DV hangs below ``DETESTeID00005``; and in
:mod:`eid_gateway.config`, by the rule for every key setting, because its TLS certificate is marked as
development material (:func:`certs.devpki.is_dev_file`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from certs.loading import CertLoadError, load_key_pair_file
from eid_gateway.eidserver.testpki import FILES, TestPki, TestPkiError, is_test_pki, load_test_pki
from saml.keys import KeyPair

SECTION: Final = "embedded_paos"
_KNOWN: Final = {"pki_dir", "listen_host", "listen_port", "public_url", "prefix"}


class EmbeddedPaosSettingsError(ValueError):
    def __init__(self, *errors: str):
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class EmbeddedPaosSettings:
    pki: TestPki
    #: Signs the eID-Interface answers (the gateway pins its certificate).
    signing: KeyPair
    listen_host: str
    #: ``None``: PAOS shares the gateway's listener (``/paos`` in the gateway app).
    listen_port: int | None
    public_url: str
    prefix: str


def parse_embedded_paos(
    data: Mapping[str, Any], base_dir: Path, *, production: bool, origin: str = ""
) -> EmbeddedPaosSettings:
    """Validate ``[embedded_paos]``; raises :class:`EmbeddedPaosSettingsError` naming every bad key."""
    errors: list[str] = []
    table = data.get(SECTION, {})
    if not isinstance(table, dict):
        raise EmbeddedPaosSettingsError(f"{SECTION}: must be a table")
    for key in sorted(set(table) - _KNOWN):
        errors.append(f"{SECTION}.{key}: unknown key")
    raw_dir = table.get("pki_dir", "eid-test-pki")
    if not isinstance(raw_dir, str) or not raw_dir:
        errors.append(f"{SECTION}.pki_dir: must be a path")
        raw_dir = "eid-test-pki"
    pki_dir = Path(raw_dir).expanduser()
    pki_dir = pki_dir if pki_dir.is_absolute() else base_dir / pki_dir
    host = table.get("listen_host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        errors.append(f"{SECTION}.listen_host: must be a host name or address")
        host = "127.0.0.1"
    # No listen_port: PAOS is served by the gateway's own (https) listener at <public origin>/paos —
    # the attached model proper, where the TC Token's TLS session can be resumed for PAOS.
    port = table.get("listen_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        errors.append(f"{SECTION}.listen_port: must be an integer 0..65535")
        port = None
    default_url = f"https://{host}:{port}/paos" if port is not None else (
        origin.rstrip("/") + "/paos" if origin.startswith("https://") else "")
    public_url = table.get("public_url", default_url)
    if not isinstance(public_url, str) or urlsplit(public_url).scheme != "https" or not urlsplit(public_url).netloc:
        errors.append(f"{SECTION}.public_url: must be an absolute https URL (AusweisApp never relaxes this); "
                      "without listen_port the gateway's public_origin must be https")
        public_url = "https://invalid/paos"
    prefix = table.get("prefix", "/eid-paos")
    if not isinstance(prefix, str) or not re.fullmatch(r"/[a-z0-9-]+", prefix):
        errors.append(f"{SECTION}.prefix: must look like /eid-paos")
        prefix = "/eid-paos"
    pki: TestPki | None = None
    signing: KeyPair | None = None
    try:
        pki = load_test_pki(pki_dir)
    except TestPkiError as exc:
        errors.append(f"{SECTION}.pki_dir: {exc}")
    try:
        signing = load_key_pair_file(pki_dir / FILES["signing_key"], pki_dir / FILES["signing_cert"])
    except CertLoadError as exc:
        errors.append(f"{SECTION}.pki_dir: {exc}")
    if production and pki is not None and is_test_pki(pki):
        errors.append(f"{SECTION}.pki_dir: this is the test PKI (CVCA {pki.dv.authority_reference}); "
                      "production refuses it")
    if errors:
        raise EmbeddedPaosSettingsError(*errors)
    assert pki is not None and signing is not None
    return EmbeddedPaosSettings(pki, signing, host, port, public_url, prefix)
