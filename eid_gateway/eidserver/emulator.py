"""TEST FACILITY: a card emulator and an eID-Client emulator, so EAC runs without AusweisApp.

The card answers APDUs like AusweisApp 1.26's simulator card (same static Chip Authentication key, same
Restricted Identification keys, fixed ID_PICC and CA nonce; PACE is taken as done, as with a comfort
reader), but it checks Terminal Authentication for real: the terminal certificate's key must verify
the signature over ID_PICC ‖ challenge ‖ Comp(PK_PCD) ‖ auxiliary data. The client plays AusweisApp's
PAOS part. Together they let the unit tests and ``bench/paos.py`` drive :mod:`.server_core` end to end.
:func:`simulator_files` writes the same card as AusweisApp ``SET_CARD`` simulator files.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ
from pyasn1_modules import rfc5280, rfc5652

from eid_gateway.eid import results
from eid_gateway.eid.messages import PersonalData
from eid_gateway.eidserver import datagroups, paos
from eid_gateway.eidserver.sm import SecureMessaging, SecureMessagingError
from saml.keys import certificate_builder
from saml.xml import parse_xml
from tr03110 import crypto, oids, tlv
from tr03110.apdu import CommandApdu, ResponseApdu
from tr03110.cvc import AccessRight, Chat, parse_cvc

#: AusweisApp 1.26 simulator card: static CA private key (keyId 41), RI keys 1 and 2, ID_PICC, nonce.
CA_PRIVATE: Final = bytes.fromhex("A07EB62E891DAA84643E0AFCC1AF006891B669B8F51E379477DBEAB8C987A610")
CA_KEY_ID: Final = 41
RI_PRIVATE: Final = {
    1: bytes.fromhex("0353859C2EC67780BA39015DE8C682AF2326D43DE9CE1E07737087BD1E17CB22"),
    2: bytes.fromhex("9AD0AD7F4DFAAA06988339FC31D3A111F4C7964AC7F377373A2454327C43E2FF"),
}
ID_PICC: Final = bytes.fromhex("0102030405060708900A0B0C0D0E0F1011121314")
CA_NONCE: Final = bytes.fromhex("0001020304050607")
SW_OK: Final = 0x9000


# --- the card's files ----------------------------------------------------------------------------------


def _seq(*items: bytes) -> bytes:
    return tlv.encode(0x30, b"".join(items))


def _int(n: int) -> bytes:
    return bytes(der_encoder.encode(univ.Integer(n)))


def _alg_bp256() -> bytes:
    return _seq(oids.oid_der(oids.STANDARDIZED_DOMAIN_PARAMETERS), _int(13))


def security_infos(*, with_public_key: bool) -> bytes:
    """SecurityInfos of EF.CardAccess (and, with the CA public key, of EF.CardSecurity)."""
    ca_point = crypto.point(crypto.private_key_from_scalar(CA_PRIVATE).public_key())
    infos = [
        _seq(oids.oid_der(oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128), _int(2), _int(13)),
        _seq(oids.oid_der(oids.ID_TA), _int(2)),
        _seq(oids.oid_der(oids.ID_CA_ECDH_AES_CBC_CMAC_128), _int(2), _int(CA_KEY_ID)),
        _seq(oids.oid_der(oids.ID_CA_ECDH), _alg_bp256(), _int(CA_KEY_ID)),
    ]
    if with_public_key:
        spki = _seq(_alg_bp256(), tlv.encode(0x03, b"\x00" + ca_point))
        infos.append(_seq(oids.oid_der(oids.ID_PK_ECDH), spki, _int(CA_KEY_ID)))
    # DER SET OF: elements sorted by their encoding
    return tlv.encode(0x31, b"".join(sorted(infos)))


@lru_cache(maxsize=1)
def _document_signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "eid-gateway TEST document signer"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = certificate_builder(
        name,
        key.public_key(),
        not_before=now - datetime.timedelta(days=1),
        not_after=now + datetime.timedelta(days=3650),
    ).sign(key, hashes.SHA256())
    return key, cert


def card_security(signer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None) -> bytes:
    """EF.CardSecurity: CMS SignedData over the SecurityInfos, signed by a TEST document signer."""
    key, cert = signer or _document_signer()
    content = security_infos(with_public_key=True)
    sha256 = rfc5280.AlgorithmIdentifier()
    sha256["algorithm"] = univ.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
    si = rfc5652.SignerInfo()
    si["version"] = 1
    issuer, _ = der_decoder.decode(cert.issuer.public_bytes(), asn1Spec=rfc5280.Name())
    si["sid"]["issuerAndSerialNumber"]["issuer"] = issuer
    si["sid"]["issuerAndSerialNumber"]["serialNumber"] = cert.serial_number
    si["digestAlgorithm"] = sha256
    signed = si["signedAttrs"]
    for i, (oid, value) in enumerate(
        (
            ("1.2.840.113549.1.9.3", univ.ObjectIdentifier(oids.ID_SECURITY_OBJECT)),
            ("1.2.840.113549.1.9.4", univ.OctetString(hashlib.sha256(content).digest())),
        )
    ):
        attr = rfc5652.Attribute()
        attr["attrType"] = univ.ObjectIdentifier(oid)
        attr["attrValues"][0] = der_encoder.encode(value)
        signed[i] = attr
    # The signature covers the attributes as a DER SET OF (universal tag, not the [0] of SignerInfo).
    to_sign = bytes(der_encoder.encode(signed, asn1Spec=rfc5652.SignedAttributes()))
    to_sign = b"\x31" + to_sign[1:]
    si["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.10045.4.3.2")
    si["signature"] = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    sd = rfc5652.SignedData()
    sd["version"] = 3
    sd["digestAlgorithms"][0] = sha256
    sd["encapContentInfo"]["eContentType"] = univ.ObjectIdentifier(oids.ID_SECURITY_OBJECT)
    sd["encapContentInfo"]["eContent"] = content
    der_cert, _ = der_decoder.decode(cert.public_bytes(serialization.Encoding.DER), asn1Spec=rfc5280.Certificate())
    sd["certificates"][0]["certificate"] = der_cert
    sd["signerInfos"][0] = si
    ci = rfc5652.ContentInfo()
    ci["contentType"] = rfc5652.id_signedData
    ci["content"] = der_encoder.encode(sd)
    return bytes(der_encoder.encode(ci))


EF_DIR: Final = tlv.encode(0x61, tlv.encode(0x4F, bytes.fromhex("E80704007F00070302")))


def card_files(data: PersonalData) -> list[datagroups.CardFile]:
    """All files of a card holding ``data``: EF.DIR, EF.CardAccess, EF.CardSecurity and the data groups."""
    files = [
        datagroups.CardFile(bytes.fromhex("2F00"), 0x1E, EF_DIR),
        datagroups.CardFile(bytes.fromhex("011C"), 0x1C, security_infos(with_public_key=False)),
        datagroups.CardFile(bytes.fromhex("011D"), 0x1D, card_security()),
    ]
    for n, content in sorted(datagroups.encode_all(data).items()):
        files.append(datagroups.CardFile(bytes([0x01, n]), n, content))
    return files


def simulator_files(data: PersonalData) -> list[dict[str, str]]:
    """AusweisApp's ``SET_CARD`` ``simulator.files`` for a card holding ``data``."""
    return [f.to_json() for f in card_files(data)]


# --- the card ------------------------------------------------------------------------------------------


class CardError(Exception):
    """The emulated card refuses (the status word says why)."""

    def __init__(self, sw: int):
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass
class EmulatedCard:
    """One card. ``transmit`` takes and returns raw APDUs; PACE is assumed done (comfort reader)."""

    files: list[datagroups.CardFile]
    trust_point: ec.EllipticCurvePublicKey | None = None  # CVCA key; None: chain not checked
    _selected: datagroups.CardFile | None = None
    _challenge: bytes = b""
    _terminal_key: ec.EllipticCurvePublicKey | None = None
    _terminal_chat: Chat | None = None
    _ta_template: dict[int, bytes] = field(default_factory=dict)
    _ta_done: bool = False
    _aux: bytes = b""
    _ri_key: int = 0
    _sm: SecureMessaging | None = None
    _today: datetime.date = field(default_factory=datetime.date.today)

    # Certificates reach the card via PSO:Verify Certificate in reality; the client gives them directly.
    def verify_certificates(self, dv: bytes, terminal: bytes) -> None:
        dv_cert, t_cert = parse_cvc(dv), parse_cvc(terminal)
        if self.trust_point is not None:
            dv_cert.verify_signature(self.trust_point, crypto.CURVE)
        key = dv_cert.public_key.to_cryptography(crypto.CURVE)
        t_cert.verify_signature(key, crypto.CURVE)
        tk = t_cert.public_key.to_cryptography(crypto.CURVE)
        assert isinstance(tk, ec.EllipticCurvePublicKey)
        self._terminal_key = tk
        self._terminal_chat = t_cert.chat

    def transmit(self, raw: bytes) -> bytes:
        apdu = CommandApdu.decode(raw)
        sm = self._sm
        if sm is not None:
            if not apdu.cla & 0x0C:
                self._sm = sm = None
            else:
                try:
                    apdu = sm.unwrap_command(apdu)
                except SecureMessagingError:
                    self._sm = None
                    return ResponseApdu(b"", 0x6988).encode()
        try:
            response = self._execute(apdu)
        except CardError as exc:
            response = ResponseApdu(b"", exc.sw)
        if sm is not None:
            response = sm.wrap_response(response)
        if self._pending_sm is not None:
            self._sm, self._pending_sm = self._pending_sm, None
        return response.encode()

    _pending_sm: SecureMessaging | None = None

    def _file(self, short_id: int | None = None, file_id: bytes | None = None) -> datagroups.CardFile:
        for f in self.files:
            if (short_id is not None and f.short_id == short_id) or (file_id is not None and f.file_id == file_id):
                return f
        raise CardError(0x6A82)

    def _execute(self, apdu: CommandApdu) -> ResponseApdu:
        ins = apdu.ins
        if ins == 0xA4:  # SELECT
            if apdu.p1 == 0x04:
                return ResponseApdu(b"", SW_OK)
            self._selected = self._file(file_id=apdu.data)
            return ResponseApdu(b"", SW_OK)
        if ins == 0xB0:  # READ BINARY
            if apdu.p1 & 0x80:
                self._selected = self._file(short_id=apdu.p1 & 0x1F)
                offset = apdu.p2
            else:
                offset = (apdu.p1 << 8) | apdu.p2
            if self._selected is None:
                raise CardError(0x6986)
            self._check_read(self._selected)
            content = self._selected.content
            chunk = content[offset : offset + (apdu.le or 256)]
            return ResponseApdu(chunk, SW_OK if chunk or offset == 0 else 0x6282)
        if ins == 0x84:  # GET CHALLENGE
            self._challenge = bytes.fromhex("0102030405060708")
            return ResponseApdu(self._challenge, SW_OK)
        if ins == 0x22:  # MSE:Set AT
            items = tlv.parse_all(apdu.data)
            if apdu.p1 == 0x81:  # TA
                self._ta_template = {i.tag: i.value for i in items if i.tag != 0x67}
                self._aux = next((i.encode() for i in items if i.tag == 0x67), b"")
            elif apdu.p1 == 0x41:
                ref = tlv.find(items, 0x80)
                if ref == oids.oid_value(oids.ID_RI_ECDH_SHA_256):
                    key = tlv.find(items, 0x84)
                    self._ri_key = key[-1] if key else 0
            return ResponseApdu(b"", SW_OK)
        if ins == 0x82:  # EXTERNAL AUTHENTICATE (TA)
            eph = self._ta_template.get(0x91, b"")
            if self._terminal_key is None or not crypto.ta_verify(
                self._terminal_key, ID_PICC + self._challenge + eph + self._aux, apdu.data
            ):
                raise CardError(0x6300)
            self._ta_done = True
            return ResponseApdu(b"", SW_OK)
        if ins == 0x86:  # GENERAL AUTHENTICATE (CA or RI)
            outer = tlv.parse_single(apdu.data, 0x7C)
            items = tlv.parse_all(outer.value)
            ca_point = tlv.find(items, 0x80)
            if ca_point is not None:
                if not self._ta_done:
                    raise CardError(0x6982)
                secret = crypto.ecdh_x(crypto.private_key_from_scalar(CA_PRIVATE), ca_point)
                k_enc, k_mac = crypto.kdf_enc(secret, CA_NONCE), crypto.kdf_mac(secret, CA_NONCE)
                token = crypto.authentication_token(k_mac, oids.ID_CA_ECDH_AES_CBC_CMAC_128, ca_point)
                self._pending_sm = SecureMessaging(k_enc, k_mac)
                return ResponseApdu(tlv.encode(0x7C, tlv.encode(0x81, CA_NONCE) + tlv.encode(0x82, token)), SW_OK)
            sector = tlv.find(items, 0xA0)
            if sector is not None:
                self._require(0x04)  # RI right
                point = tlv.find(tlv.parse_all(sector), 0x86)
                key = RI_PRIVATE.get(self._ri_key)
                if point is None or key is None:
                    raise CardError(0x6A80)
                rid = crypto.restricted_id(crypto.private_key_from_scalar(key), point)
                return ResponseApdu(tlv.encode(0x7C, tlv.encode(0x81, rid)), SW_OK)
            raise CardError(0x6A80)
        if ins == 0x20 and apdu.cla & 0x80:  # VERIFY (auxiliary data)
            return ResponseApdu(b"", self._verify(apdu.data))
        raise CardError(0x6D00)

    def _require(self, bit_byte_mask: int) -> None:
        if self._sm is None or self._terminal_chat is None:
            raise CardError(0x6982)

    def _check_read(self, f: datagroups.CardFile) -> None:
        if f.file_id[:1] == b"\x01" and 1 <= f.short_id <= 21:
            if self._sm is None or self._terminal_chat is None:
                raise CardError(0x6982)
            if not self._terminal_chat.grants(AccessRight.read(f.short_id)):
                raise CardError(0x6982)

    def _verify(self, data: bytes) -> int:
        oid = tlv.parse_single(data, 0x06).value
        templates = (
            {
                tlv.find(tlv.parse_all(t.value), 0x06): tlv.find(tlv.parse_all(t.value), 0x53)
                for t in tlv.parse_all(tlv.parse_single(self._aux, 0x67).value)
            }
            if self._aux
            else {}
        )
        wanted = templates.get(oid)
        if wanted is None:
            return 0x6300
        if oid == oids.oid_value(oids.ID_DATE_OF_BIRTH):
            born = self._file(short_id=8).content[-8:]
            return SW_OK if born <= wanted else 0x6300
        if oid == oids.oid_value(oids.ID_DATE_OF_EXPIRY):
            expiry = self._file(short_id=3).content[-8:]
            return SW_OK if expiry >= wanted else 0x6300
        if oid == oids.oid_value(oids.ID_COMMUNITY_ID):
            community = tlv.parse_single(self._file(short_id=18).content).value
            inner = tlv.parse_single(community, 0x04).value
            return SW_OK if inner.hex().startswith(wanted.hex()) else 0x6300
        return 0x6300


# --- the eID-Client ------------------------------------------------------------------------------------


def _q(local: str) -> str:
    return f"{{{paos.ISO_NS}}}{local}"


def _envelope(body: str, relates_to: str | None, message_id: str) -> bytes:
    rel = f"<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>" if relates_to else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{paos.SOAP_NS}" '
        f'xmlns:wsa="{paos.WSA_NS}" xmlns:xsi="{paos.XSI_NS}" xmlns:iso="{paos.ISO_NS}" '
        f'xmlns:dss="{paos.DSS_NS}"><soap:Header>{rel}<wsa:MessageID>{message_id}</wsa:MessageID>'
        f"</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def _result(major: str, minor: str | None) -> str:
    m = f"<dss:ResultMinor>{minor}</dss:ResultMinor>" if minor else ""
    return f"<dss:Result><dss:ResultMajor>{major}</dss:ResultMajor>{m}</dss:Result>"


@dataclass
class ClientEmulator:
    """AusweisApp's part of PAOS, over :class:`EmulatedCard`. Feed server messages to :meth:`answer`."""

    card: EmulatedCard
    session_identifier: str
    cancel: bool = False
    deselect: frozenset[int] = frozenset()  # CHAT bit numbers the citizen switches off
    _counter: int = 0
    _last_id: str | None = None
    _certs: tuple[bytes, ...] = ()
    _aux: bytes = b""

    def _mid(self) -> str:
        self._counter += 1
        return f"urn:uuid:client-{self._counter}"

    def start(self) -> bytes:
        body = (
            f"<iso:StartPAOS><iso:SessionIdentifier>{self.session_identifier}</iso:SessionIdentifier>"
            '<iso:ConnectionHandle xsi:type="iso:ConnectionHandleType"><iso:CardApplication>'
            f"{paos.EID_APPLICATION}</iso:CardApplication><iso:SlotHandle>00</iso:SlotHandle>"
            "</iso:ConnectionHandle><iso:UserAgent><iso:Name>eid-gateway client emulator</iso:Name>"
            "<iso:VersionMajor>1</iso:VersionMajor><iso:VersionMinor>0</iso:VersionMinor>"
            "<iso:VersionSubminor>0</iso:VersionSubminor></iso:UserAgent></iso:StartPAOS>"
        )
        return _envelope(body, None, self._mid())

    def answer(self, server_message: bytes) -> bytes | None:
        """The client's next POST body, or ``None`` when the server sent StartPAOSResponse."""
        root = parse_xml(server_message)
        header = root.find(f"{{{paos.SOAP_NS}}}Header")
        mid = header.findtext(f"{{{paos.WSA_NS}}}MessageID") if header is not None else None
        body = root.find(f"{{{paos.SOAP_NS}}}Body")
        assert body is not None
        msg = body[0]
        local = etree.QName(msg).localname
        if local == "StartPAOSResponse":
            return None
        if local == "DIDAuthenticate":
            apd = msg.find(_q("AuthenticationProtocolData"))
            assert apd is not None
            kind = apd.get(f"{{{paos.XSI_NS}}}type", "")
            return self._eac1(apd, mid) if kind.endswith("EAC1InputType") else self._eac2(apd, mid)
        if local == "Transmit":
            outs = [
                self.card.transmit(bytes.fromhex(i.findtext(_q("InputAPDU")) or ""))
                for i in msg.findall(_q("InputAPDUInfo"))
            ]
            out = "".join(f"<iso:OutputAPDU>{o.hex().upper()}</iso:OutputAPDU>" for o in outs)
            return _envelope(
                f"<iso:TransmitResponse>{_result(results.MAJOR_OK, None)}{out}</iso:TransmitResponse>", mid, self._mid()
            )
        raise AssertionError(f"unexpected server message {local}")

    def _did_failed(self, minor: str, mid: str | None) -> bytes:
        """The DIDAuthenticateResponse of a failed (or cancelled) EAC step, ResultMinor ``minor``."""
        body = f"<iso:DIDAuthenticateResponse>{_result(results.MAJOR_ERROR, minor)}</iso:DIDAuthenticateResponse>"
        return _envelope(body, mid, self._mid())

    def _eac1(self, apd: etree._Element, mid: str | None) -> bytes:
        if self.cancel:
            return self._did_failed(results.CANCELLATION_BY_USER, mid)
        self._certs = tuple(bytes.fromhex(c.text or "") for c in apd.findall(_q("Certificate")))
        required = Chat.decode(bytes.fromhex(apd.findtext(_q("RequiredCHAT")) or ""))
        optional_hex = apd.findtext(_q("OptionalCHAT"))
        optional = Chat.decode(bytes.fromhex(optional_hex)) if optional_hex else None
        self._aux = bytes.fromhex(apd.findtext(_q("AuthenticatedAuxiliaryData")) or "")
        mask = required.mask | ((optional.mask if optional else 0) & ~sum(1 << b for b in self.deselect))
        chat = Chat(required.terminal_type, mask).encode()
        self.card.verify_certificates(self._certs[0], self._certs[1])
        challenge = CardChallenge.of(self.card)
        body = (
            "<iso:DIDAuthenticateResponse>"
            + _result(results.MAJOR_OK, None)
            + '<iso:AuthenticationProtocolData xsi:type="iso:EAC1OutputType" Protocol="'
            + paos.EAC_PROTOCOL
            + '">'
            + f"<iso:CertificateHolderAuthorizationTemplate>{chat.hex().upper()}"
            "</iso:CertificateHolderAuthorizationTemplate>"
            "<iso:CertificationAuthorityReference>DETESTeID00005</iso:CertificationAuthorityReference>"
            f"<iso:EFCardAccess>{security_infos(with_public_key=False).hex().upper()}</iso:EFCardAccess>"
            f"<iso:IDPICC>{ID_PICC.hex().upper()}</iso:IDPICC>"
            f"<iso:Challenge>{challenge.hex().upper()}</iso:Challenge>"
            "</iso:AuthenticationProtocolData></iso:DIDAuthenticateResponse>"
        )
        return _envelope(body, mid, self._mid())

    def _eac2(self, apd: etree._Element, mid: str | None) -> bytes:
        eph = bytes.fromhex(apd.findtext(_q("EphemeralPublicKey")) or "")
        signature = bytes.fromhex(apd.findtext(_q("Signature")) or "")
        terminal = parse_cvc(self._certs[1])
        mse = (
            tlv.encode(0x80, oids.oid_value(oids.ID_TA_ECDSA_SHA_256))
            + tlv.encode(0x83, str(terminal.holder_reference).encode())
            + self._aux
            + tlv.encode(0x91, crypto.compressed(eph))
        )
        steps = [
            CommandApdu(0x00, 0x22, 0x81, 0xA4, mse),
            CommandApdu(0x00, 0x82, 0x00, 0x00, signature),
            CommandApdu(
                0x00,
                0x22,
                0x41,
                0xA4,
                tlv.encode(0x80, oids.oid_value(oids.ID_CA_ECDH_AES_CBC_CMAC_128))
                + tlv.encode(0x84, bytes([CA_KEY_ID])),
            ),
            CommandApdu(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, eph)), 256),
        ]
        response = b""
        for step in steps:
            r = ResponseApdu.decode(self.card.transmit(step.encode()))
            if not r.ok:
                return self._did_failed(results.UNKNOWN_ERROR, mid)
            response = r.data
        items = tlv.parse_all(tlv.parse_single(response, 0x7C).value)
        nonce, token = tlv.find(items, 0x81) or b"", tlv.find(items, 0x82) or b""
        security = next(f.content for f in self.card.files if f.short_id == 0x1D)
        body = (
            "<iso:DIDAuthenticateResponse>"
            + _result(results.MAJOR_OK, None)
            + '<iso:AuthenticationProtocolData xsi:type="iso:EAC2OutputType" Protocol="'
            + paos.EAC_PROTOCOL
            + '">'
            f"<iso:EFCardSecurity>{security.hex().upper()}</iso:EFCardSecurity>"
            f"<iso:AuthenticationToken>{token.hex().upper()}</iso:AuthenticationToken>"
            f"<iso:Nonce>{nonce.hex().upper()}</iso:Nonce>"
            "</iso:AuthenticationProtocolData></iso:DIDAuthenticateResponse>"
        )
        return _envelope(body, mid, self._mid())


class CardChallenge:
    @staticmethod
    def of(card: EmulatedCard) -> bytes:
        return ResponseApdu.decode(card.transmit(CommandApdu(0x00, 0x84, 0x00, 0x00, b"", 8).encode())).data
