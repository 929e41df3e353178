"""A test EUDI wallet and test PID provider (TEST FACILITY: fictitious people, development keys only).

``eid-gateway wallet-sim`` runs them as a separate process: it issues PIDs in SD-JWT VC format with the
IETF reference library (``sd-jwt``), answers OpenID4VP requests as a wallet would (same-device page,
cross-device ``POST /present``), serves its Token Status List and its CA certificate (the gateway's trust
list in tests and the demo). The gateway's verifier (``eid_gateway.wallet``) is thereby checked against
code it did not write; nothing in the gateway imports this package.
"""
