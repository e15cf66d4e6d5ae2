"""Auto-activation at interpreter start-up, for processes started with the recording env var set.

``api_recorder.pth`` (installed in site-packages) imports this module only when
``LLAMA_STACK_TEST_INFERENCE_MODE`` (or its OGX name, ``OGX_TEST_INFERENCE_MODE``) is set to a
recording mode and ``API_RECORDER_AUTO`` is not ``0``. It costs almost nothing at start-up: it
imports no SDK and not even api_recorder. It adds one import finder that waits for ``openai`` or
``tavily``; when either has been imported, it enables api_recorder from the environment, exactly
as ``api_recorder.enable()`` would. Any failure is reported once on stderr and the process goes
on, unrecorded: a hook in every Python process must never break the interpreter.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # no typing import at start-up; type checkers read the block below
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

# The packages of api_recorder.integrations.BUILTINS (kept literal: importing the catalog would
# import api_recorder in every process; a test checks the two agree).
WATCHED = ("openai", "anthropic", "google.genai", "ollama", "mcp", "tavily", "httpx", "httpx2", "aiohttp")
MODE_ENVS = ("LLAMA_STACK_TEST_INFERENCE_MODE", "OGX_TEST_INFERENCE_MODE")


class _ActivatingLoader:
    """Runs the real loader, then activates api-recorder: the module is complete at that point."""

    def __init__(self, loader: Any, activate: Callable[[], None]) -> None:
        self._loader = loader
        self._activate = activate

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if not _watched_still_loading(module.__name__):  # else the outer import activates once complete
            self._activate()


def _watched_still_loading(done: str) -> bool:
    """Whether another watched package is half-imported (``import ollama`` imports ``httpx``):
    activating now would wrap a module whose classes do not exist yet."""
    for name in WATCHED:
        if name == done:
            continue
        spec = getattr(sys.modules.get(name), "__spec__", None)
        if getattr(spec, "_initializing", False):
            return True
    return False


class ActivateOnImport:
    """A meta path finder that calls ``activate`` when a watched SDK is really imported.

    It stays on ``sys.meta_path`` until then: a ``find_spec`` probe (a library checking whether
    the SDK is installed) loads nothing and must not use it up. It finds nothing itself: it asks
    the finders after it and wraps the loader they return. Two use it: this module, to enable
    api-recorder from the environment, and ``api_recorder`` itself, whose engine loads only once
    an SDK is imported (``import api_recorder`` and ``enable()`` stay cheap until then).
    """

    def __init__(self, activate: Callable[[], None]) -> None:
        self.activate = activate
        # Names being found now: another finder may ask back. The import system's per-module lock
        # serializes real imports of one name, so a plain set is enough (no threading import here).
        self._finding: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        finding = self._finding
        if fullname not in WATCHED or fullname in finding:
            return None
        finding.add(fullname)
        try:
            spec = self._spec_from_other_finders(fullname, path, target)
        finally:
            finding.discard(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ActivatingLoader(spec.loader, self.activate)  # type: ignore[assignment]
        return spec

    def _spec_from_other_finders(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is not self and find_spec is not None:
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    return spec  # type: ignore[no-any-return]
        return None


def _activate_from_env() -> None:
    activate()


FINDER = ActivateOnImport(_activate_from_env)


def remove_finder() -> None:
    try:
        sys.meta_path.remove(FINDER)
    except ValueError:
        pass


_activated: list[bool] = []  # a watched module imported while another one loads would activate twice


def activate() -> None:
    """Enable api-recorder from the environment; warn once and go on if anything fails."""
    remove_finder()
    if _activated:
        return
    _activated.append(True)
    try:
        import api_recorder
        from api_recorder.recorder import RECORDER

        if RECORDER.enabled:  # already set up (by the pytest plugin, with its flags): keep that
            return
        api_recorder.enable()
        test_id = os.environ.get("API_RECORDER_TEST_ID")
        if test_id:
            from api_recorder.context import checked_test_id
            from api_recorder.errors import InvalidTestIdError

            try:
                RECORDER.test_ids.fallback = checked_test_id(test_id)
            except InvalidTestIdError as exc:  # never obeyed: recorded under no test id instead
                sys.stderr.write(f"api-recorder: ignoring API_RECORDER_TEST_ID. {exc} This process has no test id.\n")
    except Exception as exc:
        warn(f"could not activate recording ({exc!r}); this process runs unrecorded")


def warn(message: str) -> None:
    sys.stderr.write(f"api-recorder: {message}. Set API_RECORDER_AUTO=0 to skip auto-activation.\n")


_installed: list[bool] = []  # some interpreters (venvs with setuptools' distutils hack) read .pth files twice


def install() -> None:
    """Called by api_recorder.pth at start-up when the mode variable is set; once per process."""
    if _installed:
        return
    _installed.append(True)
    try:
        modes = {name: os.environ.get(name, "").strip() for name in MODE_ENVS}
        named = {name: value for name, value in modes.items() if value}
        if len(set(named.values())) > 1:
            listed = " and ".join(f"{name}={value!r}" for name, value in named.items())
            warn(f"{listed} disagree; this process runs unrecorded. Unset one of them, or give both the same value")
            return
        if next(iter(named.values()), "").lower() in ("", "live"):
            return
        if any(name in sys.modules for name in WATCHED):
            activate()
        elif FINDER not in sys.meta_path:
            sys.meta_path.insert(0, FINDER)
    except Exception as exc:
        warn(f"auto-activation failed ({exc!r})")
