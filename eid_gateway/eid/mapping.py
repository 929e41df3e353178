"""Between the gateway's model and the eID-Interface: EidRequest -> useID, getResult -> Identity.

This is the only place where TR-03130 names meet :class:`~eid_gateway.identity.Attribute`; the table
itself lives in :data:`~eid_gateway.identity.TR03130_NAMES`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from eid_gateway.core.port import EidRequest
from eid_gateway.eid.messages import GetResultResponse, Permission, Psk, Selection, UseIDRequest
from eid_gateway.identity import TR03130_NAMES, Attribute, Identity, LevelOfAssurance

_BY_NAME: Final[dict[str, Attribute]] = {name: attr for attr, name in TR03130_NAMES.items()}

#: The national LoA URIs in eIDAS terms ("undefined" counts as the lowest level).
_LOA: Final[dict[str, LevelOfAssurance]] = {
    "http://bsi.bund.de/eID/LoA/hoch": LevelOfAssurance.HIGH,
    "http://bsi.bund.de/eID/LoA/substantiell": LevelOfAssurance.SUBSTANTIAL,
    "http://bsi.bund.de/eID/LoA/normal": LevelOfAssurance.LOW,
    "http://bsi.bund.de/eID/LoA/undefined": LevelOfAssurance.LOW,
    **{loa.value: loa for loa in LevelOfAssurance},
}


class MappingError(ValueError):
    """An EidRequest cannot be expressed as useID (e.g. an age check without an age)."""


def use_id_request(request: EidRequest, psk: Psk | None = None) -> UseIDRequest:
    """useID for one sign-in: required attributes REQUIRED, optional ones ALLOWED, the rest PROHIBITED.

    A ``minimum_age`` / ``community_id`` implies the matching verification (REQUIRED unless the request
    lists it as optional); asking for the verification without its argument is refused here rather than
    by the server (``missingArgument``).
    """
    ops: dict[str, Selection] = {}
    for attr in request.optional:
        ops[TR03130_NAMES[attr]] = Selection.ALLOWED
    for attr in request.required:
        ops[TR03130_NAMES[attr]] = Selection.REQUIRED
    for attr, argument in (
        (Attribute.AGE_VERIFICATION, request.minimum_age),
        (Attribute.PLACE_VERIFICATION, request.community_id),
    ):
        name = TR03130_NAMES[attr]
        if argument is None and name in ops:
            raise MappingError(f"{name} requested without its argument")
        if argument is not None and name not in ops:
            ops[name] = Selection.REQUIRED
    return UseIDRequest(
        operations=ops,
        age=request.minimum_age,
        community_id=request.community_id,
        transaction_info=request.transaction_info,
        level_of_assurance=request.level_of_assurance.value,
        psk=psk,
    )


def _s(value: str | None) -> str | None:
    """An empty element (the BSI sample writes ``<AcademicTitle/>``) means "no value"."""
    return value if value else None


def identity_from_result(
    response: GetResultResponse,
    request: EidRequest | None = None,
    *,
    authenticated_at: datetime | None = None,
) -> Identity:
    """The one :class:`Identity` of a successful getResult, minimised to ``request`` when given.

    Attributes the server reports as NOTONCHIP land in ``not_on_chip``; anything the server returned
    that the request did not ask for is dropped.
    """
    if not response.result.ok:
        raise MappingError("getResult did not succeed")
    pd = response.personal_data
    not_on_chip = frozenset(
        _BY_NAME[name]
        for name, perm in (response.operations_allowed_by_user or {}).items()
        if perm is Permission.NOTONCHIP
    )
    loa = LevelOfAssurance.HIGH
    if response.level_of_assurance is not None:
        loa = _LOA[response.level_of_assurance]
    identity = Identity(
        restricted_id=pd.restricted_id.id if pd and pd.restricted_id else None,
        document_type=_s(pd.document_type) if pd else None,
        issuing_state=_s(pd.issuing_state) if pd else None,
        date_of_expiry=_s(pd.date_of_expiry) if pd else None,
        given_names=_s(pd.given_names) if pd else None,
        family_names=_s(pd.family_names) if pd else None,
        artistic_name=_s(pd.artistic_name) if pd else None,
        doctoral_degree=_s(pd.academic_title) if pd else None,
        date_of_birth=pd.date_of_birth if pd else None,
        place_of_birth=pd.place_of_birth if pd else None,
        nationality=_s(pd.nationality) if pd else None,
        birth_name=_s(pd.birth_name) if pd else None,
        address=pd.place_of_residence if pd else None,
        community_id=_s(pd.community_id) if pd else None,
        residence_permit=_s(pd.residence_permit_i) if pd else None,
        age_verification=response.fulfils_age_verification,
        place_verification=response.fulfils_place_verification,
        level_of_assurance=loa,
        authenticated_at=authenticated_at,
        not_on_chip=not_on_chip,
    )
    if request is None:
        return identity
    asked = request.required | request.optional
    if request.minimum_age is not None:
        asked |= {Attribute.AGE_VERIFICATION}
    if request.community_id is not None:
        asked |= {Attribute.PLACE_VERIFICATION}
    return identity.minimised(frozenset(asked))
