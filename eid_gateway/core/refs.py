"""How logs and audit records name a flow: flow references are bearer secrets, so never themselves."""

from __future__ import annotations

import hashlib


def ref_hash(ref: str) -> str:
    """What logs and audit records use instead of the flow reference."""
    return hashlib.sha256(ref.encode("ascii", "replace")).hexdigest()[:16]
