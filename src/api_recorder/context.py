"""Which test is running: the key that keeps one test's recordings apart from another's.

A ContextVar follows asyncio tasks and threads started with copied contexts; the process-wide
fallback covers what a ContextVar cannot: clients created once per session whose calls run in an
event loop or thread that was started before the test began.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

TEST_ID_HEADER = "X-Api-Recorder-Test-Id"
LLAMA_STACK_HEADER = "X-LlamaStack-Provider-Data"  # llama-stack sends {"__test_id": ...} in it
TEST_ID_ENV = "API_RECORDER_TEST_ID"  # set for subprocesses started while a test runs


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
    def scope(self, test_id: str | None, *, process_wide: bool = True) -> Iterator[None]:
        """Make test_id current for the block, in this context (and process-wide, unless told not).

        A server handling concurrent requests sets it per request only (``process_wide=False``).
        """
        token = self._var.set(test_id)
        previous_fallback = self.fallback
        if process_wide:
            self.fallback = test_id
        try:
            yield
        finally:
            if process_wide:
                self.fallback = previous_fallback
            try:
                self._var.reset(token)
            except ValueError:  # exited in another context (a generator finalized elsewhere)
                self._var.set(None)


def test_file_of(test_id: str | None) -> str | None:
    """The test file of a pytest node id (``tests/a/test_x.py::test_y``), None for other ids."""
    if not test_id:
        return None
    test_file = test_id.split("::", 1)[0]
    return test_file if ".py" in test_file else None


test_file_of.__test__ = False  # type: ignore[attr-defined]


def test_id_from_headers(headers: Mapping[str, str]) -> str | None:
    """The test id a client sent: ours, or llama-stack's ``__test_id`` in its provider data.

    ``headers`` must have lower-cased names (as ASGI and WSGI give them, once normalized).
    """
    test_id = headers.get(TEST_ID_HEADER.lower())
    if test_id:
        return test_id
    provider_data = headers.get(LLAMA_STACK_HEADER.lower())
    if provider_data:
        try:
            value = json.loads(provider_data).get("__test_id")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None
    return None
