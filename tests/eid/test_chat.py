"""Gateway attributes -> CHAT access rights (:mod:`eid_gateway.eid.chat`), as TR-03110 part 4 and
TR-03127 assign data groups; CHAT masks written out bit by bit."""

from __future__ import annotations

from eid_gateway.eid.chat import ATTRIBUTE_RIGHTS, DATA_GROUPS, chat_for, grants, missing, rights_for
from eid_gateway.identity import Attribute
from tr03110.cvc import AccessRight, Role


def test_every_attribute_needs_one_right() -> None:
    assert set(ATTRIBUTE_RIGHTS) == set(Attribute)
    assert ATTRIBUTE_RIGHTS[Attribute.ADDRESS] is AccessRight.READ_DG17
    assert ATTRIBUTE_RIGHTS[Attribute.BIRTH_NAME] is AccessRight.READ_DG13
    assert ATTRIBUTE_RIGHTS[Attribute.PSEUDONYM] is AccessRight.RESTRICTED_IDENTIFICATION
    assert ATTRIBUTE_RIGHTS[Attribute.PLACE_VERIFICATION] is AccessRight.COMMUNITY_ID_VERIFICATION
    assert DATA_GROUPS[Attribute.GIVEN_NAMES] == 4 and DATA_GROUPS[Attribute.RESIDENCE_PERMIT] == 19


def test_chat_for_attributes() -> None:
    chat = chat_for({Attribute.GIVEN_NAMES, Attribute.FAMILY_NAMES, Attribute.AGE_VERIFICATION})
    # bit 0 age verification; bits 8 + 4 = 12 (DG4) and 13 (DG5): 0x1801 in a 5-octet mask, role terminal
    assert chat.mask_bytes() == bytes.fromhex("0000001801")
    assert chat.role is Role.TERMINAL
    assert rights_for({Attribute.PSEUDONYM}) == {AccessRight.RESTRICTED_IDENTIFICATION}
    assert grants(chat, Attribute.GIVEN_NAMES) and not grants(chat, Attribute.ADDRESS)
    assert missing(chat, {Attribute.PSEUDONYM, Attribute.GIVEN_NAMES, Attribute.ADDRESS}) == (
        Attribute.ADDRESS,
        Attribute.PSEUDONYM,
    )  # the enum's order, not the set's
    assert chat_for(set(), Role.DV_OFFICIAL).mask_bytes() == bytes.fromhex("8000000000")
