"""The whole check of one wallet response as one pure function (tests, the benchmark, simple callers).

``web`` runs the same steps itself so that the status list is fetched asynchronously between them:
:func:`~eid_gateway.wallet.response.read_form`, :func:`~eid_gateway.wallet.sdjwt.verify_presentation`,
then :func:`~eid_gateway.wallet.statuslist.check_status` when the credential names a status list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from eid_gateway.wallet.errors import StatusUnavailable
from eid_gateway.wallet.response import read_form
from eid_gateway.wallet.sdjwt import StatusRef, VerifiedPid, verify_presentation
from eid_gateway.wallet.statuslist import check_status
from eid_gateway.wallet.trust import TrustList


def verify_wallet_response(
    form_body: Mapping[str, str],
    *,
    private_jwk_json: str,
    state: str,
    nonce: str,
    client_id: str,
    trust: TrustList,
    vct_values: Collection[str],
    now: int,
    status_token: Callable[[StatusRef], str] | None,
    query_id: str = "pid",
    max_kb_age: int = 300,
) -> VerifiedPid:
    """The verified PID of a ``direct_post.jwt`` form body, or the error naming the failed check.

    ``status_token`` supplies the status list token a credential names; without it such a credential
    is :class:`StatusUnavailable` (never accepted unchecked).
    """
    presentation = read_form(form_body, private_jwk_json=private_jwk_json, state=state, query_id=query_id)
    pid = verify_presentation(
        presentation,
        trust=trust,
        vct_values=list(vct_values),
        nonce=nonce,
        audience=client_id,
        now=now,
        max_kb_age=max_kb_age,
    )
    if pid.status is not None:
        if status_token is None:
            raise StatusUnavailable("the credential names a status list and none can be fetched")
        check_status(status_token(pid.status), pid.status, trust=trust, now=now)
    return pid
