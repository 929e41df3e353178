"""From reader flags, ATR and EF.CardAccess to a reader state (pure functions).

Kept apart from the PC/SC loop so that each decision (which flag wins, when a card counts as an ID
card) is unit-tested on plain values.
"""

from __future__ import annotations

from cardreader import pcsc
from cardreader.atr import AtrError, looks_like_german_id, parse_atr
from cardreader.features import FEATURE_EXECUTE_PACE, PaceCapabilities
from cardreader.model import CardInfo, PaceOption, ReaderState
from tr03110.security_infos import SecurityInfos


def state_from_flags(flags: int) -> ReaderState | None:
    """Reader state that the flags alone decide; None when a card is present and must be read."""
    if flags & pcsc.STATE_UNKNOWN or flags & pcsc.STATE_UNAVAILABLE:
        return ReaderState.UNAVAILABLE
    if flags & pcsc.STATE_EMPTY or not flags & pcsc.STATE_PRESENT:
        return ReaderState.EMPTY
    if flags & pcsc.STATE_MUTE:
        return ReaderState.CARD_MUTE
    if flags & pcsc.STATE_EXCLUSIVE:
        return ReaderState.IN_USE
    return None


def state_from_error(code: int) -> ReaderState:
    """What a PC/SC error while reading a present card says about the reader."""
    if code == pcsc.E_SHARING_VIOLATION:
        return ReaderState.IN_USE
    if code == pcsc.W_UNRESPONSIVE_CARD:
        return ReaderState.CARD_MUTE
    if code in (pcsc.W_REMOVED_CARD, pcsc.E_NO_SMARTCARD):
        return ReaderState.EMPTY
    if code in (pcsc.E_READER_UNAVAILABLE, pcsc.E_UNKNOWN_READER):
        return ReaderState.UNAVAILABLE
    return ReaderState.CARD_UNREADABLE


def card_info(atr: bytes, infos: SecurityInfos | None) -> tuple[ReaderState, CardInfo]:
    """Classify a card from its ATR and (if it could be read) EF.CardAccess."""
    try:
        parse_atr(atr)
        known = looks_like_german_id(atr)
    except AtrError:
        known = False
    pace: tuple[PaceOption, ...] = ()
    ca: tuple[str, ...] = ()
    ta = False
    if infos is not None:
        pace = tuple(
            PaceOption(
                protocol=p.protocol,
                name=p.name,
                version=p.version,
                parameter_id=p.parameter_id,
                parameter_name=p.parameter_name,
            )
            for p in infos.pace
        )
        ca = tuple(c.name for c in infos.chip_authentication)
        ta = infos.has_terminal_authentication
    info = CardInfo(
        atr=atr.hex().upper(), atr_known_eid=known, pace=pace, chip_authentication=ca, terminal_authentication=ta
    )
    state = ReaderState.ID_CARD if infos is not None and infos.is_eid_capable else ReaderState.OTHER_CARD
    return state, info


def reader_pace_from(features: dict[int, int], caps: PaceCapabilities | None) -> tuple[str, ...] | None:
    """None when the reader has no FEATURE_EXECUTE_PACE; else the capability names (maybe empty)."""
    if FEATURE_EXECUTE_PACE not in features:
        return None
    return tuple(caps.names()) if caps is not None else ()
