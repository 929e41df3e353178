"""A misbehaving eID-Server: the real simulator, with one operation answered badly on purpose."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from certs.loading import load_key_pair_file
from eid_gateway.eid.messages import (
    GetResultResponse,
    Result,
    UseIDResponse,
    build_get_result_response,
    build_use_id_response,
    soap_envelope,
)
from eid_gateway.eid.results import MAJOR_ERROR
from eid_gateway.eid.wssec import sign_envelope
from eid_gateway.simulator import Simulator, SimulatorConfig

GET_RESULT = "http://bsi.bund.de/eID/getResult"
USE_ID = "http://bsi.bund.de/eID/useID"


class Fault(enum.Enum):
    NONE = "none"
    SLOW = "slow"  # answers long after the client's timeout
    RESET = "reset"  # starts an answer, then drops the connection
    MALFORMED = "malformed"  # not well-formed XML
    FORGED = "forged"  # the real, signed answer with one value changed afterwards
    ERROR_503 = "503"  # HTTP 503
    RESULT_MINOR = "minor"  # a properly signed error result with ``minor``


@dataclass
class FaultyServer:
    """Serves the simulator at ``prefix``; ``fault`` hits the operation named by ``on`` (its SOAPAction)."""

    fault: Fault = Fault.NONE
    on: str = GET_RESULT
    minor: str | None = None
    slow_seconds: float = 5.0
    calls: list[str] = field(default_factory=list)
    simulator: Simulator | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self, origin: str, instance: Path, prefix: str = "/eid-sim") -> Simulator:
        """The simulator with the gateway instance's keys (its signing key, the gateway's client cert)."""
        certs = instance / "certs"
        sim_pair = load_key_pair_file(certs / "simulator.key", certs / "simulator.crt")
        gateway = load_key_pair_file(certs / "eid-client.key", certs / "eid-client.crt")
        self.simulator = Simulator(
            SimulatorConfig(public_origin=origin, key=sim_pair, gateway_cert=gateway.certificate), prefix
        )
        return self.simulator

    def app(self, prefix: str = "/eid-sim") -> web.Application:
        app = web.Application()
        app.router.add_post(prefix + "/eID", self.soap)
        app.router.add_post(prefix + "/paos", self.card_step)
        return app

    async def card_step(self, request: web.Request) -> web.Response:
        assert self.simulator is not None
        return await self.simulator.card_step(request)

    async def soap(self, request: web.Request) -> web.StreamResponse:
        assert self.simulator is not None
        action = request.headers.get("SOAPAction", "").strip('"')
        self.calls.append(action.rsplit("/", 1)[-1])
        if self.fault is Fault.NONE or action != self.on:
            return await self.simulator.soap(request)
        if self.fault is Fault.SLOW:
            try:
                await asyncio.wait_for(self.released.wait(), self.slow_seconds)
            except TimeoutError:
                pass
            return await self.simulator.soap(request)
        if self.fault is Fault.RESET:
            response = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8"})
            response.content_length = 5000
            await response.prepare(request)
            await response.write(b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas')
            assert request.transport is not None
            request.transport.abort()
            return response
        if self.fault is Fault.MALFORMED:
            return web.Response(
                body=b"<soapenv:Envelope><soapenv:Body><unclosed></soapenv:Body>", content_type="text/xml"
            )
        if self.fault is Fault.ERROR_503:
            return web.Response(status=503, text="maintenance")
        if self.fault is Fault.FORGED:
            real = await self.simulator.soap(request)
            assert isinstance(real.body, bytes)
            forged = real.body.replace(b"MUSTERMANN", b"MALLORY")
            assert forged != real.body
            return web.Response(body=forged, content_type="text/xml", charset="utf-8")
        assert self.fault is Fault.RESULT_MINOR and self.minor is not None
        await request.read()
        if action == USE_ID:
            payload = build_use_id_response(UseIDResponse(Result(MAJOR_ERROR, self.minor)))
        else:
            payload = build_get_result_response(GetResultResponse(Result(MAJOR_ERROR, self.minor)))
        body = sign_envelope(soap_envelope(payload), self.simulator.config.key)
        return web.Response(body=body, content_type="text/xml", charset="utf-8")
