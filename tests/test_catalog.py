"""The translation catalog (eid_gateway/catalog): every text in German and English, and a loader that
refuses a file where one is missing."""

from __future__ import annotations

import string
import tomllib
from pathlib import Path

import pytest

from eid_gateway import catalog
from eid_gateway.core.port import FailureKind
from eid_gateway.identity import Attribute
from eid_gateway.web import i18n

CATALOG_DIR = Path(catalog.__file__).parent
FILES = sorted(CATALOG_DIR.glob("*.toml"))


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_the_catalog_files_are_found() -> None:
    """Guards the test below against passing for no files."""
    assert {"citizen", "demo", "kiosks"} <= set(catalog.areas())
    assert [f.stem for f in FILES] == list(catalog.areas())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_entry_has_german_and_english_with_the_same_placeholders(path: Path) -> None:
    """Read with tomllib directly (not through the loader under test)."""
    data = tomllib.loads(path.read_text("utf-8"))
    assert data
    for name, table in data.items():
        assert isinstance(table, dict) and table, name
        for key, entry in table.items():
            where = f"{path.name} [{name}.{key}]"
            assert set(entry) == {"de", "en"}, where
            assert all(isinstance(v, str) and v.strip() for v in entry.values()), where
            assert _fields(entry["de"]) == _fields(entry["en"]), where
    assert catalog.parse(path.read_text("utf-8"), path.stem).keys() == data.keys()


def test_every_failure_and_attribute_has_its_texts() -> None:
    for kind in FailureKind:
        assert set(i18n.FAILURE_TEXTS[kind]) == {"de", "en"}, kind
        assert all(title and text for title, text in i18n.FAILURE_TEXTS[kind].values()), kind
    assert set(i18n.ATTRIBUTE_LABELS) == set(Attribute)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ('[texts.hello]\nde = "Hallo"\n', "demo.texts.hello: missing ['en']"),
        ('[texts.hello]\nde = "Hallo"\nen = "Hello"\nfr = "Salut"\n', "unexpected ['fr']"),
        ('[texts.hello]\nde = "Hallo"\nen = " "\n', "demo.texts.hello.en: expected a non-empty string"),
        ('[texts.hello]\nde = "Hallo"\nen = 3\n', "demo.texts.hello.en: expected a non-empty string"),
        ('[texts.hello]\nde = "Hallo {name}"\nen = "Hello {nom}"\n', "different placeholders"),
        ('[texts.hello]\nde = "Hallo {"\nen = "Hello"\n', "demo.texts.hello.de"),
        ('[texts]\nhello = "Hallo"\n', "demo.texts.hello: expected a table with de and en"),
        ('texts = "Hallo"\n', "demo.texts: expected a table of entries"),
        ("[texts.hello\n", "demo: "),
    ],
)
def test_the_loader_refuses_a_file_that_breaks_the_rules(source: str, complaint: str) -> None:
    with pytest.raises(catalog.CatalogError) as refused:
        catalog.parse(source, "demo")
    assert complaint in str(refused.value)


def test_lookup_fills_placeholders_and_falls_back_to_german() -> None:
    texts = catalog.parse('[t.hi]\nde = "Hallo {name}"\nen = "Hello {name}"\n', "x")["t"]
    assert catalog.lookup(texts, "hi", "en", name="Ada") == "Hello Ada"
    assert catalog.lookup(texts, "hi", "fr", name="Ada") == "Hallo Ada"
    assert catalog.title_and_text(catalog.table("citizen", "failures"), "timeout")["en"][0] == "Time ran out"
    with pytest.raises(catalog.CatalogError, match="no table 'absent'"):
        catalog.table("citizen", "absent")


def test_a_table_is_a_copy_the_caller_cannot_spoil_for_others() -> None:
    mine = catalog.table("demo", "texts")
    mine["yes"]["en"] = "changed"
    assert catalog.table("demo", "texts")["yes"]["en"] == "yes"
