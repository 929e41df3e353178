"""A stand-in for AusweisApp (TEST FACILITY): fetch the TC Token, do the card step, name the next URL.

Tests and the browser stand-in page use :func:`run_simulated_client`; like AusweisApp it checks the TC
Token's content type and schema, performs the card step at the token's ServerAddress (here a form
POST to the simulator instead of PAOS + TLS-PSK), and returns where the browser must go next: the
RefreshAddress with ResultMajor / ResultMinor appended, or the CommunicationErrorAddress.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import aiohttp

from eid_gateway.eid.errors import TcTokenError
from eid_gateway.eid.results import MAJOR_OK, REFRESH_ERROR, REFRESH_OK, refresh_minor
from eid_gateway.eid.tctoken import ErrorTcToken, communication_error_url, parse_tc_token, refresh_url

MAX_TOKEN_BYTES: Final = 16 * 1024


class SimulatedClientError(Exception):
    """The TC Token could not be fetched or is invalid, and it names nowhere to send the browser.

    ``refused``: the tcTokenURL answered with a 4xx (an unknown, expired or used address), so the
    address given was at fault rather than the server behind it.
    """

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


async def _fetch_token(http: aiohttp.ClientSession, tc_token_url: str) -> bytes:
    try:
        async with http.get(tc_token_url, max_redirects=5) as resp:
            if resp.status != 200:
                raise SimulatedClientError(f"tcTokenURL answered HTTP {resp.status}", refused=400 <= resp.status < 500)
            if resp.content_type != "text/xml" or (resp.charset or "").lower() != "utf-8":
                raise SimulatedClientError("TC Token is not served as text/xml; charset=utf-8")
            chunks: list[bytes] = []
            async for chunk in resp.content.iter_chunked(4096):
                chunks.append(chunk)
                if sum(map(len, chunks)) > MAX_TOKEN_BYTES:
                    raise SimulatedClientError("TC Token is too large")
            return b"".join(chunks)
    except aiohttp.ClientError as exc:
        raise SimulatedClientError(f"tcTokenURL cannot be fetched: {type(exc).__name__}") from None


async def run_simulated_client(
    http: aiohttp.ClientSession,
    tc_token_url: str,
    *,
    identity: str = "erika",
    pin: str = "123456",
    cancel: bool = False,
    deselect: Collection[str] = (),
) -> str:
    """Play AusweisApp for one sign-in; return the URL the browser must be sent to."""
    data = await _fetch_token(http, tc_token_url)
    try:
        token = parse_tc_token(data)
    except TcTokenError as exc:
        raise SimulatedClientError(f"invalid TC Token: {exc.code}") from None
    if isinstance(token, ErrorTcToken):
        return communication_error_url(token.communication_error_address)
    form = aiohttp.FormData()
    form.add_field("SessionIdentifier", token.session_identifier)
    form.add_field("identity", identity)
    form.add_field("pin", pin)
    form.add_field("action", "cancel" if cancel else "confirm")
    for name in deselect:
        form.add_field("deselect", name)
    try:
        async with http.post(token.server_address, data=form, allow_redirects=False) as resp:
            if resp.status != 200 or resp.content_type != "application/json":
                return refresh_url(token.refresh_address, REFRESH_ERROR, "serverError")
            answer = await resp.json()
    except (aiohttp.ClientError, ValueError):
        return refresh_url(token.refresh_address, REFRESH_ERROR, "trustedChannelEstablishmentFailed")
    major = answer.get("result_major") if isinstance(answer, dict) else None
    minor = answer.get("result_minor") if isinstance(answer, dict) else None
    if major == MAJOR_OK:
        return refresh_url(token.refresh_address, REFRESH_OK)
    return refresh_url(token.refresh_address, REFRESH_ERROR, refresh_minor(minor if isinstance(minor, str) else None))
