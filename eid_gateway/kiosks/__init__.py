"""Bürgerbüro kiosks on the gateway side: the kiosk API, last state per kiosk, the staff dashboard."""

from eid_gateway.kiosks.app import create_kiosk_app
from eid_gateway.kiosks.settings import KioskEntry, KioskSettings, parse_kiosk_settings

__all__ = ["KioskEntry", "KioskSettings", "create_kiosk_app", "parse_kiosk_settings"]
