"""Card-verifiable (CV) certificates of BSI TR-03110 part 3: parse, build, verify; and the certificate
description that an authorization certificate (Berechtigungszertifikat) is bound to.

Why here: the gateway must know what its authorization certificate allows (the CHAT decides which
attributes the card will release) and when it expires, and tests and the project's own eID-Server need
real certificate chains (CVCA -> DV -> terminal) to work with. The encoding is BER-TLV with
application-class tags; it is described once with pyasn1 types below and decoded with pyasn1's DER
decoder, and a certificate whose DER re-encoding differs from the input is refused, so the bytes that
were signed are exactly the bytes that were read.

Sans-I/O: every function works on bytes and objects; reading files is :func:`load_cvc_file` only. The
CHAT speaks of access rights and data groups; which gateway attribute needs which right is the gateway's
table (:mod:`eid_gateway.eid.chat`).
"""

from __future__ import annotations

import datetime
import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, tag, univ

from tr03110.oids import ID_DESCRIPTION, ID_ROLES, ID_SECTOR, ID_TA

MAX_CVC_SIZE: Final = 4096  # real CV certificates are 200-600 bytes; a CVCA with RSA-4096 < 1.5 KB
MAX_DESCRIPTION_SIZE: Final = 64 * 1024  # terms of usage may be a small PDF

_OidEnum = TypeVar("_OidEnum", bound=enum.Enum)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --- errors ---------------------------------------------------------------------------------------------


class CvcError(Exception):
    """Base of CV certificate errors."""


class CvcFormatError(CvcError):
    """The bytes are not a well-formed CV certificate / certificate description."""


class CvcSignatureError(CvcError):
    """The signature does not verify under the issuer's key (or the key cannot be used)."""


class CvcChainError(CvcError):
    """Certificates do not form a chain (authority reference does not name the issuer)."""


class DescriptionMismatch(CvcError):
    """The certificate description's hash is not the one the certificate carries."""


# --- algorithms -----------------------------------------------------------------------------------------


class TaAlgorithm(enum.Enum):
    """Terminal Authentication signature algorithms (id-TA ...); value = OID."""

    RSA_V1_5_SHA_1 = ID_TA + ".1.1"
    RSA_V1_5_SHA_256 = ID_TA + ".1.2"
    RSA_PSS_SHA_1 = ID_TA + ".1.3"
    RSA_PSS_SHA_256 = ID_TA + ".1.4"
    RSA_V1_5_SHA_512 = ID_TA + ".1.5"
    RSA_PSS_SHA_512 = ID_TA + ".1.6"
    ECDSA_SHA_1 = ID_TA + ".2.1"
    ECDSA_SHA_224 = ID_TA + ".2.2"
    ECDSA_SHA_256 = ID_TA + ".2.3"
    ECDSA_SHA_384 = ID_TA + ".2.4"
    ECDSA_SHA_512 = ID_TA + ".2.5"

    @property
    def is_ecdsa(self) -> bool:
        return self.value.startswith(ID_TA + ".2.")

    @property
    def is_pss(self) -> bool:
        return self in (TaAlgorithm.RSA_PSS_SHA_1, TaAlgorithm.RSA_PSS_SHA_256, TaAlgorithm.RSA_PSS_SHA_512)

    @property
    def hash_name(self) -> str:
        """hashlib name of the algorithm's hash (also the hash of the certificate description)."""
        return self.name.rsplit("_", 2)[-2].lower() + self.name.rsplit("_", 1)[-1]

    def hash(self) -> hashes.HashAlgorithm:
        return {
            "sha1": hashes.SHA1(),
            "sha224": hashes.SHA224(),
            "sha256": hashes.SHA256(),
            "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(),
        }[self.hash_name]


@dataclass(frozen=True)
class CurveParameters:
    """Explicit EC domain parameters as a CVCA certificate carries them (tags 81-85, 87)."""

    p: int
    a: int
    b: int
    generator: bytes  # uncompressed point 04||x||y
    order: int
    cofactor: int


# Domain parameters of the curves TR-03110 / TR-03116 use, taken from OpenSSL (`openssl ecparam
# -param_enc explicit`); tests check each against `cryptography`'s own generator point.
_CURVE_PARAMETERS: Final[dict[str, CurveParameters]] = {
    "brainpoolP256r1": CurveParameters(
        0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        bytes.fromhex(
            "048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262"
            "547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997"
        ),
        0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
        1,
    ),
    "secp256r1": CurveParameters(
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        bytes.fromhex(
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
            "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
        ),
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        1,
    ),
    "brainpoolP384r1": CurveParameters(
        0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53,
        0x7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F8AA5814A503AD4EB04A8C7DD22CE2826,
        0x04A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57CB4390295DBC9943AB78696FA504C11,
        bytes.fromhex(
            "041d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e"
            "8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315"
        ),
        0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565,
        1,
    ),
    "secp384r1": CurveParameters(
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFC,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        bytes.fromhex(
            "04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"
            "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"
        ),
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        1,
    ),
    "brainpoolP512r1": CurveParameters(
        int(
            "aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca703308717d4d9b009bc66842aecda12ae6a380e6"
            "2881ff2f2d82c68528aa6056583a48f3",
            16,
        ),
        int(
            "7830a3318b603b89e2327145ac234cc594cbdd8d3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b5"
            "7f1117a72bf2c7b9e7c1ac4d77fc94ca",
            16,
        ),
        int(
            "3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94cadc083e67"
            "984050b75ebae5dd2809bd638016f723",
            16,
        ),
        bytes.fromhex(
            "0481aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098eff3b1f78e2d0d48d50d1687b93b97d5f"
            "7c6d5047406a5e688b352209bcb9f8227dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111b2"
            "dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892"
        ),
        int(
            "aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870553e5c414ca92619418661197fac1047"
            "1db1d381085ddaddb58796829ca90069",
            16,
        ),
        1,
    ),
}
_CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "brainpoolP256r1": ec.BrainpoolP256R1(),
    "secp256r1": ec.SECP256R1(),
    "brainpoolP384r1": ec.BrainpoolP384R1(),
    "secp384r1": ec.SECP384R1(),
    "brainpoolP512r1": ec.BrainpoolP512R1(),
}


def curve_parameters(curve: ec.EllipticCurve) -> CurveParameters:
    """The explicit domain parameters of a supported named curve."""
    try:
        return _CURVE_PARAMETERS[curve.name]
    except KeyError:
        raise CvcError(f"curve {curve.name} is not supported in CV certificates") from None


def _curve_from_parameters(params: CurveParameters) -> ec.EllipticCurve:
    for name, known in _CURVE_PARAMETERS.items():
        if known == params:
            return _CURVES[name]
    raise CvcFormatError("EC domain parameters are not those of a supported named curve")


# --- CHAT -----------------------------------------------------------------------------------------------


class TerminalType(enum.Enum):
    """The CHAT's object identifier: which kind of terminal the certificate is for."""

    INSPECTION_SYSTEM = ID_ROLES + ".1"
    AUTHENTICATION_TERMINAL = ID_ROLES + ".2"
    SIGNATURE_TERMINAL = ID_ROLES + ".3"

    @property
    def mask_length(self) -> int:
        return 5 if self is TerminalType.AUTHENTICATION_TERMINAL else 1


class Role(enum.IntEnum):
    """The two most significant bits of the CHAT."""

    TERMINAL = 0
    DV_NON_OFFICIAL = 1  # "foreign" DV for an inspection system; non-official/commercial for AT
    DV_OFFICIAL = 2  # "domestic" DV
    CVCA = 3


class AccessRight(enum.IntEnum):
    """Access rights of an authentication terminal; value = bit number in the 40-bit CHAT mask."""

    AGE_VERIFICATION = 0
    COMMUNITY_ID_VERIFICATION = 1
    RESTRICTED_IDENTIFICATION = 2
    PRIVILEGED_TERMINAL = 3
    CAN_ALLOWED = 4
    PIN_MANAGEMENT = 5
    INSTALL_CERTIFICATE = 6
    INSTALL_QUALIFIED_CERTIFICATE = 7
    READ_DG1 = 8
    READ_DG2 = 9
    READ_DG3 = 10
    READ_DG4 = 11
    READ_DG5 = 12
    READ_DG6 = 13
    READ_DG7 = 14
    READ_DG8 = 15
    READ_DG9 = 16
    READ_DG10 = 17
    READ_DG11 = 18
    READ_DG12 = 19
    READ_DG13 = 20
    READ_DG14 = 21
    READ_DG15 = 22
    READ_DG16 = 23
    READ_DG17 = 24
    READ_DG18 = 25
    READ_DG19 = 26
    READ_DG20 = 27
    READ_DG21 = 28
    RFU_29 = 29
    RFU_30 = 30
    RFU_31 = 31
    RFU_32 = 32
    WRITE_DG21 = 33
    WRITE_DG20 = 34
    WRITE_DG19 = 35
    WRITE_DG18 = 36
    WRITE_DG17 = 37

    @classmethod
    def read(cls, data_group: int) -> AccessRight:
        """The right to read data group ``data_group`` (1..21)."""
        if not 1 <= data_group <= 21:
            raise ValueError(f"no data group {data_group}")
        return cls(7 + data_group)


@dataclass(frozen=True)
class Chat:
    """Certificate Holder Authorization Template: terminal type, role and the access-rights bit mask.

    ``mask`` is the whole discretionary-data value as an integer (role in the top two bits).
    """

    terminal_type: TerminalType
    mask: int

    def __post_init__(self) -> None:
        if not 0 <= self.mask < 1 << (8 * self.terminal_type.mask_length):
            raise ValueError("CHAT mask does not fit the terminal type's length")

    @classmethod
    def authentication_terminal(
        cls, rights: frozenset[AccessRight] | set[AccessRight] = frozenset(), role: Role = Role.TERMINAL
    ) -> Chat:
        mask = role << 38
        for right in rights:
            mask |= 1 << right
        return cls(TerminalType.AUTHENTICATION_TERMINAL, mask)

    @property
    def role(self) -> Role:
        return Role(self.mask >> (8 * self.terminal_type.mask_length - 2))

    @property
    def rights(self) -> frozenset[AccessRight]:
        """The granted rights (authentication terminals only; empty for IS/ST)."""
        if self.terminal_type is not TerminalType.AUTHENTICATION_TERMINAL:
            return frozenset()
        return frozenset(r for r in AccessRight if self.mask >> r & 1)

    def grants(self, right: AccessRight) -> bool:
        return right in self.rights

    def readable_data_groups(self) -> tuple[int, ...]:
        return tuple(dg for dg in range(1, 22) if self.grants(AccessRight.read(dg)))

    def mask_bytes(self) -> bytes:
        return self.mask.to_bytes(self.terminal_type.mask_length, "big")

    def encode(self) -> bytes:
        """The 7F4C template, as it appears in a certificate or an EAC1 request."""
        return bytes(der_encoder.encode(self._asn1()))

    def _asn1(self) -> _ChatAsn1:
        value = _ChatAsn1()
        value["oid"] = univ.ObjectIdentifier(self.terminal_type.value)
        value["mask"] = _spec(_ChatAsn1, "mask").clone(self.mask_bytes())
        return value

    @classmethod
    def decode(cls, data: bytes) -> Chat:
        """A CHAT from its 7F4C template."""
        value = _decode_strict(data, _ChatAsn1(), "CHAT")
        return cls._from_asn1(value)

    @classmethod
    def _from_asn1(cls, value: _ChatAsn1) -> Chat:
        terminal_type = _by_oid(TerminalType, value["oid"], "CHAT terminal type")
        raw = bytes(value["mask"])
        if len(raw) != terminal_type.mask_length:
            raise CvcFormatError(
                f"CHAT of {terminal_type.name} has {len(raw)} bytes; {terminal_type.mask_length} expected"
            )
        return cls(terminal_type, int.from_bytes(raw, "big"))

    def describe(self) -> list[str]:
        """Human-readable rights, one per line, for ``eid-gateway cvc show``."""
        lines = [f"{self.terminal_type.name.replace('_', ' ').lower()}, role {self.role.name}"]
        if self.terminal_type is TerminalType.AUTHENTICATION_TERMINAL:
            lines += [r.name for r in sorted(self.rights)]
        else:
            lines.append(f"mask {self.mask_bytes().hex()}")
        return lines


# --- pyasn1 schema ----------------------------------------------------------------------------------------


def _app(number: int, constructed: bool = False) -> tag.Tag:
    return tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed if constructed else tag.tagFormatSimple, number)


def _ctx(number: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatSimple, number)


def _app_octets(number: int) -> univ.OctetString:
    return univ.OctetString().subtype(implicitTag=_app(number))


def _ctx_octets(number: int) -> univ.OctetString:
    return univ.OctetString().subtype(implicitTag=_ctx(number))


class _PublicKeyAsn1(univ.Sequence):  # type: ignore[misc]  # 7F49
    tagSet = univ.Sequence.tagSet.tagImplicitly(_app(73, True))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("oid", univ.ObjectIdentifier()),
        *(namedtype.OptionalNamedType(f"c{n}", _ctx_octets(n)) for n in range(1, 8)),
    )


class _ChatAsn1(univ.Sequence):  # type: ignore[misc]  # 7F4C
    tagSet = univ.Sequence.tagSet.tagImplicitly(_app(76, True))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("oid", univ.ObjectIdentifier()),
        namedtype.NamedType("mask", _app_octets(19)),  # 53
    )


class _ExtensionAsn1(univ.Sequence):  # type: ignore[misc]  # 73 discretionary data template
    tagSet = univ.Sequence.tagSet.tagImplicitly(_app(19, True))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("oid", univ.ObjectIdentifier()),
        *(namedtype.OptionalNamedType(f"c{n}", _ctx_octets(n)) for n in range(0, 4)),
    )


class _ExtensionsAsn1(univ.SequenceOf):  # type: ignore[misc]  # 65
    tagSet = univ.SequenceOf.tagSet.tagImplicitly(_app(5, True))
    componentType = _ExtensionAsn1()


class _BodyAsn1(univ.Sequence):  # type: ignore[misc]  # 7F4E
    tagSet = univ.Sequence.tagSet.tagImplicitly(_app(78, True))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("profile", _app_octets(41)),  # 5F29
        namedtype.NamedType("car", _app_octets(2)),  # 42
        namedtype.NamedType("publicKey", _PublicKeyAsn1()),
        namedtype.NamedType("chr", _app_octets(32)),  # 5F20
        namedtype.NamedType("chat", _ChatAsn1()),
        namedtype.NamedType("effective", _app_octets(37)),  # 5F25
        namedtype.NamedType("expiry", _app_octets(36)),  # 5F24
        namedtype.OptionalNamedType("extensions", _ExtensionsAsn1()),
    )


class _CertificateAsn1(univ.Sequence):  # type: ignore[misc]  # 7F21
    tagSet = univ.Sequence.tagSet.tagImplicitly(_app(33, True))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("body", _BodyAsn1()),
        namedtype.NamedType("signature", _app_octets(55)),  # 5F37
    )


def _spec(asn1_type: type[univ.Sequence], name: str) -> univ.Asn1Item:
    """The schema object of one named component (to clone values with the right tags)."""
    types = asn1_type.componentType
    return types.getTypeByPosition(types.getPositionByName(name))


def _by_oid(kind: type[_OidEnum], oid: univ.ObjectIdentifier, what: str) -> _OidEnum:
    """The member of ``kind`` whose value is ``oid`` (dotted); an OID it does not list is a format error."""
    dotted = str(oid)
    try:
        return kind(dotted)
    except ValueError:
        raise CvcFormatError(f"unknown {what} {dotted}") from None


def _decode_strict(data: bytes, spec: univ.Asn1Item, what: str, *, canonical: bool = True) -> univ.Asn1Item:
    """Decode with pyasn1, nothing may follow; with ``canonical`` the DER re-encoding must be the input.

    Certificate descriptions are hashed as received and real ones are not always DER (their SET OF
    hashes is unsorted), so they are decoded without the canonical check.
    """
    try:
        value, rest = der_decoder.decode(data, asn1Spec=spec)
    except (PyAsn1Error, OverflowError) as exc:  # OverflowError: a length field wider than 2**63 (pyasn1#107)
        raise CvcFormatError(f"{what} is not well-formed: {type(exc).__name__}") from None
    if rest:
        raise CvcFormatError(f"{what} is followed by {len(rest)} unexpected bytes")
    if not canonical:
        return value
    try:
        again = der_encoder.encode(value)
    except PyAsn1Error:
        raise CvcFormatError(f"{what} cannot be re-encoded") from None
    if bytes(again) != bytes(data):
        raise CvcFormatError(f"{what} is not in canonical (DER) encoding")
    return value


# --- references and dates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HolderReference:
    """CHR / CAR: country code (2), holder mnemonic (0-9), sequence number (5), ISO 8859-1."""

    country: str
    mnemonic: str
    sequence: str

    def __str__(self) -> str:
        return self.country + self.mnemonic + self.sequence

    @classmethod
    def parse(cls, text: str) -> HolderReference:
        if not 7 <= len(text) <= 16 or not text.isprintable():
            raise CvcFormatError(f"holder reference {text!r} must be 7-16 printable characters")
        country = text[:2]
        if not country.isalpha() or not country.isupper():
            raise CvcFormatError(f"holder reference {text!r} does not start with a country code")
        return cls(country, text[2:-5], text[-5:])


def _encode_date(value: datetime.date) -> bytes:
    if not 2000 <= value.year <= 2099:
        raise ValueError("CV certificate dates must lie in 2000-2099")
    return bytes(int(d) for d in value.strftime("%y%m%d"))


def _decode_date(raw: bytes, what: str) -> datetime.date:
    if len(raw) != 6 or any(b > 9 for b in raw):
        raise CvcFormatError(f"{what} is not six unpacked BCD digits")
    yy, mm, dd = raw[0] * 10 + raw[1], raw[2] * 10 + raw[3], raw[4] * 10 + raw[5]
    try:
        return datetime.date(2000 + yy, mm, dd)
    except ValueError:
        raise CvcFormatError(f"{what} is not a calendar date") from None


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")


def _unsigned(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


# --- public key -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CvcPublicKey:
    """The certificate's public key (7F49).

    An EC key of a DV or terminal certificate carries only the point (86); its curve is inherited
    from the CVCA, so :meth:`to_cryptography` needs ``curve`` then.
    """

    algorithm: TaAlgorithm
    curve: ec.EllipticCurve | None = None  # explicit domain parameters present (CVCA, or by choice)
    point: bytes | None = None  # EC: uncompressed public point
    modulus: int | None = None  # RSA
    exponent: int | None = None  # RSA

    def to_cryptography(self, curve: ec.EllipticCurve | None = None) -> PublicKey:
        if self.algorithm.is_ecdsa:
            use = self.curve or curve
            if use is None:
                raise CvcSignatureError("the EC key carries no domain parameters and no curve was given")
            if self.point is None:
                raise CvcFormatError("the EC key has no public point")
            try:
                return ec.EllipticCurvePublicKey.from_encoded_point(use, self.point)
            except ValueError:
                raise CvcFormatError("the EC public point is not on the curve") from None
        if self.modulus is None or self.exponent is None:
            raise CvcFormatError("the RSA key lacks modulus or exponent")
        return rsa.RSAPublicNumbers(self.exponent, self.modulus).public_key()

    @classmethod
    def from_cryptography(
        cls, key: PublicKey, algorithm: TaAlgorithm, *, domain_parameters: bool = False
    ) -> CvcPublicKey:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not algorithm.is_ecdsa:
                raise ValueError(f"{algorithm.name} does not fit an EC key")
            curve_parameters(key.curve)  # refuse unsupported curves early
            from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

            point = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            return cls(algorithm, key.curve if domain_parameters else None, point)
        if algorithm.is_ecdsa:
            raise ValueError(f"{algorithm.name} does not fit an RSA key")
        numbers = key.public_numbers()
        return cls(algorithm, None, None, numbers.n, numbers.e)

    def _asn1(self) -> _PublicKeyAsn1:
        value = _PublicKeyAsn1()
        value["oid"] = univ.ObjectIdentifier(self.algorithm.value)
        parts: dict[int, bytes] = {}
        if self.algorithm.is_ecdsa:
            if self.curve is not None:
                dp = curve_parameters(self.curve)
                parts.update(
                    {
                        1: _unsigned(dp.p),
                        2: _unsigned(dp.a),
                        3: _unsigned(dp.b),
                        4: dp.generator,
                        5: _unsigned(dp.order),
                        7: _unsigned(dp.cofactor),
                    }
                )
            if self.point is not None:
                parts[6] = self.point
        else:
            assert self.modulus is not None and self.exponent is not None
            parts = {1: _unsigned(self.modulus), 2: _unsigned(self.exponent)}
        for n in sorted(parts):
            value[f"c{n}"] = _spec(_PublicKeyAsn1, f"c{n}").clone(parts[n])
        return value

    @classmethod
    def _from_asn1(cls, value: _PublicKeyAsn1) -> CvcPublicKey:
        algorithm = _by_oid(TaAlgorithm, value["oid"], "public key algorithm")
        parts = {n: bytes(value[f"c{n}"]) for n in range(1, 8) if value[f"c{n}"].isValue}
        if not algorithm.is_ecdsa:
            if set(parts) != {1, 2}:
                raise CvcFormatError("an RSA key must have exactly modulus (81) and exponent (82)")
            return cls(algorithm, None, None, int.from_bytes(parts[1], "big"), int.from_bytes(parts[2], "big"))
        curve = None
        domain = {1, 2, 3, 4, 5, 7}
        present = domain & set(parts)
        if present and present != domain:
            raise CvcFormatError("EC domain parameters are incomplete")
        if present:
            curve = _curve_from_parameters(
                CurveParameters(
                    int.from_bytes(parts[1], "big"),
                    int.from_bytes(parts[2], "big"),
                    int.from_bytes(parts[3], "big"),
                    parts[4],
                    int.from_bytes(parts[5], "big"),
                    int.from_bytes(parts[7], "big"),
                )
            )
        if 6 not in parts:
            raise CvcFormatError("the EC key has no public point (86)")
        return cls(algorithm, curve, parts[6])


# --- extensions and the certificate -----------------------------------------------------------------------


@dataclass(frozen=True)
class CvcExtension:
    """One discretionary data template (73): OID and its context-tagged values (80, 81, ...)."""

    oid: str
    values: tuple[tuple[int, bytes], ...]

    def value(self, number: int) -> bytes | None:
        return dict(self.values).get(number)


@dataclass(frozen=True)
class CvCertificate:
    """A parsed CV certificate. ``body`` is the exact signed encoding (7F4E TLV)."""

    profile_identifier: int
    authority_reference: HolderReference
    public_key: CvcPublicKey
    holder_reference: HolderReference
    chat: Chat
    effective_date: datetime.date
    expiration_date: datetime.date
    extensions: tuple[CvcExtension, ...]
    signature: bytes
    body: bytes = field(repr=False)
    encoded: bytes = field(repr=False)

    @property
    def is_self_signed(self) -> bool:
        return self.authority_reference == self.holder_reference

    @property
    def description_hash(self) -> bytes | None:
        """The hash of the certificate description (extension id-description, tag 80)."""
        for ext in self.extensions:
            if ext.oid == ID_DESCRIPTION:
                return ext.value(0)
        return None

    def extension(self, oid: str) -> CvcExtension | None:
        return next((e for e in self.extensions if e.oid == oid), None)

    def is_valid_on(self, day: datetime.date) -> bool:
        return self.effective_date <= day <= self.expiration_date

    def days_left(self, today: datetime.date) -> int:
        """Days until (and including) the expiration date; negative once expired."""
        return (self.expiration_date - today).days

    def matches_description(self, description: bytes) -> bool:
        """True if the description's hash (with this certificate's hash algorithm) is the one carried."""
        carried = self.description_hash
        if carried is None:
            return False
        return hashlib.new(self.public_key.algorithm.hash_name, description).digest() == carried

    def check_description(self, description: bytes) -> CertificateDescription:
        """Parse the description after checking that this certificate is bound to it."""
        if not self.matches_description(description):
            raise DescriptionMismatch("the certificate description does not match the certificate's hash")
        return parse_certificate_description(description)

    def verify_signature(self, issuer: CvCertificate | PublicKey, curve: ec.EllipticCurve | None = None) -> None:
        """Verify with the issuer's key; for EC keys without domain parameters pass ``curve`` (CVCA's).

        Uses the issuer's algorithm (the signer's key decides the scheme, TR-03110 part 3).
        """
        if isinstance(issuer, CvCertificate):
            if issuer.holder_reference != self.authority_reference:
                raise CvcChainError(
                    f"certificate is issued by {self.authority_reference}, not by {issuer.holder_reference}"
                )
            algorithm = issuer.public_key.algorithm
            key = issuer.public_key.to_cryptography(curve)
        else:
            key = issuer
            algorithm = self.public_key.algorithm
        _verify(key, algorithm, self.body, self.signature)

    def describe(self) -> list[str]:
        """Human-readable summary (no personal data: a certificate names a service, not a person)."""
        lines = [
            f"Profile identifier: {self.profile_identifier}",
            f"Authority reference (CAR): {self.authority_reference}",
            f"Holder reference (CHR): {self.holder_reference}",
            f"Public key: {self.public_key.algorithm.name}"
            + (f" on {self.public_key.curve.name}" if self.public_key.curve else ""),
            "CHAT: " + self.chat.describe()[0],
            *("  " + line for line in self.chat.describe()[1:]),
            f"Effective date: {self.effective_date.isoformat()}",
            f"Expiration date: {self.expiration_date.isoformat()}",
        ]
        for ext in self.extensions:
            name = {ID_DESCRIPTION: "id-description", ID_SECTOR: "id-sector"}.get(ext.oid, ext.oid)
            lines.append(f"Extension {name}: " + ", ".join(f"[{n}] {v.hex()}" for n, v in ext.values))
        return lines


def parse_cvc(data: bytes) -> CvCertificate:
    """Parse a CV certificate (DER-TLV, tag 7F21). Raises :class:`CvcFormatError` for anything malformed."""
    if len(data) > MAX_CVC_SIZE:
        raise CvcFormatError(f"CV certificate of {len(data)} bytes exceeds {MAX_CVC_SIZE}")
    value = _decode_strict(bytes(data), _CertificateAsn1(), "CV certificate")
    body = value["body"]
    profile = bytes(body["profile"])
    if profile != b"\x00":
        raise CvcFormatError(f"unsupported certificate profile identifier {profile.hex()}")
    extensions: list[CvcExtension] = []
    if body["extensions"].isValue:
        for ext in body["extensions"]:
            values = tuple((n, bytes(ext[f"c{n}"])) for n in range(0, 4) if ext[f"c{n}"].isValue)
            extensions.append(CvcExtension(str(ext["oid"]), values))
    return CvCertificate(
        profile_identifier=0,
        authority_reference=HolderReference.parse(_text(bytes(body["car"]))),
        public_key=CvcPublicKey._from_asn1(body["publicKey"]),
        holder_reference=HolderReference.parse(_text(bytes(body["chr"]))),
        chat=Chat._from_asn1(body["chat"]),
        effective_date=_decode_date(bytes(body["effective"]), "effective date"),
        expiration_date=_decode_date(bytes(body["expiry"]), "expiration date"),
        extensions=tuple(extensions),
        signature=bytes(value["signature"]),
        body=bytes(der_encoder.encode(body)),
        encoded=bytes(data),
    )


def load_cvc_file(path: Path) -> CvCertificate:
    """A CV certificate from a file: binary, or hex text (as found in EAC1InputType messages)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CvcError(f"CV certificate file {path} cannot be read: {exc.strerror}") from None
    if raw[:2] != b"\x7f\x21":
        try:
            raw = bytes.fromhex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise CvcFormatError(f"{path} holds neither a binary nor a hex CV certificate") from None
    return parse_cvc(raw)


# --- signing ----------------------------------------------------------------------------------------------


def _sign(key: PrivateKey, algorithm: TaAlgorithm, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not algorithm.is_ecdsa:
            raise ValueError(f"{algorithm.name} does not fit an EC key")
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm.hash())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # TR-03111 plain format
    if algorithm.is_ecdsa:
        raise ValueError(f"{algorithm.name} does not fit an RSA key")
    return key.sign(data, _rsa_padding(algorithm), algorithm.hash())


def _rsa_padding(algorithm: TaAlgorithm) -> padding.AsymmetricPadding:
    if algorithm.is_pss:
        return padding.PSS(mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.hash().digest_size)
    return padding.PKCS1v15()


def _verify(key: PublicKey, algorithm: TaAlgorithm, data: bytes, signature: bytes) -> None:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not algorithm.is_ecdsa:
                raise CvcSignatureError(f"{algorithm.name} does not fit the issuer's EC key")
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise CvcSignatureError("ECDSA signature has the wrong length")
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
            key.verify(der, data, ec.ECDSA(algorithm.hash()))
        else:
            if algorithm.is_ecdsa:
                raise CvcSignatureError(f"{algorithm.name} does not fit the issuer's RSA key")
            key.verify(signature, data, _rsa_padding(algorithm), algorithm.hash())
    except InvalidSignature:
        raise CvcSignatureError("the CV certificate's signature does not verify") from None


def build_cvc(
    *,
    authority_reference: str,
    holder_reference: str,
    public_key: PublicKey,
    chat: Chat,
    effective_date: datetime.date,
    expiration_date: datetime.date,
    signing_key: PrivateKey,
    algorithm: TaAlgorithm | None = None,
    domain_parameters: bool | None = None,
    description: bytes | None = None,
    extensions: tuple[CvcExtension, ...] = (),
) -> bytes:
    """Build and sign a CV certificate; returns its encoding (7F21).

    ``algorithm`` is the holder's (written into the key); by default ECDSA-SHA-256 for EC keys (SHA-384
    / SHA-512 for the larger curves) and RSA-PSS-SHA-256 for RSA. The signature uses the *signer's*
    scheme, which for a self-signed certificate is the same; the signer's algorithm is derived from
    ``signing_key`` with the same defaults. Domain parameters are included for CVCA certificates (role
    CVCA) unless ``domain_parameters`` says otherwise. ``description`` (the encoded certificate
    description) adds the id-description extension with its hash.
    """
    holder_algorithm = algorithm or default_algorithm(public_key)
    signer_algorithm = default_algorithm(signing_key.public_key())
    if signing_key.public_key().public_numbers() == public_key.public_numbers():
        signer_algorithm = holder_algorithm
    HolderReference.parse(authority_reference)
    HolderReference.parse(holder_reference)
    if expiration_date < effective_date:
        raise ValueError("expiration date lies before the effective date")
    include_dp = chat.role is Role.CVCA if domain_parameters is None else domain_parameters
    key = CvcPublicKey.from_cryptography(public_key, holder_algorithm, domain_parameters=include_dp)
    exts = list(extensions)
    if description is not None:
        digest = hashlib.new(holder_algorithm.hash_name, description).digest()
        exts.insert(0, CvcExtension(ID_DESCRIPTION, ((0, digest),)))

    body = _BodyAsn1()
    body["profile"] = _spec(_BodyAsn1, "profile").clone(b"\x00")
    body["car"] = _spec(_BodyAsn1, "car").clone(authority_reference.encode("latin-1"))
    body["publicKey"] = key._asn1()
    body["chr"] = _spec(_BodyAsn1, "chr").clone(holder_reference.encode("latin-1"))
    body["chat"] = chat._asn1()
    body["effective"] = _spec(_BodyAsn1, "effective").clone(_encode_date(effective_date))
    body["expiry"] = _spec(_BodyAsn1, "expiry").clone(_encode_date(expiration_date))
    if exts:
        seq = _spec(_BodyAsn1, "extensions").clone()
        for i, ext in enumerate(exts):
            item = _ExtensionAsn1()
            item["oid"] = univ.ObjectIdentifier(ext.oid)
            for n, raw in sorted(ext.values):
                item[f"c{n}"] = _spec(_ExtensionAsn1, f"c{n}").clone(raw)
            seq[i] = item
        body["extensions"] = seq
    body_der = bytes(der_encoder.encode(body))
    cert = _CertificateAsn1()
    cert["body"] = body
    cert["signature"] = _spec(_CertificateAsn1, "signature").clone(_sign(signing_key, signer_algorithm, body_der))
    return bytes(der_encoder.encode(cert))


def default_algorithm(key: PublicKey) -> TaAlgorithm:
    """ECDSA with the hash matching the curve size; RSA-PSS-SHA-256 for RSA."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
        return (
            TaAlgorithm.ECDSA_SHA_256
            if bits <= 256
            else (TaAlgorithm.ECDSA_SHA_384 if bits <= 384 else TaAlgorithm.ECDSA_SHA_512)
        )
    return TaAlgorithm.RSA_PSS_SHA_256


# --- certificate description ------------------------------------------------------------------------------


class DescriptionFormat(enum.Enum):
    """How the terms of usage are written; value = OID (id-description.x)."""

    PLAIN = ID_DESCRIPTION + ".1"
    HTML = ID_DESCRIPTION + ".2"
    PDF = ID_DESCRIPTION + ".3"


def _exp(number: int, inner: univ.Asn1Item) -> univ.Asn1Item:
    return inner.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number))


class _CommCertsAsn1(univ.SetOf):  # type: ignore[misc]
    componentType = univ.OctetString()


class _TermsAsn1(univ.Choice):  # type: ignore[misc]  # ANY DEFINED BY descriptionType, as a CHOICE
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("PLAIN", char.UTF8String()),
        namedtype.NamedType("HTML", char.IA5String()),
        namedtype.NamedType("PDF", univ.OctetString()),
    )


class _DescriptionAsn1(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("descriptionType", univ.ObjectIdentifier()),
        namedtype.NamedType("issuerName", _exp(1, char.UTF8String())),
        namedtype.OptionalNamedType("issuerURL", _exp(2, char.PrintableString())),
        namedtype.NamedType("subjectName", _exp(3, char.UTF8String())),
        namedtype.OptionalNamedType("subjectURL", _exp(4, char.PrintableString())),
        namedtype.NamedType("termsOfUsage", _exp(5, _TermsAsn1())),
        namedtype.OptionalNamedType("redirectURL", _exp(6, char.PrintableString())),
        namedtype.OptionalNamedType("commCertificates", _exp(7, _CommCertsAsn1())),
    )


@dataclass(frozen=True)
class CertificateDescription:
    """What the citizen is shown before entering the PIN (TR-03110 part 4, certificate description).

    ``terms_of_usage`` is text for the plain and HTML formats and bytes for PDF. ``comm_certificates``
    are hashes of the TLS certificates the service uses (the eID-Client checks them).
    """

    issuer_name: str
    subject_name: str
    terms_of_usage: str | bytes
    issuer_url: str | None = None
    subject_url: str | None = None
    redirect_url: str | None = None
    comm_certificates: tuple[bytes, ...] = ()
    format: DescriptionFormat = DescriptionFormat.PLAIN

    def encode(self) -> bytes:
        value = _DescriptionAsn1()
        value["descriptionType"] = univ.ObjectIdentifier(self.format.value)
        value["issuerName"] = _spec(_DescriptionAsn1, "issuerName").clone(self.issuer_name)
        if self.issuer_url is not None:
            value["issuerURL"] = _spec(_DescriptionAsn1, "issuerURL").clone(self.issuer_url)
        value["subjectName"] = _spec(_DescriptionAsn1, "subjectName").clone(self.subject_name)
        if self.subject_url is not None:
            value["subjectURL"] = _spec(_DescriptionAsn1, "subjectURL").clone(self.subject_url)
        terms = self.terms_of_usage
        if (self.format is DescriptionFormat.PDF) != isinstance(terms, bytes):
            raise ValueError("terms of usage must be bytes for PDF and text otherwise")
        choice = _spec(_DescriptionAsn1, "termsOfUsage").clone()
        choice[self.format.name] = terms
        value["termsOfUsage"] = choice
        if self.redirect_url is not None:
            value["redirectURL"] = _spec(_DescriptionAsn1, "redirectURL").clone(self.redirect_url)
        if self.comm_certificates:
            certs = _spec(_DescriptionAsn1, "commCertificates").clone()
            for i, digest in enumerate(self.comm_certificates):
                certs[i] = univ.OctetString(digest)
            value["commCertificates"] = certs
        try:
            return bytes(der_encoder.encode(value))
        except PyAsn1Error as exc:
            raise ValueError(f"certificate description cannot be encoded: {exc}") from None

    def describe(self) -> list[str]:
        lines = [
            f"Issuer: {self.issuer_name}" + (f" <{self.issuer_url}>" if self.issuer_url else ""),
            f"Subject: {self.subject_name}" + (f" <{self.subject_url}>" if self.subject_url else ""),
        ]
        if self.redirect_url:
            lines.append(f"Redirect URL: {self.redirect_url}")
        lines += [f"Communication certificate hash: {h.hex()}" for h in self.comm_certificates]
        if isinstance(self.terms_of_usage, bytes):
            lines.append(f"Terms of usage: PDF, {len(self.terms_of_usage)} bytes")
        else:
            lines.append(f"Terms of usage ({self.format.name.lower()}):")
            lines += ["  " + line for line in self.terms_of_usage.splitlines()]
        return lines


def parse_certificate_description(data: bytes) -> CertificateDescription:
    """Parse a certificate description (explicitly tagged per TR-03110, as real ones are)."""
    if len(data) > MAX_DESCRIPTION_SIZE:
        raise CvcFormatError(f"certificate description of {len(data)} bytes exceeds {MAX_DESCRIPTION_SIZE}")
    value = _decode_strict(bytes(data), _DescriptionAsn1(), "certificate description", canonical=False)
    fmt = _by_oid(DescriptionFormat, value["descriptionType"], "certificate description format")
    chosen = value["termsOfUsage"].getName()
    if chosen != fmt.name:
        raise CvcFormatError(f"terms of usage are {chosen.lower()}, but the description says {fmt.name.lower()}")
    inner = value["termsOfUsage"].getComponent()
    terms: str | bytes = bytes(inner) if fmt is DescriptionFormat.PDF else str(inner)

    def opt(name: str) -> str | None:
        return str(value[name]) if value[name].isValue else None

    comm = tuple(bytes(h) for h in value["commCertificates"]) if value["commCertificates"].isValue else ()
    return CertificateDescription(
        issuer_name=str(value["issuerName"]),
        subject_name=str(value["subjectName"]),
        terms_of_usage=terms,
        issuer_url=opt("issuerURL"),
        subject_url=opt("subjectURL"),
        redirect_url=opt("redirectURL"),
        comm_certificates=comm,
        format=fmt,
    )
