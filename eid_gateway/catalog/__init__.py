"""The translation catalog: every text a citizen or staff member reads, in German and English, as data.

One TOML file per area in this package (``citizen.toml``: the gateway's pages; ``demo.toml``: the demo
city service; ``kiosks.toml``: the kiosk dashboard), installed with the wheel as package data. A file
holds tables of entries, one entry per text::

    [texts.signin_title]
    de = "Anmelden bei: {service}"
    en = "Sign in to: {service}"

A file is checked when it is read: every entry has exactly German and English, both non-empty, with the
same ``{placeholders}``; a file that breaks this raises :class:`CatalogError` (so a missing translation
fails the import and every test, not a citizen's page). Nothing here imports the project: any layer may
read texts.
"""

from __future__ import annotations

import string
import tomllib
from functools import cache
from importlib import resources
from typing import Final

LANGUAGES: Final = ("de", "en")
DEFAULT_LANGUAGE: Final = "de"

#: key -> language -> text
Table = dict[str, dict[str, str]]


class CatalogError(Exception):
    """A catalog file is not valid TOML or breaks the rules above (named with the entry's path)."""


def _fields(template: str, where: str) -> set[str]:
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:  # a lone "{" or "}"
        raise CatalogError(f"{where}: {exc}") from exc


def _entry(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: expected a table with de and en, got {type(value).__name__}")
    if set(value) != set(LANGUAGES):
        missing = sorted(set(LANGUAGES) - set(value))
        extra = sorted(set(value) - set(LANGUAGES))
        raise CatalogError(f"{where}: missing {missing}, unexpected {extra}")
    texts: dict[str, str] = {}
    for lang in LANGUAGES:
        text = value[lang]
        if not isinstance(text, str) or not text.strip():
            raise CatalogError(f"{where}.{lang}: expected a non-empty string")
        texts[lang] = text
    fields = {lang: _fields(texts[lang], f"{where}.{lang}") for lang in LANGUAGES}
    if len({frozenset(f) for f in fields.values()}) != 1:
        raise CatalogError(f"{where}: the languages use different placeholders {fields}")
    return texts


def parse(source: str, area: str) -> dict[str, Table]:
    """The tables of one catalog file's text ``source``, checked (``area`` names it in errors)."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{area}: {exc}") from exc
    tables: dict[str, Table] = {}
    for name, table in data.items():
        if not isinstance(table, dict) or not table:
            raise CatalogError(f"{area}.{name}: expected a table of entries")
        tables[name] = {key: _entry(value, f"{area}.{name}.{key}") for key, value in table.items()}
    return tables


def areas() -> tuple[str, ...]:
    """The names of the catalog files in this package."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


@cache
def _area(area: str) -> dict[str, Table]:
    return parse(resources.files(__name__).joinpath(f"{area}.toml").read_text("utf-8"), area)


def table(area: str, name: str) -> Table:
    """The table ``name`` of the catalog file ``area`` (a fresh copy: callers may keep it as a constant)."""
    tables = _area(area)
    if name not in tables:
        raise CatalogError(f"{area}: no table {name!r}")
    return {key: dict(entry) for key, entry in tables[name].items()}


def lookup(texts: Table, key: str, lang: str, **values: object) -> str:
    """The text ``key`` of ``texts`` in ``lang`` (German for a language the catalog does not have),
    ``{name}`` placeholders filled."""
    entry = texts[key]
    template = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template


def title_and_text(texts: Table, key: str) -> dict[str, tuple[str, str]]:
    """(title, text) per language of a page's two entries ``<key>_title`` and ``<key>_text``."""
    return {lang: (texts[f"{key}_title"][lang], texts[f"{key}_text"][lang]) for lang in LANGUAGES}
