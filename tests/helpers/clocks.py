"""The one fake clock: code under test reads time through a ``clock()`` callable, tests move it by hand."""

from __future__ import annotations

import time


class FakeClock:
    """Stands still at ``now`` until the test moves it (:meth:`advance`, or sets ``now`` / ``offset``).

    ``start`` defaults to the wall clock when the clock is made, i.e. inside the test or its fixture
    (never at import: a time fixed at import is minutes old on a slow machine, see test_suite_rules.py).
    Pass a fixed ``start`` where the test needs no relation to real time.
    """

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self.now = self.start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @property
    def offset(self) -> float:
        """Seconds moved since ``start``."""
        return self.now - self.start

    @offset.setter
    def offset(self, seconds: float) -> None:
        self.now = self.start + seconds
