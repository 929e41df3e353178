"""``[embedded_paos]``: the embedded PAOS eID-Server's settings, validated like the rest of the config.

    [eid_server]
    kind = "embedded-paos"

    [embedded_paos]
    pki_dir = "eid-test-pki"        # written by `eid-gateway dev-pki`
    listen_host = "127.0.0.1"       # the PAOS endpoint's own TLS listener
    listen_port = 8443              # omit: PAOS at <public_origin>/paos on the gateway's own https listener
    public_url = "https://127.0.0.1:8443/paos"   # optional: the TC Token's ServerAddress
    prefix = "/eid-paos"            # eID-Interface (SOAP) path prefix in the gateway app

Production refuses the test PKI twice: because its DV hangs below ``DETESTeID00005``, and by the rule for
every key setting, because its TLS certificate is marked as development material
(:func:`certs.devpki.is_dev_file`).

The test PKI module (and with it the eID-Server's crypto) is imported only when the table is read, so
that importing the gateway's config does not import the embedded eID-Server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit

from pydantic import AfterValidator

from certs.devpki import is_dev_file
from certs.loading import CertLoadError, load_key_pair_file
from eid_gateway.settings_base import (
    FilePath,
    Range,
    ReadContext,
    Reader,
    Section,
    Text,
    dev_material_message,
    problem,
    validate,
)
from saml.keys import KeyPair

if TYPE_CHECKING:
    from eid_gateway.eidserver.testpki import TestPki

SECTION: Final = "embedded_paos"


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


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise problem("must be an absolute https URL (AusweisApp never relaxes this)")
    return value


def _prefix(value: str) -> str:
    if not re.fullmatch(r"/[a-z0-9-]+", value):
        raise problem("must look like /eid-paos")
    return value


class EmbeddedPaosTable(Section):
    """The ``[embedded_paos]`` table as written."""

    pki_dir: FilePath = Path("eid-test-pki")
    listen_host: Text = "127.0.0.1"
    # No listen_port: PAOS is served by the gateway's own (https) listener at <public origin>/paos —
    # the attached model proper, where the TC Token's TLS session can be resumed for PAOS.
    listen_port: Annotated[int, Range(0, 65535)] | None = None
    public_url: Annotated[str, AfterValidator(_https_url)] | None = None
    prefix: Annotated[str, AfterValidator(_prefix)] = "/eid-paos"


def parse_embedded_paos(
    data: Mapping[str, Any], base_dir: Path, *, production: bool, origin: str = "", password: bytes | None = None
) -> EmbeddedPaosSettings:
    """Validate ``[embedded_paos]``; raises :class:`~eid_gateway.settings_base.ConfigError` naming every bad key."""
    from eid_gateway.eidserver.testpki import FILES, TestPkiError, is_test_pki, load_test_pki

    context = ReadContext(base_dir=base_dir, production=production, password=password, origin=origin)
    table = validate(EmbeddedPaosTable, data.get(SECTION, {}), context, (SECTION,))
    pki_dir = table.pki_dir if table.pki_dir.is_absolute() else base_dir / table.pki_dir
    reader = Reader(context)
    public_url = table.public_url
    if public_url is None:
        if table.listen_port is not None:
            public_url = f"https://{table.listen_host}:{table.listen_port}/paos"
        elif origin.startswith("https://"):
            public_url = origin.rstrip("/") + "/paos"
        else:
            reader.problem(
                (SECTION, "public_url"),
                "must be an absolute https URL (AusweisApp never relaxes this); "
                "without listen_port the gateway's public_origin must be https",
            )
    pki: TestPki | None = None
    signing: KeyPair | None = None
    try:
        pki = load_test_pki(pki_dir)
    except TestPkiError as exc:
        reader.problem((SECTION, "pki_dir"), str(exc))
    try:
        signing = load_key_pair_file(pki_dir / FILES["signing_key"], pki_dir / FILES["signing_cert"])
    except CertLoadError as exc:
        reader.problem((SECTION, "pki_dir"), str(exc))
    if production and pki is not None:
        if is_test_pki(pki):
            reader.problem(
                (SECTION, "pki_dir"), f"this is the test PKI (CVCA {pki.dv.authority_reference}); production refuses it"
            )
        if is_dev_file(pki.tls_cert_path, password):
            reader.problem((SECTION, "pki_dir"), dev_material_message(pki.tls_cert_path))
    reader.check()
    assert pki is not None and signing is not None and public_url is not None
    return EmbeddedPaosSettings(pki, signing, table.listen_host, table.listen_port, public_url, table.prefix)
