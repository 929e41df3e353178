"""``[branding]``: the operator's name, logo, colour and legal pages on every citizen page.

A German authority must link an Impressum (DDG § 5), a Datenschutzerklärung (GDPR Art. 13) and a
Barrierefreiheitserklärung (BITV 2.0 § 7) from every page; production refuses a config without the
first two, so a gateway cannot go live unpublishable. The colour is checked here, at config time,
against WCAG 2.1 AA (1.4.3, 4.5:1): it colours links on the white page and is the background of
buttons with white labels, so one ratio against white covers both. Without ``[branding]`` the pages
stay neutral (no operator, the gateway's own blue).

The table is read the one way every table is (:mod:`eid_gateway.settings_base`, a :class:`Section`
model): every problem at once, each naming its key. The logo is read once here and served from memory
beside the static files (:meth:`Branding.static_files`); an SVG with script, event handlers or
external references is refused (it is served from the gateway's own origin).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

from aiohttp import web
from lxml import etree
from pydantic import AfterValidator

from eid_gateway.settings_base import (
    ConfigError,
    FilePath,
    Problems,
    ReadContext,
    Section,
    Text,
    Url,
    problem,
    validate,
)

#: Page background and the label colour on primary buttons (style.css ``--bg`` / ``--accent-text``).
WHITE: Final = "#ffffff"
#: The neutral default accent (style.css ``--accent``): 8.4:1 against white.
DEFAULT_PRIMARY: Final = "#0b4f8a"
#: WCAG 2.1 SC 1.4.3 (AA) for normal text.
MIN_CONTRAST: Final = 4.5
MAX_LOGO_BYTES: Final = 256 * 1024
MAX_NAME_CHARS: Final = 120
#: Names the stylesheet and the logo are served under (``/static/<name>``, beside STATIC_DIR's files).
BRAND_CSS: Final = "brand.css"
LOGO_NAMES: Final = {".svg": ("operator-logo.svg", "image/svg+xml"), ".png": ("operator-logo.png", "image/png")}
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_SVG_NS: Final = "http://www.w3.org/2000/svg"
_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")
#: The footer's links in their order: (config key, text key in web.i18n.TEXTS).
LINKS: Final = (
    ("impressum_url", "link_impressum"),
    ("privacy_url", "link_privacy"),
    ("accessibility_url", "link_accessibility"),
    ("help_url", "link_help"),
)
_REQUIRED_IN_PRODUCTION: Final = ("impressum_url", "privacy_url")


class BrandingConfigError(ConfigError):
    """``[branding]`` is unusable; ``errors`` lists every problem, each naming its key."""


@dataclass(frozen=True)
class Logo:
    """The operator's logo file, read and checked at config time."""

    name: str
    content_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class Branding:
    """What the citizen pages show of the operator; the default is the neutral look."""

    operator_name: str | None = None
    logo: Logo | None = None
    primary_color: str = DEFAULT_PRIMARY
    impressum_url: str | None = None
    privacy_url: str | None = None
    accessibility_url: str | None = None
    help_url: str | None = None

    def links(self) -> list[tuple[str, str]]:
        """(text key, URL) of the configured footer links, in the order of :data:`LINKS`."""
        out: list[tuple[str, str]] = []
        for key, text_key in LINKS:
            url = getattr(self, key)
            if url:
                out.append((text_key, url))
        return out

    @property
    def logo_url(self) -> str | None:
        return f"/static/{self.logo.name}" if self.logo is not None else None

    def stylesheet(self) -> bytes:
        """``brand.css``: the operator's colour as the pages' accent (a file: the CSP allows no inline style)."""
        return f":root {{ --accent: {self.primary_color}; }}\n".encode("ascii")

    def static_files(self) -> dict[str, tuple[bytes, str]]:
        """Files served under ``/static/`` from memory: ``brand.css`` and the logo, if any."""
        files = {BRAND_CSS: (self.stylesheet(), "text/css")}
        if self.logo is not None:
            files[self.logo.name] = (self.logo.content, self.logo.content_type)
        return files


#: Where the composing app keeps the config's branding; pages read it through :func:`branding_of`.
BRANDING_KEY: Final = web.AppKey("branding", Branding)
NEUTRAL: Final = Branding()


#: A request aiohttp refused before routing it belongs to no application yet: the connection guard
#: (web.connections) puts the served application's branding on it under this key for the error page.
REQUEST_BRANDING: Final = web.RequestKey("branding", Branding)


def branding_of(request: web.BaseRequest) -> Branding:
    """The branding of the application serving ``request``; for a request not routed (aiohttp refused it
    before), the one the connection guard put on it; else the neutral look."""
    if isinstance(request, web.Request):
        try:
            return request.config_dict.get(BRANDING_KEY, NEUTRAL)
        except (AttributeError, AssertionError):  # not routed: aiohttp asserts there is a match
            pass
    found = request.get(REQUEST_BRANDING)
    return found if isinstance(found, Branding) else NEUTRAL


# --- colour contrast (WCAG 2.1, "relative luminance" and "contrast ratio") -------------------------------


def relative_luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    light, dark = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# --- the parser ------------------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    if len(value) > MAX_NAME_CHARS or any(ord(ch) < 32 for ch in value):
        raise problem(f"must be one line of at most {MAX_NAME_CHARS} characters")
    return value.strip()


def _color(value: str) -> str:
    if not _COLOR.fullmatch(value):
        raise problem('must be a colour as "#rrggbb"')
    color = value.lower()
    ratio = contrast_ratio(color, WHITE)
    if ratio < MIN_CONTRAST:
        raise problem(
            f"{color} has a contrast of {ratio:.2f}:1 against white (links on the page, white button "
            f"labels); WCAG 2.1 AA needs at least {MIN_CONTRAST}:1: choose a darker colour"
        )
    return color


def _check_svg(content: bytes) -> str | None:
    """Why this SVG must not be served from the gateway's origin, or None."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        return f"is not a well-formed SVG file ({exc.msg})"
    if root.tag != f"{{{_SVG_NS}}}svg":
        return "is not an SVG file (the root element must be <svg> in the SVG namespace)"
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        local = etree.QName(element).localname.lower()
        if local in ("script", "foreignobject", "iframe", "embed", "object"):
            return f"must not contain <{local}> (it is served from the gateway's own origin)"
        for name, raw in element.attrib.items():
            attr = etree.QName(name).localname.lower()
            value = str(raw)
            if attr.startswith("on"):
                return f"must not contain event handler attributes ({attr})"
            if attr == "href" and not (value.startswith("#") or value.startswith("data:image/")):
                return "must not refer to other files or URLs (href); embed everything"
    return None


def _load_logo(path: Path) -> Logo:
    kind = LOGO_NAMES.get(path.suffix.lower())
    if kind is None:
        raise problem(f"{path} must be an .svg or .png file")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise problem(f"cannot read {path} ({exc.strerror})") from None
    if len(content) > MAX_LOGO_BYTES:
        raise problem(f"{path} is larger than {MAX_LOGO_BYTES // 1024} KB")
    if kind[1] == "image/png":
        trouble = None if content.startswith(PNG_SIGNATURE) else "is not a PNG file"
    else:
        trouble = _check_svg(content)
    if trouble is not None:
        raise problem(f"{path} {trouble}")
    return Logo(kind[0], kind[1], content)


class BrandingTable(Section):
    """``[branding]`` as written."""

    operator_name: Annotated[Text, AfterValidator(_one_line)] | None = None
    logo: Annotated[FilePath, AfterValidator(_load_logo)] | None = None
    primary_color: Annotated[str, AfterValidator(_color)] = DEFAULT_PRIMARY
    impressum_url: Url | None = None
    privacy_url: Url | None = None
    accessibility_url: Url | None = None
    help_url: Url | None = None

    @classmethod
    def check_raw(cls, raw: Mapping[str, Any], problems: Problems, context: ReadContext) -> None:
        if context.production:
            for key in _REQUIRED_IN_PRODUCTION:
                if key not in raw:
                    problems.add(
                        key,
                        "is required in production (German public websites must link an Impressum "
                        "and a Datenschutzerklärung from every page)",
                    )


def parse_branding(data: Mapping[str, Any], base_dir: Path, *, production: bool) -> Branding:
    """``[branding]`` of the parsed TOML document ``data``; raises :class:`BrandingConfigError` with every
    problem. Relative logo paths are resolved against ``base_dir`` (the config file's directory)."""
    try:
        table = validate(BrandingTable, data.get("branding", {}), ReadContext(base_dir, production), ("branding",))
    except ConfigError as exc:
        raise BrandingConfigError(exc.errors) from None
    logo = table.logo
    return Branding(
        operator_name=table.operator_name,
        logo=logo if isinstance(logo, Logo) else None,
        primary_color=table.primary_color,
        impressum_url=table.impressum_url,
        privacy_url=table.privacy_url,
        accessibility_url=table.accessibility_url,
        help_url=table.help_url,
    )


#: The placeholder logo of the demo configuration (no real coat of arms), written by ``init``.
DEMO_LOGO: Final = Path(__file__).parent / "assets" / "demo-logo.svg"


def write_demo_logo(directory: Path) -> Path:
    """Copy the demo's placeholder logo to ``directory/branding/logo.svg`` (what ``init`` configures)."""
    target = directory / "branding" / "logo.svg"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(DEMO_LOGO.read_bytes())
    return target
