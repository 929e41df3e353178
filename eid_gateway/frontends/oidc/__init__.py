"""The OpenID Connect provider frontend (issue 4): discovery, JWKS, authorize, token, userinfo.

The frontend is imported on first use (PEP 562), so that the config, which reads
:mod:`eid_gateway.frontends.oidc.settings`, does not import the frontend (and the flow and web layers
it depends on) with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eid_gateway.frontends.oidc.settings import OidcSettings, parse_oidc_settings

if TYPE_CHECKING:
    from eid_gateway.frontends.oidc.frontend import OidcFrontend, create_oidc_frontend

__all__ = ["OidcFrontend", "OidcSettings", "create_oidc_frontend", "parse_oidc_settings"]


def __getattr__(name: str) -> Any:
    if name in ("OidcFrontend", "create_oidc_frontend"):
        from eid_gateway.frontends.oidc import frontend

        return getattr(frontend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
