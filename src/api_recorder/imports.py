"""Knowing every time a module is imported, not only the first: the hook behind every wrapper.

wrapt's post-import hooks fire once per module name. A module can be imported more than once in
a process: a test harness that restores ``sys.modules`` (pytester), ``importlib.reload``, a
plugin system that drops and re-imports. Each import makes new classes, which must be wrapped
too, so this finder stays on ``sys.meta_path`` and runs its callbacks after every import of the
modules it watches, once the module's code has run. It finds nothing itself: it asks the finders
after it and wraps the loader they return, so lazy loaders, ``importlib.import_module`` and
``find_spec`` probes (which never load) all behave as without it.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

Callback = Callable[[ModuleType], None]


class _NotifyingLoader:
    """The real loader, then the callbacks: the module is complete when they run."""

    def __init__(self, loader: Any, notify: Callback) -> None:
        self._loader = loader
        self._notify = notify

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._notify(module)


class ImportWatcher:
    """Runs callbacks after each import of the modules they name (and at once if already imported).

    A meta path finder by its ``find_spec`` alone: subclassing ``importlib.abc.MetaPathFinder``
    would import ``importlib.resources`` and ``tempfile`` at start-up for nothing.
    """

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = {}
        self._lock = threading.Lock()
        self._finding = threading.local()  # names this thread is finding: another finder may ask back

    def on_import(self, name: str, callback: Callback) -> None:
        """Call ``callback(module)`` after every import of ``name``; now too, if it is imported."""
        with self._lock:
            self._callbacks.setdefault(name, []).append(callback)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)
        module = sys.modules.get(name)
        if module is not None:
            callback(module)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        finding: set[str] = self._finding.__dict__.setdefault("names", set())
        if fullname not in self._callbacks or fullname in finding:
            return None
        finding.add(fullname)
        try:
            spec = _spec_from_other_finders(self, fullname, path, target)
        finally:
            finding.discard(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _NotifyingLoader(spec.loader, self._notify)  # type: ignore[assignment]
        return spec

    def _notify(self, module: ModuleType) -> None:
        """Run the callbacks; a failing one is a warning, never a broken import of someone's module."""
        for callback in list(self._callbacks.get(module.__name__, ())):
            try:
                callback(module)
            except Exception as error:
                warnings.warn(
                    f"api-recorder could not instrument {module.__name__} ({error!r}); its calls are not "
                    "recorded until api_recorder.enable() is called.",
                    RuntimeWarning,
                    stacklevel=2,
                )


def _spec_from_other_finders(
    this: object, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """What the import system would find without ``this`` finder."""
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if finder is this or find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


IMPORTS = ImportWatcher()
"""The process's watcher: every integration's wrappers hang on it."""
