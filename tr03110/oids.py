"""The object identifiers of BSI TR-03110 part 3 (appendix A), each written once under one root.

Why one table: the card's SecurityInfos, CV certificates, the EAC protocol messages and the card
emulator name the same protocols; a typo in one copy would be a protocol that silently never matches.
"""

from __future__ import annotations

from typing import Final

from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import univ

from tr03110 import tlv

#: bsi-de: itu-t(0) identified-organization(4) etsi(0) reserved(127) etsi-identified-organization(0) 7
BSI_DE: Final = "0.4.0.127.0.7"

STANDARDIZED_DOMAIN_PARAMETERS: Final = BSI_DE + ".1.2"

# protocols (id-PK, id-TA, id-CA, id-PACE, id-RI, id-CI, id-eIDSecurity, id-PT)
ID_PK: Final = BSI_DE + ".2.2.1"
ID_TA: Final = BSI_DE + ".2.2.2"
ID_CA: Final = BSI_DE + ".2.2.3"
ID_PACE: Final = BSI_DE + ".2.2.4"
ID_RI: Final = BSI_DE + ".2.2.5"
ID_CI: Final = BSI_DE + ".2.2.6"
ID_EID_SECURITY: Final = BSI_DE + ".2.2.7"
ID_PT: Final = BSI_DE + ".2.2.8"

ID_PK_ECDH: Final = ID_PK + ".2"
ID_TA_ECDSA_SHA_256: Final = ID_TA + ".2.3"
ID_CA_ECDH: Final = ID_CA + ".2"
ID_CA_ECDH_AES_CBC_CMAC_128: Final = ID_CA_ECDH + ".2"
ID_CA_ECDH_AES_CBC_CMAC_192: Final = ID_CA_ECDH + ".3"
ID_CA_ECDH_AES_CBC_CMAC_256: Final = ID_CA_ECDH + ".4"
ID_PACE_ECDH_GM: Final = ID_PACE + ".2"
ID_PACE_ECDH_GM_AES_CBC_CMAC_128: Final = ID_PACE_ECDH_GM + ".2"
ID_RI_ECDH_SHA_256: Final = ID_RI + ".2.3"

# certificate roles and extensions (CHAT, id-description, id-sector)
ID_ROLES: Final = BSI_DE + ".3.1.2"
ID_EXTENSIONS: Final = BSI_DE + ".3.1.3"
ID_DESCRIPTION: Final = ID_EXTENSIONS + ".1"
ID_SECTOR: Final = ID_EXTENSIONS + ".2"

# auxiliary data of the terminal (age, validity and place verification)
ID_AUXILIARY_DATA: Final = BSI_DE + ".3.1.4"
ID_DATE_OF_BIRTH: Final = ID_AUXILIARY_DATA + ".1"
ID_DATE_OF_EXPIRY: Final = ID_AUXILIARY_DATA + ".2"
ID_COMMUNITY_ID: Final = ID_AUXILIARY_DATA + ".3"

#: eContentType of EF.CardSecurity's signed SecurityInfos.
ID_SECURITY_OBJECT: Final = BSI_DE + ".3.2.1"


def oid_der(dotted: str) -> bytes:
    """The DER encoding (06 ‖ len ‖ value) of an object identifier."""
    return bytes(der_encoder.encode(univ.ObjectIdentifier(dotted)))


def oid_value(dotted: str) -> bytes:
    """The value octets of an object identifier (as in CV certificates' tag 06 without the header)."""
    return tlv.parse_single(oid_der(dotted), 0x06).value
