"""Fixtures of the HTTP fuzz: the whole gateway on a real loopback port, as tests/e2e start it."""

from e2e.conftest import browser, servers, start_gateway  # noqa: F401  (pytest fixtures, used by name)
