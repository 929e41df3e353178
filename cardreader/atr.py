"""Answer-To-Reset parsing (ISO/IEC 7816-3), sans-I/O.

The ATR is only a *hint* that a card is a German ID card (the chip vendor and generation change it);
EF.CardAccess confirms. We still parse it properly so that an administrator sees protocols and
historical bytes, and so a malformed ATR from a broken reader is reported instead of trusted.
"""

from __future__ import annotations

from dataclasses import dataclass


class AtrError(ValueError):
    """The bytes are not a well-formed ATR."""


@dataclass(frozen=True)
class Atr:
    raw: bytes
    convention: str  # "direct" (TS=3B) or "inverse" (TS=3F)
    protocols: tuple[int, ...]  # T=0, T=1, ... announced by TD bytes (T=0 implied when none)
    historical: bytes
    tck_ok: bool | None  # None when no TCK is present (only T=0 announced)

    @property
    def hex(self) -> str:
        return self.raw.hex(" ").upper()


def parse_atr(raw: bytes) -> Atr:
    """Parse *raw* into its structure; raise AtrError with the reason when it is malformed."""
    if len(raw) < 2:
        raise AtrError("ATR shorter than 2 bytes")
    if len(raw) > 33:
        raise AtrError("ATR longer than 33 bytes")
    ts = raw[0]
    if ts == 0x3B:
        convention = "direct"
    elif ts == 0x3F:
        convention = "inverse"
    else:
        raise AtrError(f"invalid TS byte {ts:02X}")
    t0 = raw[1]
    n_hist = t0 & 0x0F
    pos = 2
    y = t0 >> 4
    protocols: list[int] = []
    while True:
        for bit in (0x1, 0x2, 0x4):  # TA, TB, TC
            if y & bit:
                pos += 1
        if not y & 0x8:  # no TD: end of interface bytes
            break
        if pos >= len(raw):
            raise AtrError("ATR truncated in interface bytes")
        td = raw[pos]
        pos += 1
        protocols.append(td & 0x0F)
        y = td >> 4
    if pos > len(raw):
        raise AtrError("ATR truncated in interface bytes")
    hist_end = pos + n_hist
    if hist_end > len(raw):
        raise AtrError("ATR truncated in historical bytes")
    historical = raw[pos:hist_end]
    needs_tck = any(p != 0 for p in protocols)
    rest = raw[hist_end:]
    tck_ok: bool | None
    if needs_tck:
        if len(rest) != 1:
            raise AtrError("ATR has no TCK byte" if not rest else "ATR has bytes after TCK")
        acc = 0
        for b in raw[1:]:
            acc ^= b
        tck_ok = acc == 0
        if not tck_ok:
            raise AtrError("ATR check byte (TCK) is wrong")
    else:
        if rest:
            raise AtrError("ATR has trailing bytes")
        tck_ok = None
    return Atr(
        raw=bytes(raw),
        convention=convention,
        protocols=tuple(dict.fromkeys(protocols or [0])),
        historical=historical,
        tck_ok=tck_ok,
    )


# ATRs seen on German ID cards (nPA, issued since 2010) - facts from pcsc-tools' smartcard_list.txt.
# The list is never complete: a card with an unknown ATR is still recognised through EF.CardAccess.
GERMAN_ID_ATRS: frozenset[bytes] = frozenset(
    bytes.fromhex(h)
    for h in (
        "3B878001 8031B873 8401E019",
        "3B878001 8031B873 8601E01B",
        "3B888001 00000000 00000000 09",
        "3B888001 E1E1F35E 13778300 43",
        "3B888001 E1F35E13 77830000 A2",
        "3B888001 E1F35E13 7783D500 77",
        "3B8A8001 8031B873 8401E082 900006",
        "3B8A8001 8031F873 F741E082 900075",
    )
)


def looks_like_german_id(atr: bytes) -> bool:
    """True when *atr* is one of the known nPA ATRs (a hint; EF.CardAccess decides)."""
    return bytes(atr) in GERMAN_ID_ATRS
