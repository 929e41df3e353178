from cardreader import pcsc
from cardreader.identify import card_info, state_from_error, state_from_flags
from cardreader.model import ReaderState
from cardreader.testing.vcard import NPA_ATR, npa_card_access
from tr03110.security_infos import parse_security_infos


def test_flags():
    assert state_from_flags(pcsc.STATE_EMPTY | pcsc.STATE_CHANGED) is ReaderState.EMPTY
    assert state_from_flags(pcsc.STATE_UNAVAILABLE) is ReaderState.UNAVAILABLE
    assert state_from_flags(pcsc.STATE_UNKNOWN) is ReaderState.UNAVAILABLE
    assert state_from_flags(pcsc.STATE_PRESENT | pcsc.STATE_MUTE) is ReaderState.CARD_MUTE
    assert state_from_flags(pcsc.STATE_PRESENT | pcsc.STATE_INUSE | pcsc.STATE_EXCLUSIVE) is ReaderState.IN_USE
    assert state_from_flags(pcsc.STATE_PRESENT | pcsc.STATE_INUSE) is None  # shared use: read it
    assert state_from_flags(pcsc.STATE_PRESENT) is None


def test_errors_become_states():
    assert state_from_error(pcsc.E_SHARING_VIOLATION) is ReaderState.IN_USE
    assert state_from_error(pcsc.W_UNRESPONSIVE_CARD) is ReaderState.CARD_MUTE
    assert state_from_error(pcsc.W_REMOVED_CARD) is ReaderState.EMPTY
    assert state_from_error(pcsc.E_READER_UNAVAILABLE) is ReaderState.UNAVAILABLE
    assert state_from_error(pcsc.E_NOT_TRANSACTED) is ReaderState.CARD_UNREADABLE


def test_error_names_come_from_pcsc():
    assert pcsc.error_name(pcsc.E_NO_SERVICE) == "SCARD_E_NO_SERVICE"
    assert pcsc.error_name(pcsc.E_SHARING_VIOLATION) == "SCARD_E_SHARING_VIOLATION"
    assert pcsc.PcscError("SCardConnect", pcsc.W_REMOVED_CARD).name == "SCARD_W_REMOVED_CARD"


def test_id_card_needs_pace_in_card_access():
    state, info = card_info(NPA_ATR, parse_security_infos(npa_card_access()))
    assert state is ReaderState.ID_CARD and info.atr_known_eid
    assert info.pace[0].parameter_id == 13 and info.terminal_authentication


def test_known_atr_without_card_access_is_not_trusted():
    state, info = card_info(NPA_ATR, None)
    assert state is ReaderState.OTHER_CARD and info.atr_known_eid and info.pace == ()


def test_garbage_atr_does_not_crash():
    state, info = card_info(b"\x00\x01", None)
    assert state is ReaderState.OTHER_CARD and not info.atr_known_eid and info.atr == "0001"
