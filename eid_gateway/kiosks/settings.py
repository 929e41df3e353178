"""Kiosk configuration: `[kiosk_monitor]` and `[[kiosks]]` tables of the gateway TOML, validated.

Like the gateway config, every problem is collected and named by its key, so an operator fixes the
file in one pass. Only hashes of credentials are accepted: a plain token in the config is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eid_gateway.kiosks.credentials import CredentialFormatError, check_kiosk_hash, check_staff_hash

_KIOSK_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class KioskConfigError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class KioskEntry:
    id: str
    name: str
    credential_hash: str
    #: SHA-256 of the kiosk's TLS client certificate (DER) when mutual TLS is required for it.
    client_cert_sha256: str | None = None


@dataclass(frozen=True)
class KioskSettings:
    kiosks: tuple[KioskEntry, ...]
    staff_user: str
    staff_password_hash: str
    heartbeat_seconds: float = 10.0
    stale_after_missed: int = 3

    @property
    def stale_after_seconds(self) -> float:
        return self.heartbeat_seconds * self.stale_after_missed

    def by_id(self) -> dict[str, KioskEntry]:
        return {k.id: k for k in self.kiosks}


def parse_kiosk_settings(doc: Mapping[str, Any]) -> KioskSettings | None:
    """Read `kiosk_monitor` and `kiosks` from a parsed TOML document; None when neither is present."""
    monitor = doc.get("kiosk_monitor")
    kiosks_raw = doc.get("kiosks")
    if monitor is None and kiosks_raw is None:
        return None
    errors: list[str] = []
    if not isinstance(monitor, dict):
        raise KioskConfigError(["kiosk_monitor: must be a table (staff_user, staff_password_hash, ...)"])
    allowed = {"staff_user", "staff_password_hash", "heartbeat_seconds", "stale_after_missed"}
    for k in monitor:
        if k not in allowed:
            errors.append(f"kiosk_monitor.{k}: unknown key")
    staff_user = monitor.get("staff_user")
    if not isinstance(staff_user, str) or not staff_user or ":" in staff_user:
        errors.append("kiosk_monitor.staff_user: must be a non-empty string without ':'")
        staff_user = ""
    staff_hash = monitor.get("staff_password_hash")
    if not isinstance(staff_hash, str):
        errors.append("kiosk_monitor.staff_password_hash: is required (eid-gateway kiosk-credential staff-password)")
        staff_hash = ""
    else:
        try:
            check_staff_hash(staff_hash)
        except CredentialFormatError as exc:
            errors.append(f"kiosk_monitor.staff_password_hash: {exc}")
    hb = monitor.get("heartbeat_seconds", 10)
    if isinstance(hb, bool) or not isinstance(hb, (int, float)) or not 1 <= hb <= 3600:
        errors.append("kiosk_monitor.heartbeat_seconds: must be a number between 1 and 3600")
        hb = 10
    missed = monitor.get("stale_after_missed", 3)
    if isinstance(missed, bool) or not isinstance(missed, int) or not 1 <= missed <= 100:
        errors.append("kiosk_monitor.stale_after_missed: must be an integer between 1 and 100")
        missed = 3
    entries: list[KioskEntry] = []
    if kiosks_raw is None:
        kiosks_raw = []
    if not isinstance(kiosks_raw, list):
        errors.append("kiosks: must be an array of tables ([[kiosks]])")
        kiosks_raw = []
    seen: set[str] = set()
    for i, item in enumerate(kiosks_raw):
        key = f"kiosks[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{key}: must be a table")
            continue
        for k in item:
            if k not in {"id", "name", "credential_hash", "client_cert_sha256"}:
                errors.append(f"{key}.{k}: unknown key" + (" (store only credential_hash)" if "credential" in k else ""))
        kid = item.get("id")
        if not isinstance(kid, str) or not _KIOSK_ID.fullmatch(kid):
            errors.append(f"{key}.id: must match [a-z0-9][a-z0-9_-]{{0,63}}")
            continue
        if kid in seen:
            errors.append(f"{key}.id: duplicate kiosk id {kid!r}")
        seen.add(kid)
        name = item.get("name", kid)
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors.append(f"{key}.name: must be a non-empty string of at most 200 characters")
            name = kid
        ch = item.get("credential_hash")
        if not isinstance(ch, str):
            errors.append(f"{key}.credential_hash: is required (eid-gateway kiosk-credential new)")
            continue
        try:
            check_kiosk_hash(ch)
        except CredentialFormatError as exc:
            errors.append(f"{key}.credential_hash: {exc}")
        pin = item.get("client_cert_sha256")
        if pin is not None:
            if not isinstance(pin, str) or not _HEX64.fullmatch(pin.replace(":", "").lower()):
                errors.append(f"{key}.client_cert_sha256: must be 64 hex digits")
                pin = None
            else:
                pin = pin.replace(":", "").lower()
        entries.append(KioskEntry(id=kid, name=name, credential_hash=ch, client_cert_sha256=pin))
    if errors:
        raise KioskConfigError(errors)
    return KioskSettings(
        kiosks=tuple(entries),
        staff_user=staff_user,
        staff_password_hash=staff_hash,
        heartbeat_seconds=float(hb),
        stale_after_missed=missed,
    )
