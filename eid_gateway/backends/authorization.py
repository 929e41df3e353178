"""What the authorization certificate allows, checked against what the services are registered for.

The eID-Server can only ask the card for what the CHAT of the gateway's authorization certificate
grants; a service registered for more would fail at the card step for every citizen. So
``eid-gateway check-config`` refuses such a registration up front and warns while there is still time
to renew the certificate (the DV issues terminal certificates for a few months at a time).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eid_gateway.eid.chat import ATTRIBUTE_RIGHTS, grants, missing
from eid_gateway.identity import Attribute
from eid_gateway.services import Service
from tr03110.cvc import AccessRight, CvcError, CvCertificate, Role, TerminalType, load_cvc_file

EXPIRY_WARNING_DAYS: Final = 30
CONFIG_KEY: Final = "eid_server.authorization_certificate"


class Level(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem, named by the config key it concerns."""

    level: Level
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def check_authorization(
    cert: CvCertificate,
    services: Sequence[Service],
    today: datetime.date,
    *,
    warn_days: int = EXPIRY_WARNING_DAYS,
) -> list[Finding]:
    """Errors for attributes the CHAT does not grant and for an unusable certificate; a warning when
    the certificate expires within ``warn_days``."""
    found: list[Finding] = []
    chr_ = str(cert.holder_reference)
    chat = cert.chat
    if chat.terminal_type is not TerminalType.AUTHENTICATION_TERMINAL or chat.role is not Role.TERMINAL:
        found.append(
            Finding(
                Level.ERROR,
                CONFIG_KEY,
                f"{chr_} is not an authentication terminal certificate ({chat.terminal_type.name}, {chat.role.name})",
            )
        )
        return found
    if not chat.grants(AccessRight.RESTRICTED_IDENTIFICATION):
        found.append(
            Finding(
                Level.ERROR,
                CONFIG_KEY,
                f"{chr_} does not grant RESTRICTED_IDENTIFICATION, which every sign-in needs "
                "(the per-service pseudonym is derived from it)",
            )
        )
    for i, service in enumerate(services):
        for attribute in missing(chat, service.allowed_attributes):
            found.append(
                Finding(
                    Level.ERROR,
                    f"services[{i}].attributes",
                    f"service {service.id!r} is registered for {attribute.value!r}, which needs "
                    f"{ATTRIBUTE_RIGHTS[attribute].name}; the authorization certificate {chr_} does not grant it",
                )
            )
    if today > cert.expiration_date:
        found.append(Finding(Level.ERROR, CONFIG_KEY, f"{chr_} expired on {cert.expiration_date.isoformat()}"))
    elif today < cert.effective_date:
        found.append(Finding(Level.ERROR, CONFIG_KEY, f"{chr_} is valid only from {cert.effective_date.isoformat()}"))
    else:
        left = cert.days_left(today)
        if left <= warn_days:
            found.append(
                Finding(
                    Level.WARNING,
                    CONFIG_KEY,
                    f"{chr_} expires on {cert.expiration_date.isoformat()} (in {left} days): "
                    "request the next one from your DV now",
                )
            )
    return found


def granted_attributes(cert: CvCertificate) -> tuple[Attribute, ...]:
    """The gateway attributes this certificate lets the eID-Server read, in the enum's order."""
    return tuple(a for a in Attribute if grants(cert.chat, a))


def describe_file(cvc_path: Path, description_path: Path | None, today: datetime.date) -> list[str]:
    """``eid-gateway cvc show``: the certificate, what it grants, and its description (hash checked).

    Raises :class:`~tr03110.cvc.CvcError` for an unreadable or unbound file.
    """
    cert = load_cvc_file(cvc_path)
    lines = cert.describe()
    granted = granted_attributes(cert)
    lines.append("Gateway attributes granted: " + (", ".join(a.value for a in granted) or "none"))
    left = cert.days_left(today)
    lines.append(
        "Status: "
        + ("expired" if left < 0 else ("not yet valid" if today < cert.effective_date else f"valid, {left} days left"))
    )
    if description_path is not None:
        try:
            raw = description_path.read_bytes()
        except OSError as exc:
            raise CvcError(f"certificate description file {description_path} cannot be read: {exc.strerror}") from None
        if raw[:1] != b"\x30":
            try:
                raw = bytes.fromhex(raw.decode("ascii").strip())
            except (UnicodeDecodeError, ValueError):
                raise CvcError(f"{description_path} holds neither a binary nor a hex description") from None
        lines.append("Certificate description (hash matches the certificate):")
        lines += ["  " + line for line in cert.check_description(raw).describe()]
    return lines
