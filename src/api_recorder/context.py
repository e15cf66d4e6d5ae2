"""Which test is running: the key that keeps one test's recordings apart from another's.

A ContextVar follows asyncio tasks and threads started with copied contexts; the process-wide
fallback covers what a ContextVar cannot: clients created once per session whose calls run in an
event loop or thread that was started before the test began.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class TestIdentity:
    """The current test id, per context first and per process second."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self._var: ContextVar[str | None] = ContextVar("api_recorder_test_id", default=None)
        self.fallback: str | None = None

    def current(self) -> str | None:
        value = self._var.get()
        return value if value is not None else self.fallback

    @contextmanager
    def scope(self, test_id: str | None) -> Iterator[None]:
        """Make test_id current for the block, in this context and process-wide."""
        token = self._var.set(test_id)
        previous_fallback, self.fallback = self.fallback, test_id
        try:
            yield
        finally:
            self.fallback = previous_fallback
            try:
                self._var.reset(token)
            except ValueError:  # exited in another context (a generator finalized elsewhere)
                self._var.set(previous_fallback)
