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
OGX_HEADER = "X-OGX-Provider-Data"  # the same, since llama-stack was renamed OGX
PROVIDER_DATA_HEADERS = (OGX_HEADER, LLAMA_STACK_HEADER)
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
    """The test id a client sent: ours, or ``__test_id`` in OGX's or llama-stack's provider data.

    ``headers`` must have lower-cased names (as ASGI and WSGI give them, once normalized).
    """
    test_id = headers.get(TEST_ID_HEADER.lower())
    if test_id:
        return test_id
    for name in PROVIDER_DATA_HEADERS:
        value = (_provider_data(headers.get(name.lower())) or {}).get("__test_id")
        if isinstance(value, str) and value:
            return value
    return None


def test_id_headers_for(test_id: str, existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers that name ``test_id`` to a server, whichever recorder the server runs.

    Ours, plus ``__test_id`` merged into the JSON of both provider-data headers (llama-stack's
    and OGX's recorders read it there), keeping whatever provider data the caller already sends.
    A provider-data header that is not a JSON object is the caller's own business: left alone.
    """
    existing = existing or {}
    lowered = {name.lower(): value for name, value in existing.items()}
    headers = {TEST_ID_HEADER: test_id}
    for name in PROVIDER_DATA_HEADERS:
        data = _provider_data(lowered.get(name.lower()))
        if data is not None:
            headers[name] = json.dumps({**data, "__test_id": test_id})
    return headers


def _provider_data(value: str | None) -> dict[str, object] | None:
    """A provider-data header's JSON object: {} when absent, None when it is not a JSON object."""
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


test_id_headers_for.__test__ = False  # type: ignore[attr-defined]
