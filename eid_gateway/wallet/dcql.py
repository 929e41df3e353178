"""The DCQL query (OpenID4VP 1.0 §6) of one sign-in: the PID, asking only for the service's claims.

Minimisation happens before the wallet is asked: a claim the service is not registered for is not in
the query, so the wallet never offers it to the citizen. A query with no claims at all (a service that
receives only the pseudonym) omits ``claims``: the wallet then discloses nothing selectively and presents
the credential with its key binding only (OpenID4VP 1.0 §6.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eid_gateway.identity import Attribute
from eid_gateway.wallet.pid import FORMAT, PID_CLAIMS, age_path


def claim_paths(attributes: frozenset[Attribute], *, minimum_age: int | None) -> list[tuple[str, ...]]:
    """The claim paths for ``attributes`` in a stable order (the table's), without duplicates.

    AGE_VERIFICATION is answered only for a given minimum age (as on the card); a minimum age alone
    asks for it too (the service's age check, like ``EidRequest.minimum_age``).
    """
    paths: list[tuple[str, ...]] = []
    for attribute, attribute_paths in PID_CLAIMS.items():
        if attribute is Attribute.AGE_VERIFICATION:
            if minimum_age is not None:
                paths.append(age_path(minimum_age))
            continue
        if attribute in attributes:
            paths.extend(p for p in attribute_paths if p not in paths)
    return paths


def dcql_query(
    attributes: frozenset[Attribute],
    *,
    minimum_age: int | None,
    vct_values: Sequence[str],
    query_id: str = "pid",
) -> dict[str, Any]:
    """``{"credentials": [one PID query]}`` for ``attributes`` (already the service's registration)."""
    if not vct_values:
        raise ValueError("no accepted vct values")
    credential: dict[str, Any] = {
        "id": query_id,
        "format": FORMAT,
        "meta": {"vct_values": list(vct_values)},
    }
    paths = claim_paths(attributes, minimum_age=minimum_age)
    if paths:
        credential["claims"] = [{"path": list(p)} for p in paths]
    return {"credentials": [credential]}
