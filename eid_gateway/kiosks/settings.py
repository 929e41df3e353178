"""Kiosk configuration: `[kiosk_monitor]` and `[[kiosks]]` tables of the gateway TOML, validated.

Read the one way every table is read (:mod:`eid_gateway.settings_base`): every problem is collected and
named by its key, so an operator fixes the file in one pass. Only hashes of credentials are accepted:
a plain token in the config is an error.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator

from eid_gateway.kiosks.credentials import CredentialFormatError, check_kiosk_hash, check_staff_hash
from eid_gateway.settings_base import Range, ReadContext, Reader, Section, Text, problem

_KIOSK_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class KioskEntry:
    id: str
    name: str
    credential_hash: str


Role = Literal["view", "admin"]


@dataclass(frozen=True)
class StaffAccount:
    """A named staff account of the dashboard (``[[kiosk_monitor.staff]]``)."""

    name: str
    password_hash: str
    role: Role = "view"


@dataclass(frozen=True)
class KioskSettings:
    kiosks: tuple[KioskEntry, ...]
    #: The one shared account of earlier versions (``staff_user``/``staff_password_hash``), role admin.
    staff_user: str | None = None
    staff_password_hash: str | None = None
    heartbeat_seconds: float = 10.0
    stale_after_missed: int = 1
    #: shown on the dashboard without JavaScript (with it, the staff browser's own zone)
    time_zone: str = "Europe/Berlin"
    #: Named staff accounts with roles.
    staff: tuple[StaffAccount, ...] = ()
    #: Hash of the bearer token a Prometheus scraper presents for ``/kiosks/metrics`` (no staff password).
    metrics_token_hash: str | None = None
    #: How long a staff sign-in on the dashboard lasts.
    session_minutes: int = 480
    #: How long each kiosk's history (state changes, no personal data) is kept.
    history_days: int = 30

    def staff_accounts(self) -> tuple[StaffAccount, ...]:
        """Every account that may sign in: the named ones and the shared one of earlier versions."""
        legacy = (
            (StaffAccount(self.staff_user, self.staff_password_hash, "admin"),)
            if self.staff_user is not None and self.staff_password_hash is not None
            else ()
        )
        return legacy + self.staff

    @property
    def stale_after_seconds(self) -> float:
        """Silence after which a kiosk shows offline: a heartbeat counts as missed half an interval
        after it was due, so one missed heartbeat is shown within two intervals."""
        return self.heartbeat_seconds * (self.stale_after_missed + 0.5)

    def by_id(self) -> dict[str, KioskEntry]:
        return {k.id: k for k in self.kiosks}


def _staff_user(value: str) -> str:
    if not value or ":" in value:
        raise problem("must be a non-empty string without ':'")
    return value


def _hash_checked_by(check: Callable[[str], None]) -> Callable[[str], str]:
    """A validator for a stored credential hash: ``check``'s :class:`CredentialFormatError` becomes the problem."""

    def validate(value: str) -> str:
        try:
            check(value)
        except CredentialFormatError as exc:
            raise problem(str(exc)) from None
        return value

    return validate


_staff_hash: Final = _hash_checked_by(check_staff_hash)
_kiosk_hash: Final = _hash_checked_by(check_kiosk_hash)


def _kiosk_id(value: str) -> str:
    if not _KIOSK_ID.fullmatch(value):
        raise problem("must match [a-z0-9][a-z0-9_-]{0,63}")
    return value


#: Why ``client_cert_sha256`` is refused, and what to do instead (docs/kiosks.md, "Client certificates").
CLIENT_CERT_DROPPED = (
    "is not supported any more: TLS ends at the reverse proxy, so the gateway never sees a kiosk's "
    "certificate and could not check it; remove the key and, to require a client certificate, let the "
    "proxy verify it for /kiosks/api/ (nginx ssl_verify_client, Apache SSLVerifyClient; see docs/kiosks.md, "
    "'Client certificates'). The kiosk token is still checked."
)


def _dropped_pin(value: object) -> object:
    raise problem(CLIENT_CERT_DROPPED)


def _name(value: str) -> str:
    if len(value) > 200:
        raise problem("must be at most 200 characters")
    return value


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise problem("must be an IANA time zone such as Europe/Berlin") from None
    return value


def _plain_credential(value: object) -> object:
    raise problem("unknown key (store only credential_hash)")


class KioskStaffTable(Section):
    """One ``[[kiosk_monitor.staff]]`` account (``eid-gateway kiosk-staff add`` writes them)."""

    name: Annotated[str, AfterValidator(_staff_user)]
    password_hash: Annotated[str, AfterValidator(_staff_hash)]
    role: Role = "view"


class KioskMonitorTable(Section):
    """``[kiosk_monitor]``: the staff accounts, the scrape credential and how stale a kiosk may get."""

    staff_user: Annotated[str, AfterValidator(_staff_user)] | None = None
    staff_password_hash: Annotated[str, AfterValidator(_staff_hash)] | None = None
    staff: list[KioskStaffTable] = []
    metrics_token_hash: Annotated[str, AfterValidator(_kiosk_hash)] | None = None
    session_minutes: Annotated[int, Range(5, 1440)] = 480
    heartbeat_seconds: Annotated[float, Range(1, 3600)] = 10.0
    stale_after_missed: Annotated[int, Range(1, 100)] = 1
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "Europe/Berlin"
    history_days: Annotated[int, Range(1, 3650)] = 30


class KioskTable(Section):
    """One ``[[kiosks]]`` entry."""

    id: Annotated[str, AfterValidator(_kiosk_id)]
    name: Annotated[Text, AfterValidator(_name)] | None = None
    credential_hash: Annotated[str, AfterValidator(_kiosk_hash)]
    #: Refused with the replacement named (TLS ends at the reverse proxy; it checks client certificates).
    client_cert_sha256: Annotated[object, AfterValidator(_dropped_pin)] = None
    #: Never stored: a plain credential in the config is refused with a hint.
    credential: Annotated[object, AfterValidator(_plain_credential)] = None


def parse_kiosk_settings(doc: Mapping[str, Any], context: ReadContext | None = None) -> KioskSettings | None:
    """Read `kiosk_monitor` and `kiosks` from a parsed TOML document; None when neither is present.
    Raises :class:`~eid_gateway.settings_base.ConfigError` listing every problem."""
    monitor_raw = doc.get("kiosk_monitor")
    kiosks_raw = doc.get("kiosks")
    if monitor_raw is None and kiosks_raw is None:
        return None
    reader = Reader(context or ReadContext(base_dir=Path(".")))
    monitor = reader.table(KioskMonitorTable, {} if monitor_raw is None else monitor_raw, "kiosk_monitor")
    if kiosks_raw is None:
        kiosks_raw = []
    if not isinstance(kiosks_raw, list):
        reader.problem("kiosks", "must be an array of tables ([[kiosks]])")
        kiosks_raw = []
    entries: list[KioskEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(kiosks_raw):
        kid = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(kid, str):  # checked on the raw value: also reported when the entry has other problems
            if kid in seen:
                reader.problem(("kiosks", i, "id"), f"duplicate kiosk id {kid!r}")
            seen.add(kid)
        table = reader.table(KioskTable, item, ("kiosks", i))
        if table is not None:
            entries.append(
                KioskEntry(
                    id=table.id,
                    name=table.name or table.id,
                    credential_hash=table.credential_hash,
                )
            )
    if monitor is not None:
        _check_staff(reader, monitor)
    reader.check()
    assert monitor is not None
    return KioskSettings(
        kiosks=tuple(entries),
        staff_user=monitor.staff_user,
        staff_password_hash=monitor.staff_password_hash,
        heartbeat_seconds=monitor.heartbeat_seconds,
        stale_after_missed=monitor.stale_after_missed,
        time_zone=monitor.time_zone,
        staff=tuple(StaffAccount(s.name, s.password_hash, s.role) for s in monitor.staff),
        metrics_token_hash=monitor.metrics_token_hash,
        session_minutes=monitor.session_minutes,
        history_days=monitor.history_days,
    )


def _check_staff(reader: Reader, monitor: KioskMonitorTable) -> None:
    """At least one account, names unique, and the shared account complete (user and hash together)."""
    if (monitor.staff_user is None) != (monitor.staff_password_hash is None):
        reader.problem("kiosk_monitor", "staff_user and staff_password_hash go together")
    names = [monitor.staff_user] if monitor.staff_user is not None else []
    for i, account in enumerate(monitor.staff):
        if account.name in names:
            reader.problem(("kiosk_monitor", "staff", i, "name"), f"duplicate staff account {account.name!r}")
        names.append(account.name)
    if not names:
        reader.problem(
            "kiosk_monitor", "no staff account: add one with `eid-gateway kiosk-staff add NAME --config FILE`"
        )
