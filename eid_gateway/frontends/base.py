"""The ``Frontend`` port: what a service-facing protocol (SAML IdP, OIDC OP) plugs into the flow.

A frontend parses the service's request, checks it against the registry, and calls
:meth:`FlowStarter.begin` with a :class:`FlowStart` that carries its opaque per-protocol state; when the
card step ends the flow calls :meth:`Frontend.finish` or :meth:`Frontend.fail` with that state to answer
the service.
Adding a protocol touches one module that implements this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from eid_gateway.core.port import EidRequest, FailureKind
from eid_gateway.identity import Identity
from eid_gateway.services import Service


@dataclass(frozen=True)
class FlowContext:
    """What a frontend gets back when the flow ends."""

    ref: str
    service: Service
    frontend_state: Mapping[str, str]
    language: str


@dataclass(frozen=True)
class FlowStart:
    """What a frontend hands the flow when it begins: the service, the frontend's name and its opaque
    state (given back in :class:`FlowContext`), and what the card is asked for."""

    service: Service
    frontend: str
    frontend_state: Mapping[str, str]
    eid_request: EidRequest


class FlowStarter(Protocol):
    """Implemented by the flow manager; frontends call it to hand the citizen to the eID step."""

    async def begin(self, request: web.Request, start: FlowStart) -> web.StreamResponse:
        """Create the pending flow and answer with the redirect to the citizen start page."""
        ...


class Frontend(Protocol):
    """A protocol spoken towards the city's services."""

    name: str

    def routes(self) -> Sequence[web.RouteDef]:
        """The aiohttp routes of this frontend (metadata, SSO endpoints, ...)."""
        ...

    async def finish(
        self, request: web.Request, flow: FlowContext, identity: Identity, pseudonym: str
    ) -> web.StreamResponse:
        """Answer the service with the (already minimised) identity and its per-service pseudonym."""
        ...

    async def fail(self, request: web.Request, flow: FlowContext, failure: FailureKind) -> web.StreamResponse:
        """Answer the service with a protocol error (e.g. SAML Status AuthnFailed / RequestDenied)."""
        ...
