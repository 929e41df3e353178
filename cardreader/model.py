"""The kiosk status model and its JSON wire form, shared by the agent and the gateway (sans-I/O).

One snapshot says everything staff need about one kiosk: is PC/SC up, which readers exist, and per
reader whether an ID card is in it and what PACE it offers. The agent always sends whole snapshots,
so a lost or reordered message can never leave the gateway with a half-updated picture.
`snapshot_from_json` is what the gateway runs on untrusted input: bounded sizes, exact types.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

MAX_READERS = 16
MAX_NAME = 200
MAX_PACE = 16
MAX_DETAIL = 200
_HEX = re.compile(r"^(?:[0-9A-F]{2})*$")


class ModelError(ValueError):
    """A kiosk status document does not follow the wire format."""


class ServiceState(enum.StrEnum):
    OK = "ok"
    PCSC_UNAVAILABLE = "pcsc_unavailable"  # pcscd not running / context lost
    NO_READERS = "no_readers"


class ReaderState(enum.StrEnum):
    EMPTY = "empty"
    ID_CARD = "id_card"  # German ID card, confirmed through EF.CardAccess
    OTHER_CARD = "other_card"  # a card, but no eID SecurityInfos
    CARD_UNREADABLE = "card_unreadable"  # present, reading failed (removed mid-read, odd answers)
    CARD_MUTE = "card_mute"
    IN_USE = "in_use"  # held exclusively by another application (AusweisApp)
    UNAVAILABLE = "unavailable"  # reader listed but not usable


@dataclass(frozen=True)
class PaceOption:
    protocol: str
    name: str
    version: int
    parameter_id: int | None
    parameter_name: str | None


@dataclass(frozen=True)
class CardInfo:
    atr: str  # upper-case hex, no spaces
    atr_known_eid: bool
    pace: tuple[PaceOption, ...] = ()
    chip_authentication: tuple[str, ...] = ()
    terminal_authentication: bool = False


@dataclass(frozen=True)
class ReaderStatus:
    name: str
    state: ReaderState
    card: CardInfo | None = None
    reader_pace: tuple[str, ...] | None = None  # None: no PACE in the reader; else its capabilities
    detail: str | None = None  # PC/SC error name behind a bad state, e.g. "SCARD_W_UNRESPONSIVE_CARD"


@dataclass(frozen=True)
class KioskSnapshot:
    service: ServiceState
    readers: tuple[ReaderStatus, ...] = field(default_factory=tuple)
    detail: str | None = None

    @property
    def summary(self) -> str:
        """One word for the dashboard and metrics: the most useful fact first."""
        if self.service is not ServiceState.OK:
            return self.service.value
        states = {r.state for r in self.readers}
        for s in (
            ReaderState.ID_CARD,
            ReaderState.IN_USE,
            ReaderState.CARD_MUTE,
            ReaderState.CARD_UNREADABLE,
            ReaderState.OTHER_CARD,
            ReaderState.EMPTY,
        ):
            if s in states:
                return s.value
        return ReaderState.UNAVAILABLE.value


def snapshot_to_json(s: KioskSnapshot) -> dict[str, Any]:
    return {
        "service": s.service.value,
        "detail": s.detail,
        "readers": [
            {
                "name": r.name,
                "state": r.state.value,
                "detail": r.detail,
                "reader_pace": list(r.reader_pace) if r.reader_pace is not None else None,
                "card": None
                if r.card is None
                else {
                    "atr": r.card.atr,
                    "atr_known_eid": r.card.atr_known_eid,
                    "pace": [
                        {
                            "protocol": p.protocol,
                            "name": p.name,
                            "version": p.version,
                            "parameter_id": p.parameter_id,
                            "parameter_name": p.parameter_name,
                        }
                        for p in r.card.pace
                    ],
                    "chip_authentication": list(r.card.chip_authentication),
                    "terminal_authentication": r.card.terminal_authentication,
                },
            }
            for r in s.readers
        ],
    }


def _obj(v: object, what: str) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise ModelError(f"{what} must be an object")
    return v


def _str(v: object, what: str, limit: int = MAX_NAME, optional: bool = False) -> str | None:
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise ModelError(f"{what} must be a string")
    if len(v) > limit:
        raise ModelError(f"{what} longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        raise ModelError(f"{what} contains control characters")
    return v


def _req_str(v: object, what: str, limit: int = MAX_NAME) -> str:
    out = _str(v, what, limit)
    assert out is not None
    return out


def _int(v: object, what: str, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**31:
        raise ModelError(f"{what} must be a non-negative integer")
    return v


def _bool(v: object, what: str) -> bool:
    if not isinstance(v, bool):
        raise ModelError(f"{what} must be a boolean")
    return v


def _list(v: object, what: str, limit: int) -> list[Any]:
    if not isinstance(v, list):
        raise ModelError(f"{what} must be a list")
    if len(v) > limit:
        raise ModelError(f"{what} has more than {limit} entries")
    return v


E = TypeVar("E", bound=enum.Enum)


def _enum(cls: type[E], v: object, what: str) -> E:
    try:
        return cls(v)
    except ValueError:
        raise ModelError(f"{what} has an unknown value") from None


def _card(raw: object) -> CardInfo:
    d = _obj(raw, "card")
    atr = _req_str(d.get("atr"), "card.atr", 66)
    if not _HEX.match(atr):
        raise ModelError("card.atr must be upper-case hex")
    pace = []
    for i, p in enumerate(_list(d.get("pace", []), "card.pace", MAX_PACE)):
        pd = _obj(p, f"card.pace[{i}]")
        version = _int(pd.get("version"), "pace.version")
        assert version is not None
        pace.append(
            PaceOption(
                protocol=_req_str(pd.get("protocol"), "pace.protocol"),
                name=_req_str(pd.get("name"), "pace.name"),
                version=version,
                parameter_id=_int(pd.get("parameter_id"), "pace.parameter_id", optional=True),
                parameter_name=_str(pd.get("parameter_name"), "pace.parameter_name", optional=True),
            )
        )
    ca = tuple(
        _req_str(x, "card.chip_authentication[]")
        for x in _list(d.get("chip_authentication", []), "card.chip_authentication", MAX_PACE)
    )
    return CardInfo(
        atr=atr,
        atr_known_eid=_bool(d.get("atr_known_eid"), "card.atr_known_eid"),
        pace=tuple(pace),
        chip_authentication=ca,
        terminal_authentication=_bool(d.get("terminal_authentication", False), "card.terminal_authentication"),
    )


def snapshot_from_json(raw: object) -> KioskSnapshot:
    """Validate and convert an untrusted status document; raise ModelError naming the bad field."""
    d = _obj(raw, "status")
    readers = []
    for i, r in enumerate(_list(d.get("readers", []), "readers", MAX_READERS)):
        rd = _obj(r, f"readers[{i}]")
        rp = rd.get("reader_pace")
        reader_pace = (
            None if rp is None else tuple(_req_str(x, "reader_pace[]", 40) for x in _list(rp, "reader_pace", 8))
        )
        card_raw = rd.get("card")
        readers.append(
            ReaderStatus(
                name=_req_str(rd.get("name"), f"readers[{i}].name"),
                state=_enum(ReaderState, rd.get("state"), f"readers[{i}].state"),
                card=None if card_raw is None else _card(card_raw),
                reader_pace=reader_pace,
                detail=_str(rd.get("detail"), f"readers[{i}].detail", MAX_DETAIL, optional=True),
            )
        )
    return KioskSnapshot(
        service=_enum(ServiceState, d.get("service"), "service"),
        readers=tuple(readers),
        detail=_str(d.get("detail"), "detail", MAX_DETAIL, optional=True),
    )
