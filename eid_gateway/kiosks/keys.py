"""Typed aiohttp application keys of the kiosk sub-app (one place, imported by every handler)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from eid_gateway.kiosks.auth import StaffAuth
from eid_gateway.kiosks.board import Board
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.reload import CredentialsFile
from eid_gateway.kiosks.state_store import KioskStateStore

REGISTRY = web.AppKey("kiosk_registry", KioskRegistry)
STATE_STORE = web.AppKey("kiosk_state_store", KioskStateStore)
STAFF = web.AppKey("kiosk_staff_auth", StaffAuth)
METRICS = web.AppKey("kiosk_metrics", CollectorRegistry)
#: Re-reads kiosk credentials and staff accounts from the config file (absent: no file, tests).
RELOAD = web.AppKey("kiosk_reload", CredentialsFile)
#: Which kiosks are on the board: configured minus removed by an admin (board.py).
BOARD = web.AppKey("kiosk_board", Board)
