"""The engine loads when it is first needed, not when ``api_recorder`` is imported.

The engine (``recorder`` and what it imports: msgspec, files, hashing, redaction, pydantic glue)
costs tens of milliseconds to import; a process that imports api_recorder (a pytest worker, a
server started with ``enable()`` in its entry point) pays that before it has made one call. So
``import api_recorder`` and ``enable()`` only note what was asked and put one import finder on
``sys.meta_path`` (the one auto-activation uses, see ``_api_recorder_boot``). The engine loads:

- when an SDK it instruments is imported: it then wraps the SDK as the module completes, exactly
  as when the engine was loaded from the start;
- at ``import api_recorder`` already, when such an SDK is imported before it;
- when any other part of the API is used (``recording()``, ``current_mode()``, ``load_recording``,
  the pytest plugin...).

``enable()`` still checks its arguments at once (an unknown mode, two variables that disagree,
a bad ``redact`` rule raise there), and the calls it deferred are applied, in order, as the
engine loads.
"""

from __future__ import annotations

import sys

import _api_recorder_boot as boot

TYPE_CHECKING = False  # no typing import: this module is on the start-up path
if TYPE_CHECKING:
    from typing import Any

    from .recorder import Recorder

ENGINE = "api_recorder.recorder"
_deferred: list[tuple[tuple[Any, ...], dict[str, Any]]] = []


def engine_loaded() -> bool:
    """Whether the engine is imported (or being imported: then calls go to it, not here)."""
    return ENGINE in sys.modules


def recorder() -> Recorder:
    """The engine's recorder, loading the engine (and applying deferred ``enable()``s) if needed."""
    from .recorder import RECORDER

    return RECORDER


def defer_enable(*args: Any, **kwargs: Any) -> None:
    """Keep an ``enable()`` call for when the engine loads (its arguments already checked)."""
    _deferred.append((args, kwargs))


def apply_deferred(target: Recorder) -> None:
    """Called once by the engine as it loads: the deferred ``enable()`` calls, in order."""
    _remove_finder()
    while _deferred:
        args, kwargs = _deferred.pop(0)
        target.enable(*args, **kwargs)


def load_engine() -> None:
    """Import the engine (it arms itself: every SDK already imported is wrapped)."""
    _remove_finder()
    recorder()


def _remove_finder() -> None:
    try:
        sys.meta_path.remove(ENGINE_FINDER)
    except ValueError:
        pass


ENGINE_FINDER = boot.ActivateOnImport(load_engine)


def arm_when_needed() -> None:
    """At ``import api_recorder``: load the engine now if an instrumented SDK is already imported,
    else as soon as one is."""
    if engine_loaded():
        return
    if any(name in sys.modules for name in boot.WATCHED):
        load_engine()
    elif ENGINE_FINDER not in sys.meta_path:
        sys.meta_path.insert(0, ENGINE_FINDER)
