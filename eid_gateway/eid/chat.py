"""Between the gateway's attributes and the card's CHAT: which access right each attribute needs.

TR-03110 (:mod:`tr03110.cvc`) speaks of access rights and data groups, the gateway of
:class:`~eid_gateway.identity.Attribute`; this table is the one place where the two meet. It is used to
check the authorization certificate against the registered services (``check-config``), by the
eID-Server to turn a useID selection into CHATs, and by tests that build CV chains for attributes.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Final

from eid_gateway.identity import Attribute
from tr03110.cvc import AccessRight, Chat, Role

#: Data group of each attribute stored on the card (TR-03110 part 4 / TR-03127).
DATA_GROUPS: Final[dict[Attribute, int]] = {
    Attribute.DOCUMENT_TYPE: 1,
    Attribute.ISSUING_STATE: 2,
    Attribute.DATE_OF_EXPIRY: 3,
    Attribute.GIVEN_NAMES: 4,
    Attribute.FAMILY_NAMES: 5,
    Attribute.ARTISTIC_NAME: 6,
    Attribute.DOCTORAL_DEGREE: 7,
    Attribute.DATE_OF_BIRTH: 8,
    Attribute.PLACE_OF_BIRTH: 9,
    Attribute.NATIONALITY: 10,
    Attribute.BIRTH_NAME: 13,
    Attribute.ADDRESS: 17,
    Attribute.COMMUNITY_ID: 18,
    Attribute.RESIDENCE_PERMIT: 19,
}

#: The CHAT right each gateway attribute needs.
ATTRIBUTE_RIGHTS: Final[dict[Attribute, AccessRight]] = {
    **{a: AccessRight.read(dg) for a, dg in DATA_GROUPS.items()},
    Attribute.PSEUDONYM: AccessRight.RESTRICTED_IDENTIFICATION,
    Attribute.AGE_VERIFICATION: AccessRight.AGE_VERIFICATION,
    Attribute.PLACE_VERIFICATION: AccessRight.COMMUNITY_ID_VERIFICATION,
}


def rights_for(attributes: Set[Attribute]) -> frozenset[AccessRight]:
    """The access rights these attributes need."""
    return frozenset(ATTRIBUTE_RIGHTS[a] for a in attributes)


def chat_for(attributes: Set[Attribute], role: Role = Role.TERMINAL) -> Chat:
    """The least CHAT (authentication terminal) that grants these attributes."""
    return Chat.authentication_terminal(rights_for(attributes), role)


def grants(chat: Chat, attribute: Attribute) -> bool:
    return chat.grants(ATTRIBUTE_RIGHTS[attribute])


def missing(chat: Chat, attributes: Set[Attribute]) -> tuple[Attribute, ...]:
    """The attributes ``chat`` does not grant, in the enum's order."""
    return tuple(a for a in Attribute if a in attributes and not grants(chat, a))
