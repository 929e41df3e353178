"""SecurityInfos from EF.CardAccess (BSI TR-03110 part 3), parsed with pyasn1, sans-I/O.

EF.CardAccess is readable without PACE and tells which PACE variants and domain parameters the chip
supports; a kiosk uses it to confirm "this is an eID card that AusweisApp can talk to". Entries whose
OID we do not know are kept as UnknownInfo so that a new card generation does not break the kiosk.
The same SecurityInfos set is the signed content of EF.CardSecurity, so the eID-Server parses that with
this module too (``source`` names the file in error messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ

from tr03110.oids import ID_CA, ID_PACE, ID_TA, STANDARDIZED_DOMAIN_PARAMETERS

MAX_CARD_ACCESS_SIZE = 4096  # real EF.CardAccess files are a few hundred bytes

_PACE_KINDS = {"1": "DH-GM", "2": "ECDH-GM", "3": "DH-IM", "4": "ECDH-IM", "6": "ECDH-CAM"}
_CA_KINDS = {"1": "DH", "2": "ECDH"}
_CIPHERS = {"1": "3DES-CBC-CBC", "2": "AES-CBC-CMAC-128", "3": "AES-CBC-CMAC-192", "4": "AES-CBC-CMAC-256"}

# Standardized domain parameter IDs (TR-03110 part 3, table "standardized domain parameters").
PARAMETER_IDS: dict[int, str] = {
    0: "1024-bit MODP Group with 160-bit Prime Order Subgroup",
    1: "2048-bit MODP Group with 224-bit Prime Order Subgroup",
    2: "2048-bit MODP Group with 256-bit Prime Order Subgroup",
    8: "NIST P-192",
    9: "brainpoolP192r1",
    10: "NIST P-224",
    11: "brainpoolP224r1",
    12: "NIST P-256",
    13: "brainpoolP256r1",
    14: "brainpoolP320r1",
    15: "NIST P-384",
    16: "brainpoolP384r1",
    17: "brainpoolP512r1",
    18: "NIST P-521",
}


class SecurityInfosError(ValueError):
    """EF.CardAccess (or EF.CardSecurity) content is not a DER SecurityInfos structure."""


class _SecurityInfo(univ.Sequence):  # type: ignore[misc]  # pyasn1 ships no types
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("protocol", univ.ObjectIdentifier()),
        namedtype.NamedType("requiredData", univ.Any()),
        namedtype.OptionalNamedType("optionalData", univ.Any()),
    )


class _SecurityInfos(univ.SetOf):  # type: ignore[misc]
    componentType = _SecurityInfo()


class _AlgorithmIdentifier(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("algorithm", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("parameters", univ.Any()),
    )


@dataclass(frozen=True)
class _ProtocolInfo:
    """What PACEInfo and ChipAuthenticationInfo begin with: the protocol (with its cipher) and its version."""

    protocol: str
    version: int

    @property
    def name(self) -> str:
        return protocol_name(self.protocol)


@dataclass(frozen=True)
class _DomainParameterInfo:
    """What the two DomainParameterInfos begin with: the protocol and the domain parameters' algorithm."""

    protocol: str
    algorithm: str


@dataclass(frozen=True)
class PaceInfo(_ProtocolInfo):
    parameter_id: int | None

    @property
    def parameter_name(self) -> str | None:
        if self.parameter_id is None:
            return None
        return PARAMETER_IDS.get(self.parameter_id, f"reserved/proprietary {self.parameter_id}")


@dataclass(frozen=True)
class PaceDomainParameterInfo(_DomainParameterInfo):
    parameter_id: int | None


@dataclass(frozen=True)
class ChipAuthenticationInfo(_ProtocolInfo):
    key_id: int | None


@dataclass(frozen=True)
class ChipAuthenticationDomainParameterInfo(_DomainParameterInfo):
    key_id: int | None


@dataclass(frozen=True)
class TerminalAuthenticationInfo:
    version: int


@dataclass(frozen=True)
class UnknownInfo:
    """An entry we do not interpret (kept, never an error)."""

    protocol: str
    der: bytes


SecurityInfo = (
    PaceInfo
    | PaceDomainParameterInfo
    | ChipAuthenticationInfo
    | ChipAuthenticationDomainParameterInfo
    | TerminalAuthenticationInfo
    | UnknownInfo
)


@dataclass(frozen=True)
class SecurityInfos:
    entries: tuple[SecurityInfo, ...]

    @property
    def pace(self) -> tuple[PaceInfo, ...]:
        return tuple(e for e in self.entries if isinstance(e, PaceInfo))

    @property
    def chip_authentication(self) -> tuple[ChipAuthenticationInfo, ...]:
        return tuple(e for e in self.entries if isinstance(e, ChipAuthenticationInfo))

    @property
    def has_terminal_authentication(self) -> bool:
        return any(isinstance(e, TerminalAuthenticationInfo) for e in self.entries)

    @property
    def is_eid_capable(self) -> bool:
        """PACE is what AusweisApp needs first; without a PACEInfo the card cannot do eID."""
        return bool(self.pace)


def protocol_name(oid: str) -> str:
    """Human name for a PACE / CA / TA OID (e.g. 'id-PACE-ECDH-GM-AES-CBC-CMAC-128')."""
    for base, prefix, kinds in ((ID_PACE, "id-PACE", _PACE_KINDS), (ID_CA, "id-CA", _CA_KINDS)):
        if oid.startswith(base + "."):
            arcs = oid[len(base) + 1 :].split(".")
            kind = kinds.get(arcs[0])
            if kind is None:
                return oid
            if len(arcs) == 1:
                return f"{prefix}-{kind}"
            cipher = _CIPHERS.get(arcs[1]) if len(arcs) == 2 else None
            return f"{prefix}-{kind}-{cipher}" if cipher else oid
    if oid == ID_TA:
        return "id-TA"
    return oid


def _decode(data: bytes, spec: Any, what: str, kind: str) -> Any:
    """The one pyasn1 decoding of this module: exactly one DER ``kind``, else SecurityInfosError."""
    try:
        value, rest = der_decoder.decode(data, asn1Spec=spec)
    except (PyAsn1Error, OverflowError) as exc:  # OverflowError: a length field wider than 2**63 (pyasn1#107)
        raise SecurityInfosError(f"{what} is not {kind}") from exc
    if rest:
        raise SecurityInfosError(f"{what} has trailing bytes after {kind}")
    return value


def _int(any_value: univ.Any, what: str) -> int:
    return int(_decode(bytes(any_value), univ.Integer(), what, "an INTEGER"))


def _algorithm(any_value: univ.Any, what: str) -> tuple[str, int | None]:
    """Decode an AlgorithmIdentifier; return its OID and a standardized parameter ID if it is one."""
    value = _decode(bytes(any_value), _AlgorithmIdentifier(), what, "an AlgorithmIdentifier")
    oid = str(value["algorithm"])
    param_id = None
    if oid == STANDARDIZED_DOMAIN_PARAMETERS and value["parameters"].hasValue():
        param_id = _int(value["parameters"], "standardized domain parameter ID")
    return oid, param_id


def _optional(entry: univ.Sequence) -> univ.Any | None:
    opt = entry["optionalData"]
    return opt if opt.hasValue() else None


def _one(entry: univ.Sequence) -> SecurityInfo:
    oid = str(entry["protocol"])
    required = entry["requiredData"]
    optional = _optional(entry)
    if oid.startswith(ID_PACE + "."):
        arcs = oid[len(ID_PACE) + 1 :].split(".")
        if len(arcs) == 2:  # PACEInfo: id-PACE-<kind>-<cipher>
            version = _int(required, "PACEInfo version")
            pid = _int(optional, "PACEInfo parameterId") if optional is not None else None
            return PaceInfo(protocol=oid, version=version, parameter_id=pid)
        if len(arcs) == 1:  # PACEDomainParameterInfo: id-PACE-<kind>
            alg, pid = _algorithm(required, "PACEDomainParameterInfo domainParameter")
            if optional is not None:
                pid = _int(optional, "PACEDomainParameterInfo parameterId")
            return PaceDomainParameterInfo(protocol=oid, algorithm=alg, parameter_id=pid)
    elif oid.startswith(ID_CA + "."):
        arcs = oid[len(ID_CA) + 1 :].split(".")
        if len(arcs) == 2:
            version = _int(required, "ChipAuthenticationInfo version")
            key_id = _int(optional, "ChipAuthenticationInfo keyId") if optional is not None else None
            return ChipAuthenticationInfo(protocol=oid, version=version, key_id=key_id)
        if len(arcs) == 1:
            alg, _ = _algorithm(required, "ChipAuthenticationDomainParameterInfo domainParameter")
            key_id = _int(optional, "ChipAuthenticationDomainParameterInfo keyId") if optional is not None else None
            return ChipAuthenticationDomainParameterInfo(protocol=oid, algorithm=alg, key_id=key_id)
    elif oid == ID_TA:
        return TerminalAuthenticationInfo(version=_int(required, "TerminalAuthenticationInfo version"))
    return UnknownInfo(protocol=oid, der=bytes(der_encoder.encode(entry)))


def parse_security_infos(
    data: bytes, *, source: str = "EF.CardAccess", max_size: int = MAX_CARD_ACCESS_SIZE
) -> SecurityInfos:
    """Parse DER SecurityInfos (of ``source``); raise SecurityInfosError for anything malformed."""
    if not data:
        raise SecurityInfosError(f"{source} is empty")
    if len(data) > max_size:
        raise SecurityInfosError(f"{source} is larger than any real one")
    if data[0] != 0x31:
        raise SecurityInfosError(f"{source} does not start with a SET")
    value = _decode(bytes(data), _SecurityInfos(), source, "DER SecurityInfos")
    if len(value) == 0:
        raise SecurityInfosError("SecurityInfos is an empty SET")
    return SecurityInfos(entries=tuple(_one(entry) for entry in value))
