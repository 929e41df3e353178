"""A virtual German ID card that plugs into vsmartcard's vpcd reader over its socket protocol.

TEST FACILITY. It answers exactly what a kiosk reads without PACE: the ATR, SELECT of the master file
and of EF.CardAccess, and READ BINARY of EF.CardAccess (nPA-like SecurityInfos built with pyasn1).
Connecting the socket inserts the card into the vpcd slot, closing it removes the card.

vpcd wire format (both directions): 2-byte big-endian length, then the payload. From vpcd a 1-byte
payload is a control message (0 power off, 1 power on, 2 reset, 4 get ATR); anything longer is a
command APDU answered with a response APDU.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading

from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, namedtype, univ

from tr03110 import tlv
from tr03110.oids import ID_CA, ID_CI, ID_PACE, ID_TA, STANDARDIZED_DOMAIN_PARAMETERS

log = logging.getLogger(__name__)

VPCD_PORT = 35963  # slot 0 of the system's vpcd; /etc/reader.conf.d/vpcd has CHANNELID 0x8C7B


def vpcd_port() -> int:
    """Slot 0 of this run's vpcd: the port the test pcscd was given (EID_TEST_VPCD_PORT), else the
    system vpcd's."""
    return int(os.environ.get("EID_TEST_VPCD_PORT", VPCD_PORT))


NPA_ATR = bytes.fromhex("3B8A80018031F873F741E082900075")

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


def _seq(*items: univ.Asn1Item) -> bytes:
    """DER SEQUENCE of already-typed pyasn1 values (a SecurityInfo has no fixed component types)."""
    return tlv.encode(0x30, b"".join(bytes(der_encoder.encode(i)) for i in items))


def npa_card_access(parameter_id: int = 13) -> bytes:
    """DER SecurityInfos like a real nPA's EF.CardAccess (PACE ECDH-GM AES-128, CA, TA, CardInfo)."""

    class _AlgId(univ.Sequence):  # type: ignore[misc]  # pyasn1 ships no types
        componentType = namedtype.NamedTypes(
            namedtype.NamedType("algorithm", univ.ObjectIdentifier()),
            namedtype.NamedType("parameters", univ.Integer()),
        )

    alg = _AlgId()
    alg["algorithm"] = univ.ObjectIdentifier(STANDARDIZED_DOMAIN_PARAMETERS)
    alg["parameters"] = univ.Integer(parameter_id)
    entries = [
        # PACEInfo: id-PACE-ECDH-GM-AES-CBC-CMAC-128, version 2, parameterId
        _seq(univ.ObjectIdentifier(ID_PACE + ".2.2"), univ.Integer(2), univ.Integer(parameter_id)),
        # ChipAuthenticationInfo: id-CA-ECDH-AES-CBC-CMAC-128, version 2, keyId 41
        _seq(univ.ObjectIdentifier(ID_CA + ".2.2"), univ.Integer(2), univ.Integer(41)),
        # ChipAuthenticationDomainParameterInfo: id-CA-ECDH, standardized parameters, keyId 41
        _seq(univ.ObjectIdentifier(ID_CA + ".2"), alg, univ.Integer(41)),
        # TerminalAuthenticationInfo: id-TA, version 2
        _seq(univ.ObjectIdentifier(ID_TA), univ.Integer(2)),
        # CardInfoLocator (kept as an unknown entry by the parser)
        _seq(univ.ObjectIdentifier(ID_CI), char.IA5String("http://bsi.bund.de/cif/npa.xml")),
    ]
    return tlv.encode(0x31, b"".join(sorted(entries)))  # DER SET OF: sorted encodings


SW_OK = b"\x90\x00"


class CardFiles:
    """The card's application logic: select and read, ISO 7816-4 status words for everything else."""

    def __init__(self, card_access: bytes) -> None:
        self.files = {b"\x01\x1c": card_access}
        self.selected: bytes | None = None

    def reset(self) -> None:
        self.selected = None

    def apdu(self, cmd: bytes) -> bytes:
        if len(cmd) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = cmd[:4]
        if cla != 0x00:
            return b"\x6e\x00"
        if ins == 0xA4:
            return self._select(p1, p2, cmd[5 : 5 + cmd[4]] if len(cmd) > 4 else b"")
        if ins == 0xB0:
            le = cmd[4] if len(cmd) == 5 else (0 if len(cmd) == 4 else -1)
            if le < 0:
                return b"\x67\x00"
            return self._read(p1, p2, le or 256)
        return b"\x6d\x00"

    def _select(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 == 0x00 and data in (b"", b"\x3f\x00"):
            self.selected = None
            return SW_OK
        if p1 == 0x02 and data in self.files:
            self.selected = data
            return SW_OK
        return b"\x6a\x82"

    def _read(self, p1: int, p2: int, le: int) -> bytes:
        if p1 & 0x80:
            fid = bytes([0x01, p1 & 0x1F])
            if fid not in self.files:
                return b"\x6a\x82"
            self.selected = fid
            offset = p2
        else:
            offset = (p1 << 8) | p2
        if self.selected is None:
            return b"\x69\x86"
        content = self.files[self.selected]
        if offset > len(content):
            return b"\x6b\x00"
        chunk = content[offset : offset + le]
        return chunk + (SW_OK if len(chunk) == le else b"\x62\x82")


class VirtualIdCard:
    """Insert with insert(), remove with remove(); serves vpcd from a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        atr: bytes = NPA_ATR,
        card_access: bytes | None = None,
        behaviour: str = "ok",
    ) -> None:
        """*behaviour*: "ok"; "vanish_on_read" (the card leaves at the first READ BINARY, as when it
        is pulled mid-read); "garbage" (every APDU is answered with one byte, no status word)."""
        if behaviour not in ("ok", "vanish_on_read", "garbage"):
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.host, self.port, self.atr = host, vpcd_port() if port is None else port, atr
        self.card = CardFiles(card_access if card_access is not None else npa_card_access())
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.apdus: list[bytes] = []

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self, timeout: float = 5.0) -> None:
        if self._sock is not None:
            raise RuntimeError("card already inserted")
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), name="vcard", daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    def __enter__(self) -> VirtualIdCard:
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                msg = _recv_msg(sock)
                if msg is None:
                    return
                if len(msg) == 1:
                    if msg[0] == CTRL_ATR:
                        _send_msg(sock, self.atr)
                    elif msg[0] in (CTRL_OFF, CTRL_ON, CTRL_RESET):
                        self.card.reset()
                    continue
                self.apdus.append(msg)
                if self.behaviour == "vanish_on_read" and msg[1:2] == b"\xb0":
                    sock.close()
                    return
                _send_msg(sock, b"\x90" if self.behaviour == "garbage" else self.card.apdu(msg))
        except OSError:
            return


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _recv_msg(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 2)
    if head is None:
        return None
    (length,) = struct.unpack(">H", head)
    return _recv_exact(sock, length) if length else b""


def _send_msg(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)
