"""``[wallet]``: the gateway as an OpenID4VP verifier for the EUDI wallet's PID (see docs/wallet.md).

Read the one way every table is read (:mod:`eid_gateway.settings_base`). The section's presence turns
the wallet on (``enabled = false`` keeps it configured but offered to nobody); which services offer it
is each service's ``methods``. The trust list is loaded here, so a gateway that starts can verify.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import AfterValidator

from eid_gateway.identity import LevelOfAssurance
from eid_gateway.service_settings import LoaName
from eid_gateway.services import Service
from eid_gateway.settings_base import (
    ExistingMaterial,
    KeyMaterial,
    MaterialFile,
    Range,
    ReadContext,
    Reader,
    Section,
    Text,
    problem,
    refuse_unless,
)
from eid_gateway.wallet.pid import DEFAULT_VCT_VALUES, NOT_IN_PID
from eid_gateway.wallet.trust import TrustList, TrustListError
from saml.keys import KeyPair

#: The wallet's invocation scheme (OpenID4VP 1.0 §13.1); tests and the demo point it at the test wallet.
DEFAULT_INVOCATION_URL: Final = "openid4vp://"
#: Card and wallet: the values of a service's ``methods``.
METHODS: Final = ("card", "wallet")
_LOA: Final = {loa.name.lower(): loa for loa in LevelOfAssurance}
#: eIDAS order of the levels (the enum's values are URIs, not comparable).
LOA_RANK: Final = {LevelOfAssurance.LOW: 1, LevelOfAssurance.SUBSTANTIAL: 2, LevelOfAssurance.HIGH: 3}


@dataclass(frozen=True)
class WalletSettings:
    """``[wallet]`` as the gateway uses it."""

    enabled: bool
    trust: TrustList
    trust_list_path: Path
    #: Signs the request objects (ES256); its certificate's hash is the client_id (``x509_hash:``).
    signing: KeyPair
    invocation_url: str = DEFAULT_INVOCATION_URL
    vct_values: tuple[str, ...] = DEFAULT_VCT_VALUES
    level_of_assurance: LevelOfAssurance = LevelOfAssurance.SUBSTANTIAL
    status_timeout_seconds: float = 5.0
    status_cache_seconds: float = 300.0
    #: How long a request object is valid (its ``exp``) and how old a key-binding JWT may be.
    request_lifetime_seconds: int = 300

    def offers(self, service: Service) -> bool:
        """Whether ``service`` may be signed in with the wallet (it lists it, and it is switched on)."""
        return self.enabled and "wallet" in service.methods

    def offers_for(self, service: Service, requested: LevelOfAssurance) -> bool:
        """:meth:`offers`, for a request asking ``requested``: the wallet's level must reach it."""
        return self.offers(service) and LOA_RANK[requested] <= LOA_RANK[self.level_of_assurance]


def _invocation_url(value: str) -> str:
    if any(ord(ch) <= 32 or ord(ch) == 127 or ch in "\"<>'" for ch in value) or ":" not in value:
        raise problem("must be a URL scheme such as openid4vp:// or an absolute URL (no spaces or quotes)")
    scheme = value.split(":", 1)[0]
    if not scheme or not (scheme[0].isalpha() and all(c.isalnum() or c in "+-." for c in scheme)):
        raise problem("must start with a URL scheme such as openid4vp://")
    if "?" in value or "#" in value:
        raise problem("must not carry a query or fragment (client_id and request_uri are appended)")
    return value


CredentialTypes = Annotated[list[Text], refuse_unless(bool, "must list at least one credential type")]


class WalletTable(Section):
    """``[wallet]`` as written: see :class:`WalletSettings`."""

    enabled: bool = True
    trust_list: ExistingMaterial
    signing_key: MaterialFile
    signing_cert: MaterialFile
    invocation_url: Annotated[str, AfterValidator(_invocation_url)] = DEFAULT_INVOCATION_URL
    vct_values: CredentialTypes = list(DEFAULT_VCT_VALUES)
    level_of_assurance: LoaName = "substantial"
    status_timeout_seconds: Annotated[float, Range(0.1, 60)] = 5.0
    status_cache_seconds: Annotated[float, Range(0, 86400)] = 300.0
    request_lifetime_seconds: Annotated[int, Range(30, 3600)] = 300


def parse_wallet(
    document: Mapping[str, Any], context: ReadContext, material: KeyMaterial | None = None
) -> WalletSettings | None:
    """``[wallet]`` with its trust list and signing key loaded; ``None`` when absent. Raises
    :class:`~eid_gateway.settings_base.ConfigError` listing every problem."""
    raw = document.get("wallet")
    if raw is None:
        return None
    reader = Reader(context) if material is None else material.reader
    material = material or KeyMaterial(reader, None)
    table = reader.table(WalletTable, raw, "wallet")
    if table is None:
        reader.check()
        return None
    trust: TrustList | None = None
    try:
        trust = TrustList.from_file(table.trust_list)
    except (TrustListError, OSError) as exc:
        reader.problem(("wallet", "trust_list"), f"not a usable trust list: {exc}")
    signing = material.pair(("wallet", "signing_key"), table.signing_key, table.signing_cert, password=False)
    if signing is not None and not (
        isinstance(signing.private_key, ec.EllipticCurvePrivateKey)
        and isinstance(signing.private_key.curve, ec.SECP256R1)
    ):
        reader.problem(("wallet", "signing_key"), "must be an EC P-256 key (request objects are signed with ES256)")
    reader.check()
    assert trust is not None and signing is not None
    return WalletSettings(
        enabled=table.enabled,
        trust=trust,
        trust_list_path=table.trust_list,
        signing=signing,
        invocation_url=table.invocation_url,
        vct_values=tuple(table.vct_values),
        level_of_assurance=_LOA[table.level_of_assurance],
        status_timeout_seconds=table.status_timeout_seconds,
        status_cache_seconds=table.status_cache_seconds,
        request_lifetime_seconds=table.request_lifetime_seconds,
    )


def check_service_methods(
    services: Sequence[Service], wallet: WalletSettings | None, raw_services: object, reader: Reader
) -> None:
    """Across tables: a service offers the wallet only when ``[wallet]`` is configured, when the PID
    carries every attribute the service requires, and when the wallet's level of assurance reaches the
    service's (a ``high`` service stays card-only)."""
    entries = raw_services if isinstance(raw_services, list) else []
    for i, service in enumerate(services):
        if "wallet" not in service.methods:
            continue
        at = ("services", _index(entries, service.id, i), "methods")
        if wallet is None:
            reader.problem(at, "offers 'wallet', but there is no [wallet] section")
        elif missing := sorted(a.value for a in service.required_attributes & NOT_IN_PID):
            reader.problem(at, f"offers 'wallet', but the PID does not carry the required {', '.join(missing)}")
        elif LOA_RANK[service.level_of_assurance] > LOA_RANK[wallet.level_of_assurance]:
            reader.problem(
                at,
                f"offers 'wallet', but the service needs level of assurance "
                f"{service.level_of_assurance.name.lower()} and [wallet] gives "
                f"{wallet.level_of_assurance.name.lower()} (set the service's level_of_assurance, "
                "or offer it the card only)",
            )


def _index(entries: Sequence[object], service_id: str, default: int) -> int:
    for i, entry in enumerate(entries):
        if isinstance(entry, Mapping) and entry.get("id") == service_id:
            return i
    return default
