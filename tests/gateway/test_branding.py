"""``[branding]``: the operator's name, logo, colour (WCAG AA at config time) and legal links; production
refuses a gateway without Impressum and Datenschutzerklärung; without the table the look stays neutral."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_gateway.config import ConfigError, load_config
from eid_gateway.web.branding import (
    DEFAULT_PRIMARY,
    DEMO_LOGO,
    PNG_SIGNATURE,
    Branding,
    BrandingConfigError,
    contrast_ratio,
    parse_branding,
)

from .conftest import write_variant

URLS = {
    "impressum_url": "https://www.dueren.example/impressum",
    "privacy_url": "https://www.dueren.example/datenschutz",
}


def _errors(table: object, base_dir: Path, *, production: bool = False) -> list[str]:
    with pytest.raises(BrandingConfigError) as caught:
        parse_branding({"branding": table}, base_dir, production=production)
    return caught.value.errors


def test_wcag_contrast_ratios() -> None:
    # the reference values: black on white 21:1, #767676 the lightest grey that passes AA on white
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#ffffff") < 4.5
    assert contrast_ratio("#0b4f8a", "#ffffff") == contrast_ratio("#ffffff", "#0b4f8a")


def test_a_colour_below_aa_against_white_is_refused_at_config_time(tmp_path: Path) -> None:
    [error] = _errors({"primary_color": "#777777"}, tmp_path)
    assert error.startswith("branding.primary_color: #777777 has a contrast of 4.48:1 against white")
    assert "WCAG 2.1 AA needs at least 4.5:1" in error
    assert (
        parse_branding({"branding": {"primary_color": "#767676"}}, tmp_path, production=False).primary_color
        == "#767676"
    )
    assert _errors({"primary_color": "red"}, tmp_path) == ['branding.primary_color: must be a colour as "#rrggbb"']


def test_without_branding_the_look_is_neutral(tmp_path: Path) -> None:
    neutral = parse_branding({}, tmp_path, production=False)
    assert neutral == Branding()
    assert neutral.operator_name is None and neutral.logo is None and neutral.links() == []
    assert neutral.primary_color == DEFAULT_PRIMARY
    assert neutral.static_files() == {"brand.css": (b":root { --accent: #0b4f8a; }\n", "text/css")}


def test_production_refuses_a_config_without_impressum_and_datenschutz(tmp_path: Path) -> None:
    errors = _errors({"operator_name": "Stadt Düren"}, tmp_path, production=True)
    assert [e.split(":", 1)[0] for e in errors] == ["branding.impressum_url", "branding.privacy_url"]
    assert "is required in production" in errors[0]
    with pytest.raises(BrandingConfigError) as caught:
        parse_branding({}, tmp_path, production=True)
    assert len(caught.value.errors) == 2
    # http links only in development; with both links production is satisfied
    assert _errors(
        {"impressum_url": "http://x.example/i", "privacy_url": URLS["privacy_url"]}, tmp_path, production=True
    ) == ["branding.impressum_url: must be an absolute https URL"]
    ok = parse_branding({"branding": URLS}, tmp_path, production=True)
    assert ok.links() == [("link_impressum", URLS["impressum_url"]), ("link_privacy", URLS["privacy_url"])]


def test_the_whole_config_names_the_missing_links_in_production(instance: Path, example_toml: str) -> None:
    start, end = example_toml.index("[branding]\n"), example_toml.index("[demo]\n")
    text = (example_toml[:start] + example_toml[end:]).replace('mode = "development"', 'mode = "production"')
    with pytest.raises(ConfigError) as caught:
        load_config(write_variant(instance, text, "production-unbranded"))
    named = {e.split(":", 1)[0] for e in caught.value.errors}
    assert {"branding.impressum_url", "branding.privacy_url"} <= named
    # in development the same file loads, neutral
    dev = load_config(write_variant(instance, example_toml[:start] + example_toml[end:], "unbranded"))
    assert dev.branding == Branding()


def test_the_demo_config_brands_the_gateway_as_stadt_dueren(instance: Path) -> None:
    config = load_config(instance / "gateway.toml")
    branding = config.branding
    assert branding.operator_name == "Stadt Düren (Demo)"
    assert branding.logo is not None and branding.logo.content == DEMO_LOGO.read_bytes()
    assert branding.logo_url == "/static/operator-logo.svg"
    assert contrast_ratio(branding.primary_color, "#ffffff") >= 4.5
    assert [key for key, _ in branding.links()] == ["link_impressum", "link_privacy", "link_accessibility", "link_help"]
    assert all(url.startswith(config.public_origin + "/demo/legal/") for _, url in branding.links())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "must not contain <script>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "event handler attributes (onload)"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
            b'<image x:href="https://tracker.example/p.png"/></svg>',
            "must not refer to other files",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>', "must not contain <foreignobject>"),
        (b"<html/>", "is not an SVG file"),
        (b"<svg", "is not a well-formed SVG file"),
    ],
)
def test_an_svg_logo_that_could_act_on_the_gateways_origin_is_refused(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "logo.svg").write_bytes(content)
    [error] = _errors({"logo": "logo.svg"}, tmp_path)
    assert error.startswith(f"branding.logo: {tmp_path / 'logo.svg'} ") and problem in error


def test_logo_files(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(PNG_SIGNATURE + b"\0" * 16)
    logo = parse_branding({"branding": {"logo": "logo.png"}}, tmp_path, production=False).logo
    assert logo is not None and (logo.name, logo.content_type) == ("operator-logo.png", "image/png")
    (tmp_path / "fake.png").write_bytes(b"GIF89a")
    (tmp_path / "logo.gif").write_bytes(b"GIF89a")
    (tmp_path / "big.svg").write_bytes(b"<svg/>" + b" " * (256 * 1024))
    assert _errors({"logo": "fake.png"}, tmp_path) == [f"branding.logo: {tmp_path / 'fake.png'} is not a PNG file"]
    assert _errors({"logo": "logo.gif"}, tmp_path) == [
        f"branding.logo: {tmp_path / 'logo.gif'} must be an .svg or .png file"
    ]
    assert _errors({"logo": "big.svg"}, tmp_path) == [f"branding.logo: {tmp_path / 'big.svg'} is larger than 256 KB"]
    [missing] = _errors({"logo": "none.svg"}, tmp_path)
    assert missing.startswith(f"branding.logo: cannot read {tmp_path / 'none.svg'}")


def test_every_problem_at_once(tmp_path: Path) -> None:
    errors = _errors(
        {
            "operator_name": "",
            "help_url": "/hilfe",
            "colour": "#000000",
            "accessibility_url": 'https://x.example/"><script>',
        },
        tmp_path,
    )
    assert sorted(errors) == [
        "branding.accessibility_url: must be an absolute https URL (http is allowed in development)",
        "branding.colour: unknown key",
        "branding.help_url: must be an absolute https URL (http is allowed in development)",
        "branding.operator_name: must not be empty",
    ]
    assert _errors("Stadt Düren", tmp_path) == ["branding: must be a table"]
