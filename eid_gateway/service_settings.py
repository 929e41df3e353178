"""``[[services]]`` and their ``[services.saml]`` tables: the city services the gateway signs citizens in for.

Read the one way every table is read (:mod:`eid_gateway.settings_base`). A service's ``oidc`` table is
the OIDC provider's (:mod:`eid_gateway.frontends.oidc.settings`); its ``saml`` table is validated by its
own model, so that a mistake there does not hide the service's own checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from eid_gateway.identity import Attribute, LevelOfAssurance
from eid_gateway.services import DEFAULT_KEY_TRANSPORT, SamlServiceSettings, Service
from eid_gateway.settings_base import (
    CertificateFile,
    Loc,
    Problems,
    Range,
    ReadContext,
    Reader,
    Section,
    Text,
    Url,
    refuse_unless,
    validate,
)

_SERVICE_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: TR-03130 CommunityID pattern (PlaceVerificationRequest).
_COMMUNITY_ID: Final = re.compile(r"[0][0-9]{3}([0-9]{2}([0][0-9]([0-9]{2}([0][0-9]{3})?)?)?)?")
_LOA: Final = {loa.name.lower(): loa for loa in LevelOfAssurance}
_ATTRIBUTES: Final = {a.value for a in Attribute}


def _distinct(value: list[str]) -> bool:
    return len(set(value)) == len(value)


ServiceId = Annotated[
    str,
    refuse_unless(
        _SERVICE_ID.fullmatch, "must be 1-64 characters a-z, 0-9, '-' or '_', starting with a letter or digit"
    ),
]
AttributeName = Annotated[
    str,
    refuse_unless(
        lambda v: v in _ATTRIBUTES,
        lambda v: f"unknown attribute {v!r} (known: {', '.join(a.value for a in Attribute)})",
    ),
]
CommunityId = Annotated[
    str, refuse_unless(_COMMUNITY_ID.fullmatch, "must be a TR-03130 community ID (e.g. '0276' or '02760503150000')")
]
LoaName = Annotated[str, refuse_unless(lambda v: v in _LOA, f"must be one of {', '.join(_LOA)}")]


class ServiceTable(Section):
    """One ``[[services]]`` entry as written (``saml`` and ``oidc`` are read by their own models)."""

    id: ServiceId
    name_de: Text
    name_en: Text | None = None
    attributes: Annotated[list[AttributeName], refuse_unless(bool, "must list at least one attribute")]
    required: list[AttributeName] = []
    minimum_age: Annotated[int, Range(1, 150)] | None = None
    community_id: CommunityId | None = None
    level_of_assurance: LoaName = "high"
    #: "card", "wallet" or both (the start page offers them in this order); wallet needs [wallet].
    methods: Annotated[
        list[Literal["card", "wallet"]],
        refuse_unless(bool, 'must list at least one sign-in method ("card", "wallet")'),
        refuse_unless(_distinct, "must not list a method twice"),
    ] = ["card"]
    saml: dict[str, Any] | None = None
    oidc: dict[str, Any] | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        listed = raw.get("attributes")
        attributes = {a for a in listed if isinstance(a, str)} if isinstance(listed, list) else set()
        required = raw.get("required")
        if isinstance(required, list):
            for i, name in enumerate(required):
                if isinstance(name, str) and name in _ATTRIBUTES and name not in attributes:
                    problems.add(("required", i), f"{name!r} must also be listed in attributes")
        age = raw.get("minimum_age")
        if isinstance(age, int) and not isinstance(age, bool) and Attribute.AGE_VERIFICATION.value not in attributes:
            problems.add("minimum_age", "needs 'age_verification' in attributes")
        if "community_id" in raw and Attribute.PLACE_VERIFICATION.value not in attributes:
            problems.add("community_id", "needs 'place_verification' in attributes")


class SamlServiceTable(Section):
    """A service's ``[services.saml]`` table as written."""

    entity_id: Text
    acs_urls: list[Url]
    signing_cert: CertificateFile | None = None
    signing_certs: list[CertificateFile] = []
    require_signed_requests: bool = True
    encryption_cert: CertificateFile | None = None
    encrypt_assertions: bool = False
    key_transport: Literal["rsa-oaep", "rsa-oaep-mgf1p"] = DEFAULT_KEY_TRANSPORT

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        if raw.get("acs_urls") == []:
            problems.add("acs_urls", "must list at least one URL")
        require_signed = raw.get("require_signed_requests", True)
        if require_signed is True and "signing_cert" not in raw and "signing_certs" not in raw:
            problems.add("signing_cert", "is required while require_signed_requests = true")
        if context.production and require_signed is False:
            problems.add("require_signed_requests", "must be true in production")
        if raw.get("encrypt_assertions") is True and "encryption_cert" not in raw:
            problems.add("encryption_cert", "is required when encrypt_assertions = true")


def parse_saml_service(raw: object, context: ReadContext, at: Loc) -> SamlServiceSettings:
    """A ``[services.saml]`` table with its certificates loaded; raises ``ConfigError``."""
    table = validate(SamlServiceTable, raw, context, at)
    signing = [table.signing_cert] if table.signing_cert is not None else []
    return SamlServiceSettings(
        entity_id=table.entity_id,
        acs_urls=tuple(table.acs_urls),
        signing_certs=tuple(signing + table.signing_certs),
        encryption_cert=table.encryption_cert,
        require_signed_requests=table.require_signed_requests,
        encrypt_assertions=table.encrypt_assertions,
        key_transport=table.key_transport,
    )


def parse_services(raw: object, context: ReadContext) -> tuple[Service, ...]:
    """Every ``[[services]]`` entry; raises ``ConfigError`` listing every problem of all of them."""
    reader = Reader(context)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        reader.problem("services", "must be an array of tables ([[services]])")
        reader.check()
    assert isinstance(raw, list)
    services: list[Service] = []
    seen_ids: set[str] = set()
    seen_entities: set[str] = set()
    for i, item in enumerate(raw):
        at: Loc = ("services", i)
        table = reader.table(ServiceTable, item, at)
        saml_raw = item.get("saml") if isinstance(item, Mapping) else None
        saml = (
            reader.run(lambda: parse_saml_service(saml_raw, context, (*at, "saml")))  # noqa: B023 - called at once
            if saml_raw is not None
            else None
        )
        # duplicates are checked on the values as written: also named when the entry has other problems
        sid = item.get("id") if isinstance(item, Mapping) else None
        if isinstance(sid, str):
            if sid in seen_ids:
                reader.problem((*at, "id"), f"duplicate service id {sid!r}")
            seen_ids.add(sid)
        entity = saml_raw.get("entity_id") if isinstance(saml_raw, Mapping) else None
        if isinstance(entity, str):
            if entity in seen_entities:
                reader.problem((*at, "saml", "entity_id"), f"duplicate entity ID {entity!r}")
            seen_entities.add(entity)
        if table is None or (saml_raw is not None and saml is None):
            continue
        services.append(
            Service(
                id=table.id,
                name_de=table.name_de,
                name_en=table.name_en or table.name_de,
                allowed_attributes=frozenset(Attribute(a) for a in table.attributes),
                required_attributes=frozenset(Attribute(a) for a in table.required),
                minimum_age=table.minimum_age,
                community_id=table.community_id,
                level_of_assurance=_LOA[table.level_of_assurance],
                saml=saml,
                methods=tuple(table.methods),
            )
        )
    reader.check()
    return tuple(services)
