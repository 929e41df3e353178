"""Bürgerbüro kiosks on the gateway side: the kiosk API, last state per kiosk, the staff dashboard.

The kiosk app is imported on first use (PEP 562), so that the config, which reads
:mod:`eid_gateway.kiosks.settings`, does not import the aiohttp app with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eid_gateway.kiosks.settings import KioskEntry, KioskSettings, parse_kiosk_settings

if TYPE_CHECKING:
    from eid_gateway.kiosks.app import create_kiosk_app

__all__ = ["KioskEntry", "KioskSettings", "create_kiosk_app", "parse_kiosk_settings"]


def __getattr__(name: str) -> Any:
    if name == "create_kiosk_app":
        from eid_gateway.kiosks.app import create_kiosk_app

        return create_kiosk_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
