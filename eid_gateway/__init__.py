"""eid-gateway: eID sign-in (German ID card, BSI TR-03130 / TR-03124) for city services over SAML 2.0
and OpenID Connect."""

__version__ = "0.1.0"
