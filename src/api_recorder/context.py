"""Which test is running: the key that keeps one test's recordings apart from another's.

A ContextVar follows asyncio tasks and threads started with copied contexts; the process-wide
fallback covers what a ContextVar cannot: clients created once per session whose calls run in an
event loop or thread that was started before the test began.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import PurePosixPath, PureWindowsPath

from .errors import InvalidTestIdError

TEST_ID_HEADER = "X-Api-Recorder-Test-Id"
LLAMA_STACK_HEADER = "X-LlamaStack-Provider-Data"  # llama-stack sends {"__test_id": ...} in it
OGX_HEADER = "X-OGX-Provider-Data"  # the same, since llama-stack was renamed OGX
PROVIDER_DATA_HEADERS = (OGX_HEADER, LLAMA_STACK_HEADER)
TEST_ID_ENV = "API_RECORDER_TEST_ID"  # set for subprocesses started while a test runs


class TestIdentity:
    """The current test id, per context first and per process second.

    Process-wide scopes may overlap and end out of order (threads, asyncio tasks, a server handling
    requests of several tests): the process-wide id is the newest scope still open, then the
    process's own (``fallback``, from ``API_RECORDER_TEST_ID``), never the id of a scope that ended.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self._var: ContextVar[str | None] = ContextVar("api_recorder_test_id", default=None)
        self.fallback: str | None = None
        self._open: list[tuple[object, str | None]] = []  # process-wide scopes still open, oldest first
        self._lock = threading.Lock()

    def current(self) -> str | None:
        value = self._var.get()
        return value if value is not None else self.process_wide()

    def process_wide(self) -> str | None:
        """The id of the newest process-wide scope still open, else the process's own."""
        open_scopes = self._open
        return open_scopes[-1][1] if open_scopes else self.fallback

    @contextmanager
    def scope(self, test_id: str | None, *, process_wide: bool = True) -> Iterator[None]:
        """Make test_id current for the block, in this context (and process-wide, unless told not).

        A server handling concurrent requests sets it per request only (``process_wide=False``).
        """
        token = self._var.set(test_id)
        entry = (object(), test_id)
        if process_wide:
            with self._lock:
                self._open.append(entry)
        try:
            yield
        finally:
            if process_wide:
                with self._lock:
                    self._open = [scope for scope in self._open if scope[0] is not entry[0]]
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


TEST_ID_FORM = (
    "A test id is a pytest node id, such as 'tests/test_chat.py::test_answer[gpt-4o]' (a test file relative "
    "to the project root, '::', the test), or any other name with no '.py' in it; it must not be an absolute "
    "path, climb out of the project root with '..', nor contain control characters."
)


def test_id_problem(test_id: object) -> str | None:
    """Why ``test_id`` cannot name a test (its recordings would land outside the project, or it
    carries control characters), or None when it can."""
    if not isinstance(test_id, str):
        return f"it is a {type(test_id).__name__}, not a string"
    if not test_id.isprintable():
        return "it contains control characters (or other non-printable ones)"
    test_file = test_file_of(test_id)
    return test_file_problem(test_file) if test_file else None


def test_file_problem(test_file: str) -> str | None:
    """Why the test file part of a test id would lead outside the project root, or None."""
    windows = PureWindowsPath(test_file)
    if PurePosixPath(test_file).is_absolute() or windows.drive or windows.root:
        return f"its test file {test_file!r} is an absolute path"
    if ".." in re.split(r"[\\/]", test_file):
        return f"its test file {test_file!r} climbs out of the project root with '..'"
    if "\0" in test_file:
        return f"its test file {test_file!r} contains a NUL character"
    return None


def invalid_test_id_message(test_id: object, problem: str) -> str:
    return f"Invalid test id {test_id!r}: {problem}. {TEST_ID_FORM}"


def checked_test_id(value: str) -> str:
    """``value`` if it can name a test; else InvalidTestIdError saying why and what a test id is.

    The one check behind every way a test id comes in: ``test_context()``, the
    ``API_RECORDER_TEST_ID`` variable, the headers the middlewares read.
    """
    problem = test_id_problem(value)
    if problem is not None:
        raise InvalidTestIdError(invalid_test_id_message(value, problem))
    return value


test_id_problem.__test__ = False  # type: ignore[attr-defined]
test_file_problem.__test__ = False  # type: ignore[attr-defined]


def test_id_from_headers(headers: Mapping[str, str]) -> str | None:
    """The test id a client sent: ours, or ``__test_id`` in OGX's or llama-stack's provider data.

    ``headers`` must have lower-cased names (as ASGI and WSGI give them, once normalized). The
    first header naming a test decides; a test id that :func:`checked_test_id` refuses is never
    obeyed: a RuntimeWarning names the header and the value, and the request runs under no test id.
    """
    for header, test_id in _sent_test_ids(headers):
        problem = test_id_problem(test_id)
        if problem is None:
            return test_id
        warnings.warn(
            f"api-recorder ignores the test id in the {header} header, {test_id!r}: {problem}; "
            f"this request runs under no test id. {TEST_ID_FORM}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return None


def _sent_test_ids(headers: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    test_id = headers.get(TEST_ID_HEADER.lower())
    if test_id:
        yield TEST_ID_HEADER, test_id
    for name in PROVIDER_DATA_HEADERS:
        value = (_provider_data(headers.get(name.lower())) or {}).get("__test_id")
        if isinstance(value, str) and value:
            yield name, value


def header_safe(test_id: str) -> str:
    """``test_id`` as an HTTP header can carry it: printable ASCII as is, any other character
    percent-encoded as UTF-8 (``test_x[a\\nb]`` is sent as ``test_x[a%0Ab]``).

    A node id may hold such characters (a test file named in another script; parametrize ids
    under pytest's option that stops escaping them); sent as they are, they would make the call
    itself fail. The server records under the encoded id, the same in record and replay.
    """
    if test_id.isascii() and test_id.isprintable():
        return test_id
    return "".join(
        char if " " <= char <= "~" else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in test_id
    )


def test_id_headers_for(test_id: str, existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers that name ``test_id`` to a server, whichever recorder the server runs.

    Ours, plus ``__test_id`` merged into the JSON of both provider-data headers (llama-stack's
    and OGX's recorders read it there), keeping whatever provider data the caller already sends.
    A provider-data header that is not a JSON object is the caller's own business: left alone.
    The test id is sent in its :func:`header_safe` form in all three.
    """
    existing = existing or {}
    lowered = {name.lower(): value for name, value in existing.items()}
    test_id = header_safe(test_id)
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
