"""Secure Messaging with AES (TR-03110 part 3, F; ISO/IEC 7816-4): both ends of the channel.

After Chip Authentication the eID-Server talks to the chip through the eID-Client with every APDU
encrypted and MACed. One :class:`SecureMessaging` object is one channel end; the send sequence counter
(SSC) is incremented once per command and once per response, so commands and responses must be
processed strictly in order.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tr03110 import tlv
from tr03110.apdu import CommandApdu, ResponseApdu
from tr03110.crypto import aes_cmac

BLOCK = 16


class SecureMessagingError(ValueError):
    """A protected APDU whose structure or MAC is wrong: the channel is broken and must be dropped."""


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 method 2: 80 00 … up to the next block boundary (always adds one octet at least)."""
    n = BLOCK - (len(data) % BLOCK)
    return data + b"\x80" + b"\x00" * (n - 1)


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= BLOCK:
        raise SecureMessagingError("bad padding")
    return stripped[:-1]


def _le_bytes(le: int | None, extended: bool) -> bytes:
    if le is None:
        return b""
    if extended:
        return b"\x00\x00" if le >= 65536 else le.to_bytes(2, "big")
    return b"\x00" if le >= 256 else bytes([le])


@dataclass
class SecureMessaging:
    k_enc: bytes
    k_mac: bytes
    ssc: int = 0

    # --- primitives ----------------------------------------------------------------------------------

    def _ssc_block(self) -> bytes:
        return self.ssc.to_bytes(BLOCK, "big")

    def _iv(self) -> bytes:
        enc = Cipher(algorithms.AES(self.k_enc), modes.ECB()).encryptor()
        return enc.update(self._ssc_block()) + enc.finalize()

    def _encrypt(self, data: bytes) -> bytes:
        enc = Cipher(algorithms.AES(self.k_enc), modes.CBC(self._iv())).encryptor()
        return enc.update(pad(data)) + enc.finalize()

    def _decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % BLOCK:
            raise SecureMessagingError("cryptogram is not a whole number of blocks")
        dec = Cipher(algorithms.AES(self.k_enc), modes.CBC(self._iv())).decryptor()
        return unpad(dec.update(data) + dec.finalize())

    def _mac(self, data: bytes) -> bytes:
        return aes_cmac(self.k_mac, self._ssc_block() + pad(data))

    @staticmethod
    def _protected_header(apdu: CommandApdu) -> bytes:
        return bytes([apdu.cla | 0x0C, apdu.ins, apdu.p1, apdu.p2])

    # --- terminal side (the eID-Server) ----------------------------------------------------------------

    def wrap_command(self, apdu: CommandApdu) -> CommandApdu:
        """Protect a plain command (DO87 cryptogram, DO97 Le, DO8E MAC)."""
        self.ssc += 1
        do87 = tlv.encode(0x87, b"\x01" + self._encrypt(apdu.data)) if apdu.data else b""
        do97 = tlv.encode(0x97, _le_bytes(apdu.le, apdu.extended)) if apdu.le is not None else b""
        header = self._protected_header(apdu)
        # MAC input: SSC ‖ pad(header) ‖ pad(DO87 ‖ DO97) — the data objects' part only when present.
        mac_input = pad(header) + do87 + do97 if (do87 or do97) else header
        mac = aes_cmac(self.k_mac, self._ssc_block() + pad(mac_input))
        body = do87 + do97 + tlv.encode(0x8E, mac)
        extended = len(body) > 255 or apdu.extended
        return CommandApdu(header[0], apdu.ins, apdu.p1, apdu.p2, body, 65536 if extended else 256)

    def unwrap_response(self, response: ResponseApdu) -> ResponseApdu:
        """Check the MAC of a protected response and decrypt it; raises :class:`SecureMessagingError`."""
        self.ssc += 1
        try:
            items = tlv.parse_all(response.data)
        except tlv.TlvError as exc:
            raise SecureMessagingError(f"protected response is not TLV: {exc}") from None
        do87 = next((i for i in items if i.tag == 0x87), None)
        do99 = next((i for i in items if i.tag == 0x99), None)
        do8e = next((i for i in items if i.tag == 0x8E), None)
        if do99 is None or do8e is None:
            if not response.data:
                raise SecureMessagingError(f"unprotected status {response.sw:04X}: the card dropped the channel")
            raise SecureMessagingError("protected response lacks DO99 or DO8E")
        covered = (do87.encode() if do87 else b"") + do99.encode()
        if not hmac.compare_digest(self._mac(covered), do8e.value):
            raise SecureMessagingError("response MAC does not verify")
        if int.from_bytes(do99.value, "big") != response.sw:
            raise SecureMessagingError("protected and plain status words differ")
        data = b""
        if do87 is not None:
            if not do87.value or do87.value[0] != 0x01:
                raise SecureMessagingError("DO87 without padding-indicator 01")
            data = self._decrypt(do87.value[1:])
        return ResponseApdu(data, response.sw)

    # --- card side (the emulator) ---------------------------------------------------------------------

    def unwrap_command(self, apdu: CommandApdu) -> CommandApdu:
        self.ssc += 1
        items = tlv.parse_all(apdu.data)
        do87 = next((i for i in items if i.tag == 0x87), None)
        do97 = next((i for i in items if i.tag == 0x97), None)
        do8e = next((i for i in items if i.tag == 0x8E), None)
        if do8e is None:
            raise SecureMessagingError("command without MAC")
        header = apdu.header()
        covered = (do87.encode() if do87 else b"") + (do97.encode() if do97 else b"")
        mac_input = pad(header) + covered if covered else header
        if not hmac.compare_digest(aes_cmac(self.k_mac, self._ssc_block() + pad(mac_input)), do8e.value):
            raise SecureMessagingError("command MAC does not verify")
        data = self._decrypt(do87.value[1:]) if do87 is not None else b""
        le: int | None = None
        if do97 is not None:
            raw = int.from_bytes(do97.value, "big")
            le = raw or (65536 if len(do97.value) == 2 else 256)
        return CommandApdu(apdu.cla & ~0x0C & 0xFF, apdu.ins, apdu.p1, apdu.p2, data, le)

    def wrap_response(self, response: ResponseApdu) -> ResponseApdu:
        self.ssc += 1
        do87 = tlv.encode(0x87, b"\x01" + self._encrypt(response.data)) if response.data else b""
        do99 = tlv.encode(0x99, response.sw.to_bytes(2, "big"))
        mac = self._mac(do87 + do99)
        return ResponseApdu(do87 + do99 + tlv.encode(0x8E, mac), response.sw)
