"""Fuzzing the eID-Server SAML interface's own parsers (on top of the SAML toolkit): the decrypted
``eid:AuthnRequestExtension`` a server reads, and the attributes of a verified assertion the gateway
reads. Their one declared error type is SamlInterfaceError."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from dataclasses import replace

from eid_gateway.backends.saml_interface import (
    SamlInterfaceError,
    build_request_extension,
    parse_request_extension,
    result_attributes,
    result_from_attributes,
)
from eid_gateway.eid.messages import Permission, Selection, UseIDRequest
from helpers.eid_samples import ERIKA_RESULT, USE_ID_REQUEST
from saml.errors import XmlSecurityError
from saml.xml import parse_xml, to_bytes

from .mutate import INTERESTING_TEXT, fuzz, json_mutants, xml_mutants


def test_request_extension() -> None:
    requests = [
        replace(
            USE_ID_REQUEST,
            operations={
                "GivenNames": Selection.REQUIRED,
                "AgeVerification": Selection.REQUIRED,
                "PlaceVerification": Selection.ALLOWED,
            },
            transaction_info="Anmeldung",
            level_of_assurance="http://bsi.bund.de/eID/LoA/hoch",
            psk=None,
        ),
        UseIDRequest(operations={"RestrictedID": Selection.REQUIRED}),
    ]
    samples = [to_bytes(build_request_extension(r)) for r in requests]

    def parse(data: bytes) -> object:
        return parse_request_extension(parse_xml(data))

    tally = fuzz(
        "backends.saml_interface.parse_request_extension",
        parse,
        xml_mutants(samples, 1500, seed=61),
        (SamlInterfaceError, XmlSecurityError),
    )
    tally.check(min_inputs=1500)


def _attribute_mutants(sample: dict[str, list[str]], count: int, seed: int) -> Iterator[dict[str, list[str]]]:
    """The shape a validated assertion gives (name -> values), with names dropped, values replaced,
    repeated or added, and place values (JSON inside an attribute) mutated as JSON."""
    rng = random.Random(seed)
    yield sample
    names = sorted(sample)
    places = [n for n in names if sample[n] and sample[n][0].startswith("{")]
    for _ in range(count - 1):
        attributes = copy.deepcopy(sample)
        for _ in range(rng.choice((1, 1, 2, 3))):
            name = rng.choice(names)
            op = rng.randrange(6)
            if op == 0:
                attributes.pop(name, None)
            elif op == 1:
                attributes[name] = attributes.get(name, []) * 2 or [""]
            elif op == 2:
                attributes[name] = []
            elif op == 3 and places:  # a place attribute: JSON inside the attribute value
                place = rng.choice(places)
                attributes[place] = [
                    list(json_mutants([json.loads(sample[place][0])], 2, rng.randrange(2**32)))[-1].decode(
                        "utf-8", "replace"
                    )
                ]
            elif op == 4:
                attributes[rng.choice((name, "urn:x:unknown", "GivenNames"))] = [rng.choice(INTERESTING_TEXT)]
            else:
                attributes[name] = [rng.choice(INTERESTING_TEXT)]
        yield attributes


def test_result_attributes() -> None:
    response = replace(ERIKA_RESULT, operations_allowed_by_user={"BirthName": Permission.NOTONCHIP}, eid_type_used=None)
    sample: dict[str, list[str]] = {}
    for attribute in result_attributes(response):
        sample.setdefault(attribute.name, []).extend(attribute.values)
    tally = fuzz(
        "backends.saml_interface.result_from_attributes",
        result_from_attributes,
        _attribute_mutants(sample, 1500, seed=62),
        (SamlInterfaceError,),
    )
    tally.check(min_inputs=1500)
