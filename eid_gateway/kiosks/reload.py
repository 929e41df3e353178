"""Kiosk credentials and staff accounts re-read from the config file while the gateway runs.

Why the config file, watched by its identity: a city's IT keeps the gateway's configuration in files
under configuration management (the same file on every node); ``kiosk-staff add --config`` and an
editor change that file. Every process (each ``--workers`` worker, each node) looks at the file's
mtime, size and inode at most once per ``check_seconds`` and, when they changed, re-reads only the
kiosk tables (``[[kiosks]]``, ``[[kiosk_monitor.staff]]``, the scrape token). No signal has to reach
every worker, nothing is restarted, sessions stay. A file that does not validate (half edited) keeps
the last good credentials, logged with its problems, until it is fixed. Everything else in the file
(also ``heartbeat_seconds`` and the other ``[kiosk_monitor]`` keys) still needs a restart.
"""

from __future__ import annotations

import logging
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Final

from eid_gateway.kiosks.registry import KioskRecord, KioskRegistry
from eid_gateway.kiosks.settings import KioskSettings, parse_kiosk_settings
from eid_gateway.settings_base import ConfigError, ReadContext

log = logging.getLogger("eid_gateway.kiosks")

#: How often a process looks at the file: the bound for a removed credential to stop working.
CHECK_SECONDS: Final = 1.0

_Identity = tuple[int, int, int]


def reloadable(current: KioskSettings, new: KioskSettings) -> KioskSettings:
    """*current* with the parts that take effect without a restart taken from *new*."""
    return replace(
        current,
        kiosks=new.kiosks,
        staff=new.staff,
        staff_user=new.staff_user,
        staff_password_hash=new.staff_password_hash,
        metrics_token_hash=new.metrics_token_hash,
    )


def use_kiosks(registry: KioskRegistry, settings: KioskSettings) -> bool:
    """The registry's kiosks from now on: new ones get a record ("noch keine Meldung"), a changed
    credential or name applies at once, removed ones leave the board. True when the board's rows
    changed (open dashboard streams are then ended; browsers reconnect and get the new board)."""
    wanted = {k.id: k for k in settings.kiosks}
    records = registry.records
    rows_changed = set(wanted) != set(records)
    for kiosk_id in [k for k in records if k not in wanted]:
        del records[kiosk_id]
    for kiosk_id, entry in wanted.items():
        rec = records.get(kiosk_id)
        if rec is None:
            records[kiosk_id] = KioskRecord(entry=entry)
        elif rec.entry != entry:
            rows_changed = rows_changed or rec.entry.name != entry.name
            rec.entry = entry
    registry.settings = settings
    if rows_changed:
        registry.close_all()
    return rows_changed


@dataclass(eq=False, repr=False)  # a watcher, not a value
class CredentialsFile:
    """Watches the config file the gateway was started with; calls *apply* with the new settings."""

    source: Path
    settings: KioskSettings
    apply: Callable[[KioskSettings], None]
    _: KW_ONLY
    check_seconds: float = CHECK_SECONDS
    clock: Callable[[], float] = time.monotonic
    reloads: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._identity = self._stat()
        self._next = self.clock() + self.check_seconds

    def _stat(self) -> _Identity | None:
        try:
            st = os.stat(self.source)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def poll(self) -> bool:
        """Re-read the kiosk tables when the file changed (looked at once per ``check_seconds`` at most);
        True when new settings were applied."""
        now = self.clock()
        if now < self._next:
            return False
        self._next = now + self.check_seconds
        identity = self._stat()
        if identity is None or identity == self._identity:
            return False
        self._identity = identity
        try:
            new = self._read()
        except ConfigError as exc:
            log.error(
                "kiosk credentials not reloaded, %s has problems (the last good ones stay): %s",
                self.source,
                "; ".join(exc.errors),
            )
            return False
        if new is None:
            log.error(
                "kiosk credentials not reloaded: %s has no kiosk tables any more (restart to drop them)", self.source
            )
            return False
        updated = reloadable(self.settings, new)
        if updated == self.settings:
            return False
        self.settings = updated
        self.reloads += 1
        self.apply(updated)
        log.info(
            "kiosk credentials reloaded from %s: kiosks=%d staff_accounts=%d",
            self.source,
            len(updated.kiosks),
            len(updated.staff_accounts()),
        )
        return True

    def _read(self) -> KioskSettings | None:
        try:
            data = tomllib.loads(self.source.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise ConfigError([f"cannot read ({exc.strerror})"]) from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"not valid TOML: {exc}"]) from None
        return parse_kiosk_settings(data, ReadContext(base_dir=self.source.resolve().parent))
