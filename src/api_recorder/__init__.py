"""api-recorder: record the calls an application makes through the OpenAI SDK and tool clients,
and replay them later as the very same typed objects, offline.

Public API only; see the README for the three ways to switch it on.
"""

from __future__ import annotations

import os

from . import _deferred
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

TYPE_CHECKING = False  # no typing import: see _deferred for why import api_recorder stays light
if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager
    from typing import Any, TypeVar

    from .context import TEST_ID_HEADER
    from .hashing import Normalizer
    from .middleware import TestIdMiddleware, WSGITestIdMiddleware, propagate_test_id
    from .modes import Mode
    from .redaction import Redact, RedactRule
    from .storage import Recording
    from .tools import tool, wrap_tool

    _ClassT = TypeVar("_ClassT", bound=type)

# Imported when first used. middleware and tools need wrapt (which imports asyncio and
# importlib.metadata); the others belong to the engine, which loads only once an SDK is imported
# or the API needs it (see _deferred).
_LAZY = {
    "TEST_ID_HEADER": "context",
    "Mode": "modes",
    "Normalizer": "hashing",
    "Recording": "storage",
    "Redact": "redaction",
    "TestIdMiddleware": "middleware",
    "WSGITestIdMiddleware": "middleware",
    "propagate_test_id": "middleware",
    "tool": "tools",
    "wrap_tool": "tools",
}
_SUBMODULES = frozenset({"middleware", "tools", "recorder", "storage", "context", "hashing", "modes", "redaction"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:  # the submodules themselves, as before they were lazy
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
    redact: Sequence[RedactRule] | None = None,
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

    Until an SDK is imported this loads nothing but the arguments' checks: the engine loads, and
    applies this call, as the SDK is imported (see ``api_recorder._deferred``).
    """
    if _deferred.engine_loaded() or redact is not None:  # redact rules are checked by the engine's Redactor
        _deferred.recorder().enable(
            mode, recording_dir, normalizers=normalizers, passthrough=passthrough, redact=redact, http=http
        )
        return
    from .modes import Mode, mode_from_env, recording_dir_from_env

    # Checked now, as the engine would; the variables and the working directory are read now too.
    parsed = Mode.parse(mode) if mode is not None else (mode_from_env() or Mode.REPLAY)
    directory = recording_dir if recording_dir is not None else recording_dir_from_env()
    _deferred.defer_enable(
        parsed, directory, root=os.getcwd(), normalizers=normalizers, passthrough=passthrough, http=http
    )


def disable() -> None:
    """Stop recording and replaying: every wrapper passes calls straight through to the SDK.

    The wrappers stay installed (inert, under a microsecond a call), so that a client or a bound
    method kept from now on is still recorded when recording starts again; :func:`uninstall`
    removes them.
    """
    _deferred.recorder().disable()


def uninstall() -> None:
    """Disable, and remove every wrapper: the SDK's classes are exactly what they were.

    Methods looked up while the wrappers were installed keep them (inert). ``enable()`` installs
    them again.
    """
    _deferred.recorder().uninstall()


def current_mode() -> Mode:
    """The mode in force (``live`` when disabled)."""
    return _deferred.recorder().current_mode()


def recording(
    mode: Mode | str | None = None,
    recording_dir: str | os.PathLike[str] | None = None,
    *,
    normalizers: list[Normalizer] | None = None,
    passthrough: list[str] | None = None,
    redact: Sequence[RedactRule] | None = None,
    http: list[str] | None = None,
) -> AbstractContextManager[None]:
    """Record or replay inside the block only; the previous state comes back after it (nestable)."""
    return _deferred.recorder().enabled_within(
        mode, recording_dir, normalizers=normalizers, passthrough=passthrough, redact=redact, http=http
    )


def test_context(test_id: str | None) -> AbstractContextManager[None]:
    """Attribute the calls made inside the block to ``test_id`` (its recordings are its own).

    An id that would put recordings outside the project (an absolute path, ``..``) or that holds
    control characters raises InvalidTestIdError at once.
    """
    from .context import checked_test_id

    return _deferred.recorder().test_ids.scope(checked_test_id(test_id) if test_id is not None else None)


test_context.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Parse one recording file (ours or llama-stack's); ``.response.body`` holds typed objects."""
    from pathlib import Path

    from .storage import read_recording

    return read_recording(Path(path), _deferred.recorder().rehydrator)


def register_type(cls: _ClassT) -> _ClassT:
    """Allow a pydantic class of your own in recordings (usable as a decorator)."""
    return _deferred.recorder().registry.register(cls)


def test_id_headers(existing: dict[str, str] | None = None) -> dict[str, str]:
    """The headers that name the current test, for HTTP clients you call a server with yourself.

    Ours and the ``__test_id`` of OGX's and llama-stack's provider-data headers, merged into the
    provider data in ``existing`` (the headers you already send), if any. Empty outside a test.
    """
    from .context import test_id_headers_for

    test_id = _deferred.recorder().current_test_id()
    return test_id_headers_for(test_id, existing) if test_id else {}


test_id_headers.__test__ = False  # type: ignore[attr-defined]


_deferred.arm_when_needed()
