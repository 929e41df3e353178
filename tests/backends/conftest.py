"""Fixtures of the end-to-end tests (browser, servers) shared with tests/e2e."""

from e2e.conftest import browser, servers  # noqa: F401  (pytest fixtures, used by name)
