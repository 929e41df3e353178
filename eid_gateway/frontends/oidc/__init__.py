"""The OpenID Connect provider frontend (issue 4): discovery, JWKS, authorize, token, userinfo."""

from eid_gateway.frontends.oidc.frontend import OidcFrontend, create_oidc_frontend
from eid_gateway.frontends.oidc.settings import OidcSettings, parse_oidc_settings

__all__ = ["OidcFrontend", "OidcSettings", "create_oidc_frontend", "parse_oidc_settings"]
