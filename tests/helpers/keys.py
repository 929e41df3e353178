"""The development key set, generated once per test run and copied into each test gateway's instance.

``eid-gateway init`` (:func:`eid_gateway.instance.write_example_config`) generates eight keys, four of
them RSA-3072: 1-2 s per gateway start, most of an end-to-end test's time. A test that is not about key
generation takes the ``reuse_dev_keys`` fixture (the end-to-end ``start_gateway`` does): ``init`` then
writes its config as always, and the key files are copies of one set the real
:func:`certs.devpki.generate_dev_keys` wrote at the start of the run (same names, same 0600 modes, same
DEVELOPMENT ONLY headers).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from certs.devpki import DevPkiExists, generate_dev_keys
from eid_gateway.instance import write_example_config
from saml.keys import KeyPair


class DevKeys:
    """One generated development key set (``directory``) and the ``init`` stand-in that copies it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pairs = generate_dev_keys(directory)
        self.copies = 0

    def copy_into(self, directory: Path, *, overwrite: bool = False) -> dict[str, KeyPair]:
        """What :func:`generate_dev_keys` does for ``directory``, by copying (it refuses the same way)."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = sorted(self.directory.iterdir())
        if not overwrite:
            existing = [str(directory / f.name) for f in files if (directory / f.name).exists()]
            if existing:
                raise DevPkiExists("refusing to overwrite " + ", ".join(existing))
        for file in files:
            target = directory / file.name
            target.unlink(missing_ok=True)
            shutil.copy2(file, target)  # keeps the 0600 mode
        self.copies += 1
        return dict(self.pairs)


def reuse_in_init(monkeypatch: pytest.MonkeyPatch, keys: DevKeys) -> None:
    """Make ``write_example_config`` (``init``) copy ``keys`` instead of generating new ones."""
    module = sys.modules[write_example_config.__module__]
    monkeypatch.setattr(module, "generate_dev_keys", keys.copy_into)
