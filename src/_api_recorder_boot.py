"""Auto-activation at interpreter start-up, for processes started with the recording env var set.

``api_recorder.pth`` (installed in site-packages) imports this module only when
``LLAMA_STACK_TEST_INFERENCE_MODE`` (or its OGX name, ``OGX_TEST_INFERENCE_MODE``) is set to a
recording mode and ``API_RECORDER_AUTO`` is not ``0``. It costs almost nothing at start-up: it
imports no SDK and not even api_recorder. It adds one import finder that waits for ``openai`` or
``tavily``; when either has been imported, it enables api_recorder from the environment, exactly
as ``api_recorder.enable()`` would. Any failure is reported once on stderr and the process goes
on, unrecorded: a hook in every Python process must never break the interpreter.
"""

import os
import sys

WATCHED = ("openai", "tavily")
MODE_ENVS = ("LLAMA_STACK_TEST_INFERENCE_MODE", "OGX_TEST_INFERENCE_MODE")


class _ActivatingLoader:
    """Runs the real loader, then activates api-recorder: the module is complete at that point."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        activate()


class ActivateOnImport:
    """A one-shot meta path finder: the first import of a watched SDK activates api-recorder."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in WATCHED:
            return None
        remove_finder()
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ActivatingLoader(spec.loader)
        return spec


FINDER = ActivateOnImport()


def remove_finder():
    try:
        sys.meta_path.remove(FINDER)
    except ValueError:
        pass


def activate():
    """Enable api-recorder from the environment; warn once and go on if anything fails."""
    remove_finder()
    try:
        import api_recorder
        from api_recorder.recorder import RECORDER

        if RECORDER.enabled:  # already set up (by the pytest plugin, with its flags): keep that
            return
        api_recorder.enable()
        test_id = os.environ.get("API_RECORDER_TEST_ID")
        if test_id:
            RECORDER.test_ids.fallback = test_id
    except Exception as exc:
        warn(f"could not activate recording ({exc!r}); this process runs unrecorded")


def warn(message):
    sys.stderr.write(f"api-recorder: {message}. Set API_RECORDER_AUTO=0 to skip auto-activation.\n")


_installed = []  # some interpreters (venvs with setuptools' distutils hack) read .pth files twice


def install():
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
