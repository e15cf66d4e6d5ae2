"""api-recorder: record the calls an application makes through the OpenAI SDK and tool clients,
and replay them later as the very same typed objects, offline.

Public API only; see the README for the three ways to switch it on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import TEST_ID_HEADER, checked_test_id, test_id_headers_for
from .errors import (
    ApiRecorderError,
    InvalidModeError,
    InvalidTestIdError,
    RecordingFileError,
    RecordingNotFoundError,
    TypeNotInstalledError,
    UnrecordableValueError,
    UnsupportedCallError,
)
from .hashing import Normalizer
from .modes import Mode
from .recorder import RECORDER
from .redaction import Redact
from .storage import Recording, read_recording

if TYPE_CHECKING:
    from .middleware import TestIdMiddleware, WSGITestIdMiddleware, propagate_test_id
    from .tools import tool, wrap_tool

# Imported when first used: they need wrapt, which imports asyncio and importlib.metadata (most
# of the start-up cost otherwise); the SDK integrations import it only once their SDK is imported.
_LAZY = {
    "TestIdMiddleware": "middleware",
    "WSGITestIdMiddleware": "middleware",
    "propagate_test_id": "middleware",
    "tool": "tools",
    "wrap_tool": "tools",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("middleware", "tools"):  # the submodules themselves, as before they were lazy
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "TEST_ID_HEADER",
    "ApiRecorderError",
    "InvalidModeError",
    "InvalidTestIdError",
    "Mode",
    "Normalizer",
    "Recording",
    "RecordingFileError",
    "RecordingNotFoundError",
    "Redact",
    "TestIdMiddleware",
    "TypeNotInstalledError",
    "UnrecordableValueError",
    "UnsupportedCallError",
    "WSGITestIdMiddleware",
    "current_mode",
    "disable",
    "enable",
    "load_recording",
    "propagate_test_id",
    "recording",
    "register_type",
    "test_context",
    "test_id_headers",
    "tool",
    "uninstall",
    "wrap_tool",
]


def enable(
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
    *,
    normalizers: list[Normalizer] | None = None,
    passthrough: list[str] | None = None,
    redact: list[Any] | None = None,
    http: list[str] | None = None,
) -> None:
    """Record or replay covered calls from now on.

    ``mode`` and ``recording_dir`` default to ``LLAMA_STACK_TEST_INFERENCE_MODE`` and
    ``LLAMA_STACK_TEST_RECORDING_DIR`` (then ``replay`` and ``./recordings``). Safe to call again:
    it changes the settings and never wraps twice. ``openai`` need not be imported yet.
    ``passthrough`` names base URLs (the server under test) whose calls are never recorded nor
    replayed; None reads ``API_RECORDER_PASSTHROUGH`` (comma-separated). ``redact`` adds scrubbers
    (regexes, presets of :class:`Redact`, or callables taking and returning JSON data) to the
    built-in credential scrubbing; they run on requests before hashing and on answers before writing.
    ``http`` opts raw HTTP calls in: requests through ``httpx`` or ``aiohttp`` whose URL starts with
    one of these prefixes are recorded and replayed too (None reads ``API_RECORDER_HTTP``).
    """
    RECORDER.enable(mode, recording_dir, normalizers=normalizers, passthrough=passthrough, redact=redact, http=http)


def disable() -> None:
    """Stop recording and replaying: every wrapper passes calls straight through to the SDK.

    The wrappers stay installed (inert, under a microsecond a call), so that a client or a bound
    method kept from now on is still recorded when recording starts again; :func:`uninstall`
    removes them.
    """
    RECORDER.disable()


def uninstall() -> None:
    """Disable, and remove every wrapper: the SDK's classes are exactly what they were.

    Methods looked up while the wrappers were installed keep them (inert). ``enable()`` installs
    them again.
    """
    RECORDER.uninstall()


def current_mode() -> Mode:
    """The mode in force (``live`` when disabled)."""
    return RECORDER.mode if RECORDER.enabled else Mode.LIVE


@contextmanager
def recording(
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
    *,
    normalizers: list[Normalizer] | None = None,
    passthrough: list[str] | None = None,
    redact: list[Any] | None = None,
    http: list[str] | None = None,
) -> Iterator[None]:
    """Record or replay inside the block only; the previous state comes back after it (nestable)."""
    with RECORDER.state_saved():
        RECORDER.enable(mode, recording_dir, normalizers=normalizers, passthrough=passthrough, redact=redact, http=http)
        yield


def test_context(test_id: str | None) -> AbstractContextManager[None]:
    """Attribute the calls made inside the block to ``test_id`` (its recordings are its own).

    An id that would put recordings outside the project (an absolute path, ``..``) or that holds
    control characters raises InvalidTestIdError at once.
    """
    return RECORDER.test_ids.scope(checked_test_id(test_id) if test_id is not None else None)


test_context.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Parse one recording file (ours or llama-stack's); ``.response.body`` holds typed objects."""
    return read_recording(Path(path), RECORDER.rehydrator)


def register_type(cls: type) -> type:
    """Allow a pydantic class of your own in recordings (usable as a decorator)."""
    return RECORDER.registry.register(cls)


def test_id_headers(existing: dict[str, str] | None = None) -> dict[str, str]:
    """The headers that name the current test, for HTTP clients you call a server with yourself.

    Ours and the ``__test_id`` of OGX's and llama-stack's provider-data headers, merged into the
    provider data in ``existing`` (the headers you already send), if any. Empty outside a test.
    """
    test_id = RECORDER.current_test_id()
    return test_id_headers_for(test_id, existing) if test_id else {}


test_id_headers.__test__ = False  # type: ignore[attr-defined]
