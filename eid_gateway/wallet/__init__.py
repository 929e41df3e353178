"""The EUDI wallet backend: an OpenID4VP 1.0 verifier for the PID in SD-JWT VC (issue 18).

The verifier core (request object, DCQL, encrypted response, SD-JWT VC + key binding, status list,
mapping to the one Identity) is pure functions; ``status_fetch`` and ``web`` are the I/O around them.
See docs/wallet.md.
"""
