"""Fixtures for the SAML IdP frontend: a config from the real `init` path, services registered in it,
the frontend served by aiohttp's test server with a recording flow starter (the port the flow manager
implements), and a service provider that builds requests the way a city service would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from eid_gateway.config import GatewayConfig, load_config
from eid_gateway.core.port import EidRequest
from eid_gateway.frontends.base import FlowStart
from eid_gateway.frontends.saml_idp import SamlIdpFrontend
from eid_gateway.identity import Attribute
from eid_gateway.instance import write_example_config
from eid_gateway.services import SamlServiceSettings, Service, ServiceRegistry
from eid_gateway.store.sqlite import SqliteStore
from saml import KeyPair, generate_key_pair

from .helpers import OPEN_ACS, OPEN_ENTITY, ORIGIN, SP_ACS, SP_ACS_2, SP_ENTITY


@dataclass(frozen=True)
class Keys:
    sp: KeyPair
    other: KeyPair
    sp_enc: KeyPair


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(generate_key_pair("ec-p256"), generate_key_pair("ec-p256"), generate_key_pair("rsa-3072"))


@pytest.fixture(scope="session")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> GatewayConfig:
    directory: Path = tmp_path_factory.mktemp("instance")
    return load_config(write_example_config(directory, ORIGIN, 8080))


def make_service(
    keys: Keys,
    *,
    entity_id: str = SP_ENTITY,
    acs: tuple[str, ...] = (SP_ACS, SP_ACS_2),
    require_signed: bool = True,
    encrypt: bool = False,
    sid: str = "portal",
    key_transport: str = "rsa-oaep",
    attributes: frozenset[Attribute] = frozenset(
        {
            Attribute.GIVEN_NAMES,
            Attribute.FAMILY_NAMES,
            Attribute.DATE_OF_BIRTH,
            Attribute.ADDRESS,
            Attribute.PSEUDONYM,
        }
    ),
) -> Service:
    return Service(
        id=sid,
        name_de="Bürgerportal",
        name_en="Citizens' portal",
        allowed_attributes=attributes,
        required_attributes=frozenset({Attribute.FAMILY_NAMES, Attribute.GIVEN_NAMES}) & attributes,
        saml=SamlServiceSettings(
            entity_id=entity_id,
            acs_urls=acs,
            signing_certs=(keys.sp.certificate,),
            encryption_cert=keys.sp_enc.certificate if encrypt else None,
            require_signed_requests=require_signed,
            encrypt_assertions=encrypt,
            key_transport=key_transport,
        ),
    )


@pytest.fixture(scope="session")
def config(base_config: GatewayConfig, keys: Keys) -> GatewayConfig:
    services = (
        make_service(keys),
        make_service(keys, entity_id=OPEN_ENTITY, acs=(OPEN_ACS,), require_signed=False, sid="open"),
        make_service(
            keys,
            entity_id="https://sealed.example.de/saml",
            acs=("https://sealed.example.de/acs",),
            encrypt=True,
            sid="sealed",
        ),
        make_service(
            keys,
            entity_id="https://sealed-1-0.example.de/saml",
            acs=("https://sealed-1-0.example.de/acs",),
            encrypt=True,
            sid="sealed-1-0",
            key_transport="rsa-oaep-mgf1p",
        ),
    )
    return replace(base_config, services=ServiceRegistry(services))


@dataclass
class Begun:
    service: Service
    frontend: str
    state: Mapping[str, str]
    eid_request: EidRequest


@dataclass
class RecordingFlows:
    """Implements the FlowStarter port: records what the frontend hands over, answers like the flow."""

    begun: list[Begun] = field(default_factory=list)

    async def begin(self, request: web.Request, start: FlowStart) -> web.StreamResponse:
        self.begun.append(Begun(start.service, start.frontend, dict(start.frontend_state), start.eid_request))
        return web.Response(status=303, headers={"Location": "/signin/test-ref"})


@dataclass
class Harness:
    client: TestClient[web.Request, web.Application]
    frontend: SamlIdpFrontend
    flows: RecordingFlows
    config: GatewayConfig
    keys: Keys


@pytest.fixture
async def harness(aiohttp_client: Any, config: GatewayConfig, keys: Keys, tmp_path: Path) -> Harness:
    store = SqliteStore(tmp_path / "store.sqlite3")
    flows = RecordingFlows()
    frontend = SamlIdpFrontend(config, flows, store)
    app = web.Application()
    app.add_routes(frontend.routes())

    async def close(app: web.Application) -> None:
        await store.close()

    app.on_cleanup.append(close)
    client = await aiohttp_client(app)
    return Harness(client, frontend, flows, config, keys)
