"""The TR-03130 eID-Interface client: the :class:`~eid_gateway.core.port.EidServer` port over SOAP.

Every request is signed with the gateway's key (WS-Security), every answer verified against the one
configured eID-Server certificate before anything in it is read. Failures become exactly one of the
port's exception types: unreachable / too slow -> :class:`EidServerUnavailable`; malformed, unsigned,
forged or a SOAP Fault -> :class:`EidProtocolError`; a proper error result -> :class:`EidResultError`;
``noResultYet`` -> :class:`ResultNotReady`. useID is never retried (a retry could open a second
session whose card step nobody performs).
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import aiohttp
from cryptography import x509
from lxml import etree

from eid_gateway.backends.tls import EidNotDelivered, EidTlsError, classify_connection_error, diagnose_reset
from eid_gateway.core.port import (
    EidProtocolError,
    EidRequest,
    EidResultError,
    EidServerUnavailable,
    EidSession,
    ResultNotReady,
    ServerInfo,
)
from eid_gateway.eid.errors import EidMessageError, SoapFaultError, TimestampError, WsSecurityError
from eid_gateway.eid.mapping import identity_from_result, use_id_request
from eid_gateway.eid.messages import (
    SOAP_ACTION_GET_RESULT,
    SOAP_ACTION_GET_SERVER_INFO,
    SOAP_ACTION_USE_ID,
    SOAP_CONTENT_TYPE,
    GetResultRequest,
    Psk,
    body_payload,
    build_get_result_request,
    build_get_server_info_request,
    build_use_id_request,
    parse_get_result_response,
    parse_get_server_info_response,
    parse_use_id_response,
    soap_envelope,
    split_envelope,
)
from eid_gateway.eid.results import failure_kind
from eid_gateway.eid.wssec import sign_envelope, verify_envelope
from eid_gateway.identity import Identity
from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.errors import XmlSecurityError
from saml.keys import KeyPair
from saml.xml import MAX_DOCUMENT_BYTES, parse_xml

log = logging.getLogger(__name__)

_UNAVAILABLE_STATUS: Final = frozenset({502, 503, 504})


@asynccontextmanager
async def http_errors(
    what: str, url: str, tls: ssl.SSLContext | bool, server_hostname: str | None
) -> AsyncIterator[None]:
    """aiohttp's failures on a request to the eID-Server (``what``, for the message) as the port's
    errors: no connection in time -> :class:`EidNotDelivered`, no answer in time ->
    :class:`EidServerUnavailable`, a connection or TLS failure -> its classification (a reset under
    mutual TLS is diagnosed), a broken answer -> :class:`EidProtocolError`."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise EidNotDelivered("eID-Server did not accept a connection in time") from exc
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise EidServerUnavailable(f"eID-Server did not answer {what} in time") from exc
    except (aiohttp.ClientConnectionError, OSError) as exc:
        error = classify_connection_error(exc)
        if not isinstance(error, EidNotDelivered) and isinstance(tls, ssl.SSLContext):
            error = await diagnose_reset(url, tls, server_hostname=server_hostname) or error
        if isinstance(error, EidTlsError):
            log.warning("eID-Server TLS failure: %s", error)
        raise error from exc
    except aiohttp.ClientError as exc:
        raise EidProtocolError(f"broken HTTP answer from eID-Server: {type(exc).__name__}") from exc


class Tr03130Client:
    """One eID-Server reached over the TR-03130 SOAP interface.

    ``ssl_context`` is for mutual TLS (client certificate + pinned server CA), ``None`` = aiohttp's
    default verification. ``send_psk`` makes the gateway choose the TLS-2 PSK itself (sent in useID);
    the server must echo it unchanged.
    """

    def __init__(
        self,
        url: str,
        gateway_key: KeyPair,
        server_cert: x509.Certificate,
        timeout: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        *,
        connect_timeout: float | None = 5.0,
        signature_algorithm: str | None = None,
        policy: AlgorithmPolicy = DEFAULT_POLICY,
        send_psk: bool = True,
        default_server_address: str | None = None,
        server_hostname: str | None = None,
    ):
        self.url = url
        self._key = gateway_key
        self._server_cert = server_cert
        self._timeout = aiohttp.ClientTimeout(
            total=timeout, connect=min(connect_timeout, timeout) if connect_timeout else None
        )
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._algorithm = signature_algorithm
        self._policy = policy
        self._send_psk = send_psk
        self._default_server_address = default_server_address
        self._server_hostname = server_hostname  # the TLS name to check, when not the URL's host
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- transport --------------------------------------------------------------------------------------

    async def _post(self, action: str, body: bytes) -> tuple[int, str, bytes]:
        headers = {"Content-Type": SOAP_CONTENT_TYPE, "SOAPAction": f'"{action}"'}
        async with (
            http_errors(action.rsplit("/", 1)[-1], self.url, self._ssl, self._server_hostname),
            self._session().post(
                self.url,
                data=body,
                headers=headers,
                ssl=self._ssl,
                timeout=self._timeout,
                server_hostname=self._server_hostname,
            ) as resp,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > MAX_DOCUMENT_BYTES:
                    raise EidProtocolError("eID-Server answer is too large")
                chunks.append(chunk)
            return resp.status, resp.content_type, b"".join(chunks)

    async def _call(self, action: str, payload: etree._Element) -> etree._Element:
        """Sign, send, and return the verified response payload element."""
        request = sign_envelope(soap_envelope(payload), self._key, algorithm=self._algorithm, policy=self._policy)
        status, content_type, data = await self._post(action, request)
        operation = action.rsplit("/", 1)[-1]
        if status in _UNAVAILABLE_STATUS:
            raise EidServerUnavailable(f"eID-Server answered {operation} with HTTP {status}")
        if content_type != "text/xml":
            raise EidProtocolError(f"eID-Server answered {operation} with HTTP {status}, {content_type or 'no type'}")
        try:
            root = parse_xml(data)
            env = split_envelope(root)
            body_payload(env.body)  # a Fault is reported as such, signed or not
            if status != 200:
                raise EidProtocolError(f"eID-Server answered {operation} with HTTP {status}")
            body = verify_envelope(root, self._server_cert, policy=self._policy)
            return body_payload(body)
        except SoapFaultError as exc:
            log.warning("eID-Server SOAP fault on %s: %s", operation, exc.faultcode)
            raise EidProtocolError(f"eID-Server answered {operation} with a SOAP fault ({exc.faultcode})") from None
        except (WsSecurityError, TimestampError) as exc:
            log.warning("eID-Server answer to %s refused: %s", operation, exc.code)
            raise EidProtocolError(f"eID-Server answer to {operation} refused: {exc.code}") from None
        except (XmlSecurityError, EidMessageError) as exc:
            raise EidProtocolError(f"eID-Server answer to {operation} is malformed: {exc.code}") from None

    # --- the port -----------------------------------------------------------------------------------------

    async def start_session(self, request: EidRequest) -> EidSession:
        psk = Psk(secrets.token_hex(16), secrets.token_hex(32)) if self._send_psk else None
        use_id = use_id_request(request, psk)  # MappingError (a ValueError) is the caller's bug: not caught
        payload = await self._call(SOAP_ACTION_USE_ID, build_use_id_request(use_id))
        try:
            resp = parse_use_id_response(payload)
        except EidMessageError as exc:
            raise EidProtocolError(f"malformed useIDResponse: {exc.code}") from None
        if not resp.result.ok:
            log.info("useID refused: %s", resp.result.minor)
            raise EidResultError(failure_kind(resp.result.minor), resp.result.minor, resp.result.message)
        if resp.session_id is None or resp.psk is None:  # parse_use_id_response already refuses this
            raise EidProtocolError("useIDResponse lacks Session or PSK")
        if psk is not None and resp.psk != psk:
            raise EidProtocolError("eID-Server answered useID with a PSK other than the one sent")
        address = resp.ecard_server_address or self._default_server_address
        if not address:
            raise EidProtocolError("useIDResponse names no eCardServerAddress and none is configured")
        return EidSession(resp.session_id, address, resp.psk.id, resp.psk.key)

    async def fetch_result(self, session: EidSession, request_counter: int) -> Identity:
        payload = await self._call(
            SOAP_ACTION_GET_RESULT, build_get_result_request(GetResultRequest(session.session_id, request_counter))
        )
        try:
            resp = parse_get_result_response(payload)
        except EidMessageError as exc:
            raise EidProtocolError(f"malformed getResultResponse: {exc.code}") from None
        if resp.result.no_result_yet:
            raise ResultNotReady("the card step has not finished")
        if not resp.result.ok:
            log.info("getResult error: %s", resp.result.minor)
            raise EidResultError(failure_kind(resp.result.minor), resp.result.minor, resp.result.message)
        return identity_from_result(resp, authenticated_at=datetime.now(UTC))

    async def server_info(self) -> ServerInfo:
        payload = await self._call(SOAP_ACTION_GET_SERVER_INFO, build_get_server_info_request())
        try:
            info = parse_get_server_info_response(payload)
        except EidMessageError as exc:
            raise EidProtocolError(f"malformed getServerInfoResponse: {exc.code}") from None
        return ServerInfo(info.version_string, dict(info.rights))
