"""The demo city service "Bürgerportal Düren (Demo)": a SAML service provider that signs citizens in
through the gateway, using only the public ``saml`` API. Development and demonstration only."""

from eid_gateway.demo.app import create_demo_app

__all__ = ["create_demo_app"]
